"""The project's promises about itself: the README's commands, CI, and the one-way flow of imports."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


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


def imported_modules(statement):
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    return set(subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.split())


def test_moderation_never_imports_feedback_or_gradio():
    modules = imported_modules("import moderation.engine, moderation.models, moderation.__main__")
    assert "torch" in modules
    assert not {"feedback", "gradio", "sqlite_utils"} & modules


def test_feedback_never_imports_torch():
    modules = imported_modules("import feedback.store, feedback.export, feedback.__main__")
    assert not {"torch", "transformers", "gradio"} & modules
