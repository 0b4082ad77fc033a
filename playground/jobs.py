"""Retraining jobs: one fine-tune at a time, in a process of its own (``python -m moderation.train``), with its
progress and log for the page. Whatever becomes of a job, what the app serves changes only when a version is
served; a job's version folder appears whole or not at all."""

import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from moderation.errors import InvalidInput
from moderation.folders import remove_leftovers
from moderation.progress import last_progress
from moderation.versions import REPORT_MD, ModelVersion

LOG_TAIL = 20_000
"""How much of the end of a job's log is shown."""
STOP_WAIT_S = 30


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

    def check_idle(self) -> None:
        """InvalidInput while a job runs: one job at a time."""
        if self._process is not None and self._process.poll() is None:
            raise InvalidInput(f"The retraining job {self._name} is still running: wait for it to finish, or stop it.")

    def start(self, name: str, arguments: list[str]) -> Job:
        """Start ``python -m moderation.train ARGUMENTS --out FOLDER/NAME``, logging to ``FOLDER/NAME.log``; the
        half-written folders of jobs killed outright before it are removed first."""
        with self._lock:
            self.check_idle()
            self.folder.mkdir(parents=True, exist_ok=True)
            remove_leftovers(self.folder)
            with open(self._log(name), "w") as log:
                self._process = subprocess.Popen(
                    [sys.executable, "-u", "-m", "moderation.train", *arguments, "--out", str(self.folder / name)],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                )
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
        """Stop the running job (its half-written version is removed); InvalidInput when none runs."""
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                raise InvalidInput("No retraining job is running.")
            self._stopped = True
            self._process.terminate()
            self._process.wait(timeout=STOP_WAIT_S)
        return self.status()

    def versions(self) -> list[tuple[Path, ModelVersion]]:
        """The versions trained here, newest first: (folder, version)."""
        found = [(path, ModelVersion.find(path)) for path in self.folder.glob("*") if path.is_dir()
                 and not path.name.startswith(".")] if self.folder.is_dir() else []
        return sorted(((path, version) for path, version in found if version), key=lambda item: item[1].created,
                      reverse=True)

    def _log(self, name: str) -> Path:
        return self.folder / f"{name}.log"
