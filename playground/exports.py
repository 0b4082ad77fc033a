"""The page's export files: written owner-only in the app's own folder, removed within the hour and at shutdown.

The page's download serves them where they are (the download component's cache is this folder, so Gradio
makes no copy of its own); a sweeper thread removes each file once it is older than :data:`MAX_AGE`.
"""

import shutil
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

MAX_AGE = 3600
"""Seconds an export file may stay, at most."""
SWEEP_EVERY = 60
"""Seconds between two sweeps."""


class ExportFiles:
    """A folder of export files that removes them at most :data:`MAX_AGE` seconds after they were written."""

    def __init__(self, folder: Path, *, max_age: float = MAX_AGE, every: float = SWEEP_EVERY):
        self.folder = Path(folder)
        self.max_age = max_age
        self.every = every
        self._stop = threading.Event()
        self._sweeper = threading.Thread(target=self._sweep_often, name="export-sweeper", daemon=True)
        self._sweeper.start()

    def new_path(self, name: str, suffix: str = "jsonl") -> Path:
        """Where a new file of this kind goes (``name``, then the time, then ``suffix``)."""
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        return self.folder / f"{name}-{stamp}.{suffix}"

    def sweep(self) -> list[Path]:
        """Remove the files that would be older than ``max_age`` before the next sweep; returns them."""
        oldest = time.time() - (self.max_age - self.every)
        removed = []
        for path in self.folder.glob("*"):
            try:
                if path.is_file() and path.stat().st_mtime < oldest:
                    path.unlink()
                    removed.append(path)
            except FileNotFoundError:  # removed meanwhile
                continue
        return removed

    def close(self) -> None:
        """Stop sweeping and remove the folder with every file in it."""
        self._stop.set()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _sweep_often(self):
        while not self._stop.wait(self.every):
            self.sweep()
