"""The README and docs/ say what the project does: the README stays short, every link leads somewhere, and every
command a reader copies from a ``bash`` block still parses (its entry point answers ``--help`` along that command
line, and takes each option the command gives)."""

import importlib
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
ENTRY = re.compile(r"(?:^|\s)(?:\S*/)?python3? (?:-m ((?:moderation|feedback)[\w.]*)|(app\.py|bench/\w+\.py))(?=\s|$)")
"""One of our entry points in a command: ``python -m moderation...``, ``python -m feedback``, ``python app.py`` or
``python bench/NAME.py``."""
LINK = re.compile(r"\]\(([^)\s]+)\)")


def entry_main(module: str | None, script: str | None):
    """The ``main(argv)`` that a command's entry point runs."""
    if script == "app.py":
        module = "playground.server"
    elif script:
        module = script.removesuffix(".py").replace("/", ".")
    elif importlib.util.find_spec(f"{module}.__main__") is not None:
        module = f"{module}.__main__"
    return importlib.import_module(module).main


def commands() -> list[tuple[str, str]]:
    """(page, command) for every command of a ``bash`` block that runs one of our entry points (a line continued with
    ``\\`` joined to the next, commands chained with ``&&``, ``;`` or pipes taken one by one, a comment after ``#``
    left out)."""
    found = []
    for page in PAGES:
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(), re.DOTALL):
            for line in block.replace("\\\n", " ").splitlines():
                for command in re.split(r"&&|\|\||;|\|", line.split(" # ")[0]):
                    if ENTRY.search(command) and not command.strip().startswith("docker "):
                        found.append((page.relative_to(ROOT).as_posix(), command.strip()))
    return found


def test_the_readme_is_short_and_links_every_reference_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    linked = set(LINK.findall(readme))
    for page in PAGES[1:]:
        assert f"docs/{page.name}" in linked, f"README.md does not link {page.name}"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_link_leads_to_a_file_and_its_heading(page):
    for target in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        document = (page.parent / path).resolve() if path else page
        assert document.exists(), f"{page.name} links {target}: no such file"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", document.read_text(), re.MULTILINE)
            slugs = {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}
            assert anchor in slugs, f"{page.name} links {target}: no such heading"


def test_the_pages_show_commands():
    assert len(commands()) >= 20


@pytest.mark.parametrize("page, command", commands())
def test_every_command_in_the_pages_parses(page, command, capsys):
    match = ENTRY.search(command)
    words = shlex.split(command[match.end():])
    main = entry_main(match.group(1), match.group(2))
    with pytest.raises(SystemExit) as ended:
        main([*words, "--help"])
    assert ended.value.code == 0, f"{page}: {command}"
    shown = capsys.readouterr().out
    for option in {word.split("=")[0] for word in words if word.startswith("--")}:
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", shown), f"{page}: {command}: no {option}"
