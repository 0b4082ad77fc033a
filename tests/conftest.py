"""Shared fixtures: small GPT-J checkpoints built by the tests themselves (offline), the fake backend's
service, and servers started in this process (uvicorn in a thread) or, where a process is the point, apart."""

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
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
    GRADIO_ANALYTICS_ENABLED="False",
)

import pytest  # noqa: E402
import uvicorn  # noqa: E402
from fakes import fake_moderator  # noqa: E402

from feedback.reviewers import Reviewers  # noqa: E402
from feedback.store import FeedbackStore  # noqa: E402
from moderation.engine import Moderator  # noqa: E402
from moderation.models import DEMO_NAME  # noqa: E402
from playground.server import create_app  # noqa: E402
from playground.service import PlaygroundService  # noqa: E402

DEMO_BUILD_LOG = CACHES / "demo-build.log"
demo_build: subprocess.Popen | None = None


def pytest_sessionstart(session):
    """The demo model trains in a process of its own (one thread) while the tests that need no trained model run."""
    global demo_build
    DEMO_BUILD_LOG.parent.mkdir(parents=True, exist_ok=True)
    with open(DEMO_BUILD_LOG, "w") as log:
        demo_build = subprocess.Popen([sys.executable, "-m", "moderation.demo"], cwd=ROOT, stdout=log,
                                      stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})


def pytest_collection_modifyitems(items):
    """The tests that need the trained demo model run last, once it is built (a stable sort keeps the rest)."""
    items.sort(key=lambda item: "demo_model_dir" in item.fixturenames)


def pytest_sessionfinish(session):
    """Model caches live in the test session's own folder (set above, before transformers loads)."""
    if demo_build is not None and demo_build.poll() is None:
        demo_build.kill()
    if not KEEP_CACHES:
        shutil.rmtree(CACHES, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A randomly initialised GPT-J with a 256-token context, saved as transformers saves any checkpoint."""
    from moderation.demo import new_gptj, split_seed, train_tokenizer

    path = tmp_path_factory.mktemp("tiny-gptj")
    records, _ = split_seed()
    tokenizer = train_tokenizer(records, vocab_size=400)
    model = new_gptj(tokenizer, n_embd=32, n_layer=2, n_head=2, rotary_dim=8, n_positions=256, seed=1)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_adapter_dir(tiny_model_dir, tmp_path_factory):
    """A LoRA adapter trained on the tiny model by ``python -m moderation.train`` (its own records, no replay)."""
    from moderation.demo import split_seed
    from moderation.prompt import format_record
    from moderation.train import main as train

    folder = tmp_path_factory.mktemp("tiny-adapter")
    data = folder / "export.jsonl"
    data.write_text("".join(json.dumps({"text": format_record(*record)}) + "\n" for record in split_seed()[0][:60]))
    code = train(["--model", str(tiny_model_dir), "--data", str(data), "--out", str(folder / "adapter"), "--lora",
                  "--max-steps", "20", "--eval-steps", "10", "--learning-rate", "3e-2", "--replay-ratio", "0"])
    assert code == 0
    return folder / "adapter"


@pytest.fixture(scope="session")
def tiny_moderator(tiny_model_dir):
    return Moderator.load(str(tiny_model_dir))


@pytest.fixture(scope="session")
def demo_model_dir():
    """The demo model, trained once per test session into the session's cache (as the app builds it)."""
    from moderation.demo import ensure_demo_model

    if demo_build.wait() != 0:
        pytest.fail(f"building the demo model failed:\n{DEMO_BUILD_LOG.read_text()[-3000:]}")
    return ensure_demo_model(progress=False)


@pytest.fixture(scope="session")
def demo_moderator(demo_model_dir):
    return Moderator.load(str(demo_model_dir), name=DEMO_NAME, demo=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serving_in_thread(app):
    """``app`` served by uvicorn in a thread of this process on a free port; yields its URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, name="test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the in-process server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = server.force_exit = True  # open connections (a client's stream) are cut
        thread.join(timeout=10)


@dataclass
class App:
    """A playground served in this process: its URL, service and database file."""

    url: str
    service: PlaygroundService
    db_path: Path


def make_service(tmp_path: Path, moderator=None, **options) -> PlaygroundService:
    """A service on ``moderator`` (the fake one by default) with its own database and export folder."""
    (tmp_path / "exports").mkdir(parents=True, exist_ok=True)
    return PlaygroundService(moderator or fake_moderator(), FeedbackStore(tmp_path / "feedback.db"),
                             tmp_path / "exports", **options)


@contextlib.contextmanager
def running_in_process(tmp_path: Path, moderator=None, *, reviewers_file=None, record_api=True, app_options=None,
                       **options):
    """The whole app (page and API) on ``moderator`` served in this process; yields an :class:`App`.
    ``app_options`` go to ``create_app``, ``options`` to the service."""
    service = make_service(tmp_path, moderator, **options)
    reviewers = Reviewers(reviewers_file) if reviewers_file else None
    app = create_app(service, reviewers=reviewers, record_api=record_api, **(app_options or {}))
    with serving_in_thread(app) as url:
        yield App(url, service, tmp_path / "feedback.db")
    service.close()


@pytest.fixture
def service(tmp_path):
    """The service on the fake backend, with its own database."""
    service = make_service(tmp_path)
    yield service
    service.close()


@pytest.fixture(scope="module")
def fake_app(tmp_path_factory):
    """The app on the fake backend, served in this process for the module's tests."""
    with running_in_process(tmp_path_factory.mktemp("fake-app")) as app:
        yield app


@pytest.fixture(scope="module")
def demo_app(demo_moderator, tmp_path_factory):
    """The app on the demo model, served in this process for the module's tests."""
    with running_in_process(tmp_path_factory.mktemp("demo-app"), demo_moderator) as app:
        yield app


@dataclass
class Ran:
    """What a command line's ``main`` did: its exit code and what it printed."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capfd):
    """Runs a command line's ``main(argv)`` in this process, as its ``python -m`` entry would: a :class:`Ran`."""

    def run(main, *args) -> Ran:
        capfd.readouterr()
        try:
            code = main([str(arg) for arg in args])
        except SystemExit as exit:
            code = exit.code
        printed = capfd.readouterr()
        return Ran(code, printed.out, printed.err)

    return run


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
    """``python app.py`` on ``model`` (None: its default) and ``db_path``, as a reviewer starts it."""
    chosen = ["--model", str(model)] if model else []
    return [sys.executable, "app.py", *chosen, "--db", str(db_path), "--port", str(port), *extra]


@contextlib.contextmanager
def running_app(model, db_path, *extra):
    """``python app.py`` in its own process on a free port; yields its URL once /healthz answers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with serving(app_command(model, db_path, port, *extra), url + "healthz", Path(db_path).with_suffix(".log")):
        yield url
