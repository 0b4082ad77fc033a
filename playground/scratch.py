"""The server's scratch folder: the page's uploads and the files it offers for download, owner-only, each file
removed within the hour, the whole folder removed when the server stops, and, should the server be killed,
removed by the next start on the same database:

    ROOT/moderation-playground/DATABASE-HASH/run-PID-RANDOM/{uploads,exports,.lock}

A run holds an exclusive lock (``flock``) on its ``.lock`` file while it lives; the system releases it when the
process ends, however it ends. A start removes every run of its database whose lock it can take, under the
database's own lock, so that it never sees a run that is still being made.
"""

import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
import threading
import time
import weakref
from datetime import datetime, timezone
from pathlib import Path

MAX_AGE = 3600
"""Seconds an upload or a download may stay, at most."""
SWEEP_EVERY = 60
"""Seconds between two sweeps."""
LOCK = ".lock"


def runs_folder(root: str | Path, database: str | Path) -> Path:
    """Where the runs of a server on ``database`` keep their scratch folders, under ``root``."""
    database = Path(database).resolve()
    digest = hashlib.sha256(str(database).encode()).hexdigest()[:12]
    return Path(root) / "moderation-playground" / f"{database.name}-{digest}"


class ScratchFolder:
    """This run's scratch folder under ``root`` for the server on ``database``: ``uploads`` and ``exports`` (both
    0700), whose files a sweeper thread removes once they are older than ``max_age``; runs of the same database
    whose process is gone are removed first."""

    def __init__(self, root: str | Path, database: str | Path, *, max_age: float = MAX_AGE,
                 every: float = SWEEP_EVERY):
        self.max_age = max_age
        self.every = every
        parent = runs_folder(root, database)
        with _locked(parent):
            for run in parent.glob("run-*"):
                _remove_if_dead(run)
            self.folder = Path(tempfile.mkdtemp(prefix=f"run-{os.getpid()}-", dir=parent))
            lock = open(self.folder / LOCK, "w")
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.uploads = self.folder / "uploads"
        self.exports = self.folder / "exports"
        for folder in (self.uploads, self.exports):
            folder.mkdir(mode=0o700)
        self._removed = weakref.finalize(self, _remove, self.folder, lock)
        self._stop = threading.Event()
        threading.Thread(target=self._sweep_often, name="scratch-sweeper", daemon=True).start()

    def new_export(self, name: str, suffix: str = "jsonl") -> Path:
        """Where a new file to download goes (``name``, then the time, then ``suffix``)."""
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        return self.exports / f"{name}-{stamp}.{suffix}"

    def sweep(self) -> list[Path]:
        """Remove the uploads and downloads that would be older than ``max_age`` before the next sweep (and the
        folders they leave empty); returns the files removed."""
        oldest = time.time() - (self.max_age - self.every)
        removed, stale = [], set()
        for top in (self.uploads, self.exports):
            for folder, subfolders, files in os.walk(top, topdown=False):
                with contextlib.suppress(FileNotFoundError):  # removed meanwhile
                    if os.lstat(folder).st_mtime < oldest:  # before its files go, which makes it new
                        stale.add(folder)
                for name in files:
                    path = Path(folder, name)
                    with contextlib.suppress(FileNotFoundError):
                        if path.lstat().st_mtime < oldest:
                            path.unlink()
                            removed.append(path)
                for name in subfolders:
                    if os.path.join(folder, name) in stale:
                        with contextlib.suppress(OSError):  # not empty, or removed meanwhile
                            os.rmdir(os.path.join(folder, name))
        return removed

    def close(self) -> None:
        """Stop sweeping and remove the folder with every file in it."""
        self._stop.set()
        self._removed()

    def _sweep_often(self):
        while not self._stop.wait(self.every):
            self.sweep()


@contextlib.contextmanager
def _locked(parent: Path):
    """``parent`` (made 0700 when missing) under its exclusive lock for the block, waiting for it. The last run to
    leave removes the folder, its lock file with it: a lock taken on a file removed meanwhile is taken again."""
    while True:
        parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):  # the folder went between the two lines
            lock = open(parent / LOCK, "a")
            fcntl.flock(lock, fcntl.LOCK_EX)
            with contextlib.suppress(FileNotFoundError):
                if os.stat(parent / LOCK).st_ino == os.fstat(lock.fileno()).st_ino:
                    break
            lock.close()
    try:
        yield
    finally:
        lock.close()


def _remove_if_dead(run: Path) -> None:
    """Remove ``run`` unless its server still holds its lock."""
    try:
        with open(run / LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # its server runs
        return
    except OSError:  # removed meanwhile, or not a run
        return
    shutil.rmtree(run, ignore_errors=True)


def _remove(folder: Path, lock) -> None:
    """Remove a run's folder, then its database's folder if no other run is left in it."""
    with _locked(folder.parent):
        shutil.rmtree(folder, ignore_errors=True)
        lock.close()
        if [entry.name for entry in os.scandir(folder.parent)] == [LOCK]:
            (folder.parent / LOCK).unlink()
            folder.parent.rmdir()
