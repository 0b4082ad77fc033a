"""Files and folders that appear whole or not at all: written beside their place, then renamed into it."""

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from .errors import InvalidInput

BUILDING = "-building-"
"""In the name of a folder being written beside its target: ``.TARGET-building-XXXX``."""
_FILLING: set[Path] = set()
"""The folders :func:`written_whole` is filling in this process."""


@contextlib.contextmanager
def written_atomically(path: str | Path, *, newline: str | None = None):
    """A text file (UTF-8, readable by its owner alone) that appears at ``path`` only once it is complete and
    on disk; when the block fails, nothing appears and no partial file is left behind.

    The partial file is a new one of its own in the same folder, created 0600 (never a leftover that others could
    read), so that no reader of ``path`` ever sees a partial file or one open to others, and two writers never mix.
    """
    path = Path(path)
    descriptor, partial = tempfile.mkstemp(prefix=f"{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with open(descriptor, "w", encoding="utf-8", newline=newline) as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    finally:
        Path(partial).unlink(missing_ok=True)


def check_free(target: Path, *, replace: bool) -> None:
    """InvalidInput when ``target`` exists and may not be replaced."""
    if target.exists() and not replace:
        raise InvalidInput(f"{target} already exists: choose another --out folder, or pass --force to replace it.",
                           "out")


@contextlib.contextmanager
def written_whole(target: Path, *, replace: bool = False):
    """A fresh folder beside ``target`` to fill; once the block ends it becomes ``target`` (replacing it only
    with ``replace``), and if the block fails (or the process is told to stop) it is removed."""
    check_free(target, replace=replace)
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}{BUILDING}"))
    _FILLING.add(building)
    try:
        yield building
        check_free(target, replace=replace)
        shutil.rmtree(target, ignore_errors=True)
        building.rename(target)
    finally:
        _FILLING.discard(building)
        shutil.rmtree(building, ignore_errors=True)


def remove_unfinished() -> None:
    """Remove the folders :func:`written_whole` is filling in this process, for a stop that cannot wait for its
    ``finally`` (a signal handler that ends the process at once)."""
    for building in list(_FILLING):
        shutil.rmtree(building, ignore_errors=True)


def remove_leftovers(parent: Path) -> list[Path]:
    """Remove the folders that :func:`written_whole` left half-written in ``parent`` when its process was killed
    outright (SIGKILL skips every cleanup); call it only while nothing writes there. Returns what it removed."""
    leftovers = [path for path in Path(parent).glob(f".*{BUILDING}*") if path.is_dir()]
    for path in leftovers:
        shutil.rmtree(path, ignore_errors=True)
    return leftovers
