"""Retraining jobs: one fine-tune at a time, in a process of its own (``python -m moderation.training``), with its
progress and log for the page. Whatever becomes of a job, what the app serves changes only when a version is
served; a job's version folder appears whole or not at all. A job lives no longer than the app: closing the runner
stops it, and on Linux the kernel stops it if the app dies outright."""

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from moderation.atomic_writes import remove_leftovers
from moderation.errors import Conflict
from moderation.evaluate.intervals import figures_of
from moderation.training.progress import last_progress
from moderation.versions import REPORT_JSON, REPORT_MD, ModelVersion

LOG_TAIL = 20_000
"""How much of the end of a job's log is shown."""
STOP_WAIT_S = 30
"""How long a job told to stop (SIGTERM) has to remove its half-written version before it is killed."""
TERM_AGAIN_S = 1
"""How often a job that has not stopped is told again: Python drops the exit a signal raises while an object is being
finalised (a ``__del__`` running when it lands), so one SIGTERM can be lost."""
PR_SET_PDEATHSIG = 1
"""prctl(2)'s option: the signal a process gets when the thread that created it ends."""


@dataclass(frozen=True)
class Job:
    """A training job as it stands: ``running``, ``finished``, ``failed`` or ``stopped``; its step of how
    many, the end of its log, the version it wrote once finished, and its process id."""

    name: str
    pid: int
    state: str
    step: int
    total: int
    log: str
    version: ModelVersion | None
    folder: Path

    @property
    def report(self) -> str | None:
        """The finished job's report: the held-out records evaluated before and after training (Markdown)."""
        path = self.folder / REPORT_MD
        return path.read_text(encoding="utf-8") if self.state == "finished" and path.exists() else None

    @property
    def progress(self) -> float:
        """The share of the planned steps done (1 once finished)."""
        if self.state == "finished":
            return 1.0
        return self.step / self.total if self.total else 0.0


class JobRunner:
    """Runs training jobs one at a time; their versions, logs and data live in ``folder``."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._name: str | None = None
        self._stopped = False
        # The kernel's "parent died" signal follows the thread that started a process, and the page's handlers run
        # on threads that come and go: jobs are started from this thread, which lives as long as the runner.
        self._starter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="job-starter")

    def check_idle(self) -> None:
        """Conflict while a job runs: one job at a time."""
        if self._process is not None and self._process.poll() is None:
            raise Conflict(f"The retraining job {self._name} is still running: wait for it to finish, or stop it.")

    def start(self, name: str, arguments: list[str]) -> Job:
        """Start ``python -m moderation.training ARGUMENTS --out FOLDER/NAME``, logging to ``FOLDER/NAME.log``; the
        half-written folders of jobs killed outright before it are removed first. The job gets SIGTERM (and removes
        its half-written version) if this process ends without stopping it."""
        with self._lock:
            self.check_idle()
            self.folder.mkdir(parents=True, exist_ok=True)
            remove_leftovers(self.folder)
            with open(self._log(name), "w") as log:
                self._process = self._starter.submit(
                    subprocess.Popen,
                    [sys.executable, "-u", "-m", "moderation.training", *arguments, "--out", str(self.folder / name)],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=_tied_to(os.getpid()),
                ).result()
            self._name, self._stopped = name, False
        return self.status()

    def status(self) -> Job | None:
        """The latest job as it stands now, or None before the first one."""
        with self._lock:
            if self._process is None:
                return None
            name, pid, code, stopped = self._name, self._process.pid, self._process.poll(), self._stopped
        log = self._log(name).read_text(encoding="utf-8", errors="replace")
        folder = self.folder / name
        version = ModelVersion.find(folder) if code == 0 and folder.is_dir() else None
        state = "running" if code is None else "finished" if version else "stopped" if stopped else "failed"
        step, total = last_progress(log) or (0, 0)
        return Job(name, pid, state, step, total, log[-LOG_TAIL:], version, folder)

    def stop(self) -> Job:
        """Stop the running job (its half-written version is removed); Conflict when none runs."""
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                raise Conflict("No retraining job is running.")
            self._end()
        return self.status()

    def close(self) -> None:
        """Stop the running job, if any (its half-written version is removed), and the thread that starts jobs."""
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                self._end()
        self._starter.shutdown()

    def versions(self) -> list[tuple[Path, ModelVersion]]:
        """The versions trained here, newest first: (folder, version)."""
        found = [(path, ModelVersion.find(path)) for path in self.folder.glob("*") if path.is_dir()
                 and not path.name.startswith(".")] if self.folder.is_dir() else []
        return sorted(((path, version) for path, version in found if version), key=lambda item: item[1].created,
                      reverse=True)

    def _log(self, name: str) -> Path:
        return self.folder / f"{name}.log"

    def _end(self) -> None:
        """Tell the running job to stop (it removes its half-written version; told again every TERM_AGAIN_S until it
        has), kill it if it has not within STOP_WAIT_S, and once it has ended remove whatever it still left (a signal
        can land between the creation of its folder and the code that would remove it)."""
        self._stopped = True
        deadline = time.monotonic() + STOP_WAIT_S
        while self._process.poll() is None and time.monotonic() < deadline:
            self._process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=min(TERM_AGAIN_S, max(deadline - time.monotonic(), 0)))
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        remove_leftovers(self.folder)


def version_report(folder: Path) -> dict | None:
    """The figures of the report a version was written with (``report.json``): on how many ``texts`` it was judged,
    accuracy, macro-F1 and (for an ordinal policy) quadratic kappa ``before`` and ``after`` training with the 95%
    ``interval`` of each change (None in a report made before intervals), and how many ``benign_regressions``; None
    when it has no report."""
    try:
        report = json.loads((folder / REPORT_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    paired = report.get("paired")
    return {"texts": report["gold"]["size"],
            "figures": {figure: {"before": report["before"][figure], "after": report["after"][figure],
                                 "interval": paired and paired["intervals"][figure]["delta"]}
                        for figure in figures_of(report["after"])},
            "benign_regressions": len(report.get("benign_regressions", []))}


def _tied_to(parent: int):
    """Popen's ``preexec_fn`` that ties a job to this process, on Linux (elsewhere None): in the child,
    before it runs the job, ask the kernel for SIGTERM when the thread that started it ends (PR_SET_PDEATHSIG, which
    the job keeps), and give up at once if ``parent`` has already ended. It calls prctl and getppid alone: little
    enough to run between fork and exec in a process with threads."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def die_with_parent():
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:
            os._exit(1)

    return die_with_parent
