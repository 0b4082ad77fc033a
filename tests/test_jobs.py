"""A retraining job lives no longer than the app that started it: a clean stop of the app stops the job and removes
its half-written version, and if the app is killed outright (SIGKILL) the job is told to stop by the kernel. A job
outlives the thread that started it (the page's handlers run on threads that come and go).

The clean stop is shown with SIGINT (Ctrl-C); SIGTERM takes the same path (uvicorn's shutdown, then the service's
close), and ``tests/test_app.py`` stops a real app with it."""

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from servers import call_page, make_service
from test_retrain import RECORDS, accept

from bench.app_process import running_app
from moderation.atomic_writes import BUILDING
from moderation.training.progress import last_progress
from playground.jobs import JobRunner

GONE_WITHIN_S = 30


def trainers(marker: Path) -> list[int]:
    """The ids of the live ``python -m moderation.training`` processes whose command line names ``marker``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if b"moderation.training" in command and any(str(marker).encode() in part for part in command) and state != "Z":
            found.append(int(proc.name))
    return found


def training_started(versions: Path) -> bool:
    """Whether the job's log shows its first training step (the version is written only after the last)."""
    return any(last_progress(log.read_text(encoding="utf-8", errors="replace")) for log in versions.glob("*.log"))


def wait_for(condition, what: str, timeout: float = GONE_WITHIN_S, every: float = 0.02):
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"waited {timeout} s for {what}"
        time.sleep(every)
    return found


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=lambda sig: sig.name)
def test_a_job_dies_with_the_app_and_leaves_no_version(tmp_path, tiny_model_dir, tiny_moderator, stop):
    """``python app.py`` starts a job through the page's API; the job is held (SIGSTOP) while its version is
    half-written, the app gets ``stop``, and the job is let go (SIGCONT): it ends, and no version appears."""
    service = make_service(tmp_path, tiny_moderator)
    accept(service, RECORDS)
    service.close()
    versions = tmp_path / "versions"
    try:
        with running_app(tiny_model_dir, tmp_path / "feedback.db", "--versions", versions,
                         log=tmp_path / "app.log") as (url, app):
            assert call_page(url, "/retrain", "ana")[0] == "complete"
            (trainer,) = wait_for(lambda: trainers(versions), "the job to start")
            wait_for(lambda: list(versions.glob(f".*{BUILDING}*")) and training_started(versions),
                     "the job to write its version and train", timeout=120, every=0.005)
            os.kill(trainer, signal.SIGSTOP)  # held mid-training, far from its end, whatever the machine's speed
            try:
                os.kill(app.pid, stop)
                if stop == signal.SIGKILL:
                    app.wait(timeout=GONE_WITHIN_S)  # gone before the job goes on: only the kernel can tell it
            finally:
                os.kill(trainer, signal.SIGCONT)
            app.wait(timeout=GONE_WITHIN_S)
            wait_for(lambda: not trainers(versions), "the job to end")
    finally:
        for pid in trainers(versions):
            os.kill(pid, signal.SIGKILL)
    assert not [path.name for path in versions.iterdir() if path.is_dir()], "a version or half of one is left"


def test_a_job_outlives_the_thread_that_started_it(tmp_path, tiny_model_dir):
    """The kernel stops a job when the thread that started it ends (PR_SET_PDEATHSIG): the runner starts jobs from
    a thread of its own, so a job started from a short-lived thread goes on."""
    runner = JobRunner(tmp_path / "versions")
    data = tmp_path / "data.jsonl"
    data.write_text("")  # the job fails on it, but only once it has loaded its libraries (seconds)
    starter = threading.Thread(target=runner.start, args=("short-lived", ["--model", str(tiny_model_dir), "--data",
                                                                          str(data)]))
    starter.start()
    starter.join()
    time.sleep(0.5)
    try:
        assert runner.status().state == "running", runner.status().log
    finally:
        runner.close()
    assert runner.status().state == "stopped"
