"""Shared fixtures: small GPT-J checkpoints built by the tests themselves, offline."""

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).parent.parent
# MODERATION_TEST_CACHE keeps the built models between runs while developing; CI leaves it unset.
KEEP_CACHES = bool(os.environ.get("MODERATION_TEST_CACHE"))
CACHES = Path(os.environ.get("MODERATION_TEST_CACHE") or tempfile.mkdtemp(prefix="moderation-tests-"))
os.environ.update(
    HF_HUB_OFFLINE="1",
    HF_DATASETS_OFFLINE="1",
    HF_HOME=str(CACHES / "huggingface"),
    MODERATION_CACHE=str(CACHES / "moderation"),
    TOKENIZERS_PARALLELISM="false",
)

import pytest  # noqa: E402

from moderation.demo import ensure_demo_model, new_gptj, split_seed, train_tokenizer  # noqa: E402
from moderation.engine import Moderator  # noqa: E402


def pytest_sessionfinish(session):
    """Model caches live in the test session's own folder (set above, before transformers loads)."""
    if not KEEP_CACHES:
        shutil.rmtree(CACHES, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A randomly initialised GPT-J with a 256-token context, saved as transformers saves any checkpoint."""
    path = tmp_path_factory.mktemp("tiny-gptj")
    records, _ = split_seed()
    tokenizer = train_tokenizer(records, vocab_size=400)
    model = new_gptj(tokenizer, n_embd=32, n_layer=2, n_head=2, rotary_dim=8, n_positions=256, seed=1)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_moderator(tiny_model_dir):
    return Moderator.load(str(tiny_model_dir))


@pytest.fixture(scope="session")
def demo_model_dir():
    """The demo model, trained once per test session into the session's cache (as the app builds it)."""
    return ensure_demo_model(progress=False)


@pytest.fixture(scope="session")
def demo_moderator(demo_model_dir):
    return Moderator.load(str(demo_model_dir))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serving(command, ready_url, log_path):
    """The server that ``command`` starts (its output in ``log_path``); yields the process once
    ``ready_url`` answers, and stops it afterwards if it still runs."""
    with open(log_path, "w") as log:
        server = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    urllib.request.urlopen(ready_url, timeout=2)
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"{command[1]} did not start: {Path(log_path).read_text()}") from None
                    time.sleep(0.3)
            yield server
        finally:
            if server.poll() is None:
                server.terminate()
            server.wait(timeout=30)


def app_command(model, db_path, port, *extra):
    """``python app.py`` on ``model`` and ``db_path``, as a reviewer starts it."""
    return [sys.executable, "app.py", "--model", str(model), "--db", str(db_path), "--port", str(port), *extra]


@contextlib.contextmanager
def running_app(model, db_path, *extra):
    """``python app.py`` on a free port; yields its URL once /healthz answers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with serving(app_command(model, db_path, port, *extra), url + "healthz", Path(db_path).with_suffix(".log")):
        yield url


@pytest.fixture(scope="module")
def app_server(demo_model_dir, tmp_path_factory):
    """The playground on the demo model (built once by ``demo_model_dir``) with its own database: (url, db path)."""
    db_path = tmp_path_factory.mktemp("app") / "feedback.db"
    with running_app("demo", db_path) as url:
        yield url, db_path
