"""The project's promises about itself: the README's commands, CI, pinned requirements, and the one-way flow
of imports (text -> moderation -> playground -> feedback; the libraries know nothing of the web)."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
WEB = {"gradio", "gradio_client", "fastapi", "starlette", "uvicorn"}
MODEL = {"torch", "transformers", "accelerate", "peft", "safetensors", "tokenizers"}
PICTURES = {"plotly"}
FORBIDDEN = {
    "moderation": WEB | PICTURES | {"feedback", "playground", "sqlite_utils"},
    "moderation entry points": WEB | PICTURES | {"playground"},
    "feedback": WEB | MODEL | PICTURES | {"playground"},
    "playground/service.py": WEB | MODEL | PICTURES,
    "playground/jobs.py": WEB | MODEL | PICTURES,
    "playground/prometheus.py": WEB | MODEL | PICTURES,
    "playground/scratch.py": WEB | MODEL | PICTURES,
    "playground/uploads.py": WEB | MODEL | PICTURES,
    "playground/logins.py": {"gradio", "gradio_client", "fastapi", "uvicorn"} | MODEL | PICTURES,
    "playground/api": {"gradio", "gradio_client"} | MODEL | PICTURES,
    "playground/ui": {"fastapi", "starlette", "uvicorn"} | MODEL,
}
"""What each package (or module) may never import, at the top or inside a function. The command lines of
``moderation`` (its ``__main__.py`` files) are entry points: they may open the feedback store."""


def files_of(place: str) -> list[Path]:
    if place == "moderation entry points":
        return sorted((ROOT / "moderation").rglob("__main__.py"))
    target = ROOT / place
    if target.is_file():
        return [target]
    return [path for path in sorted(target.rglob("*.py")) if place != "moderation" or path.name != "__main__.py"]


def test_readme_starts_with_two_commands_and_ci_runs_the_test_one():
    head = (ROOT / "README.md").read_text().split("---")[0]
    start, tests = re.findall(r"```bash\n(.+?)\n```", head)
    assert start.endswith("app.py") and "requirements.txt" in start
    assert tests.endswith("python -m pytest")
    assert (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1] == tests


def test_pinned_requirements():
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        assert re.fullmatch(r"[A-Za-z0-9_.-]+==[\w.]+", line), line
    assert "torch==2.13.0" in (ROOT / "requirements.txt").read_text().splitlines()


def imports_of(path: Path) -> set[str]:
    """The top-level names of every package ``path`` imports (relative imports resolved to our packages)."""
    names = set()
    package = path.relative_to(ROOT).parts[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add(package if node.level else node.module.split(".")[0])
    return names


@pytest.mark.parametrize("place", FORBIDDEN)
def test_each_layer_imports_only_what_it_may(place):
    files = files_of(place)
    assert files
    for path in files:
        wrong = imports_of(path) & FORBIDDEN[place]
        assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"


LIBRARY_PACKAGES = ("moderation", "feedback", "playground")
TORCH = {"torch", "peft", "accelerate"}
TORCH_ALLOWED = ("moderation/backends/local/", "moderation/training/", "moderation/demo/build.py")
"""Where torch (and what loads it) may be imported: the local backend, training and the demo model's build."""


def module_files() -> dict[str, Path]:
    """Every module of the project's packages, by dotted name (a package by its own name)."""
    modules = {}
    for package in LIBRARY_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    """Module -> the project's modules it imports, anywhere in it (inside functions too): ``from . import x`` names
    the submodule ``x`` where there is one, else the package."""
    modules = module_files()
    graph = {}
    for name, path in modules.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(here[: len(here) - node.level + 1] + [node.module or ""]).strip(".") \
                    if node.level else node.module
                imported |= {f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                             for alias in node.names}
        graph[name] = {target for target in imported if target in modules} - {name}
    return graph


def a_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` (its modules in order, the first again at the end), or None."""
    state, trail = {}, []

    def visit(module):
        state[module] = "open"
        trail.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                return trail[trail.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        state[module] = "done"
        trail.pop()
        return None

    return next((found for module in sorted(graph) if module not in state and (found := visit(module))), None)


def test_no_import_circle_in_any_package():
    graph = import_graph()
    assert "moderation.loader" in graph["moderation.training.__main__"], "the walk sees what modules import"
    assert a_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert a_cycle(graph) is None, f"an import circle: {' -> '.join(a_cycle(graph))}"


def test_torch_loads_only_where_a_folder_says_so():
    files = module_files()
    assert "torch" in imports_of(files["moderation.backends.local.scoring"]), "the walk sees torch where it is"
    for path in files.values():
        if not str(path.relative_to(ROOT)).startswith(TORCH_ALLOWED):
            assert not TORCH & imports_of(path), f"{path.relative_to(ROOT)} imports torch: move it to one of " \
                                                 f"{', '.join(TORCH_ALLOWED)}"


def loaded_modules(*statements: str) -> list[set[str]]:
    """The modules each statement leaves loaded, each run in a fresh interpreter (all at once)."""
    runs = [subprocess.Popen([sys.executable, "-c", f"import sys; {statement}; print(' '.join(sys.modules))"],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for statement in statements]
    loaded = []
    for run in runs:
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
        loaded.append(set(out.split()))
    return loaded


@pytest.mark.slow
def test_what_each_entry_loads(tiny_model_dir):
    remote = (f"from moderation.loader import open_moderator; "
              f"open_moderator({str(tiny_model_dir)!r}, backend='vllm', base_url='http://127.0.0.1:9')")
    libraries, vllm = loaded_modules(
        "import moderation.engine, moderation.settings, moderation.labelled_files, moderation.batch_files,"
        " feedback.queue, moderation.versions, moderation.evaluate, moderation.evaluate.__main__,"
        " moderation.training.data,"
        " feedback.store, feedback.export, feedback.reviewers, feedback.stats, feedback.writer, feedback.merge,"
        " feedback.api_keys, feedback.__main__, playground.service, playground.jobs",
        remote,
    )
    # The Moderator and batch files run on a backend, no model code loads before a model does, and the service
    # beneath the page and the API loads neither.
    assert not {"torch", "transformers", "gradio", "fastapi", "plotly"} & libraries
    model_code = {name for name in vllm if re.fullmatch(r"transformers\.models\.(?!auto\.)\w+\.modeling_\w+", name)}
    assert not model_code and "moderation.backends.local.backend" not in vllm, "--backend vllm loads no model code"
