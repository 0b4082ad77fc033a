"""Files that appear whole or not at all."""

import contextlib
import os
from pathlib import Path


@contextlib.contextmanager
def written_atomically(path: str | Path, *, newline: str | None = None):
    """A text file (UTF-8, readable by its owner alone) that appears at ``path`` only once it is complete and
    on disk; when the block fails, nothing appears and no partial file is left behind."""
    path = Path(path)
    partial = path.with_name(path.name + ".tmp")
    try:
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(descriptor, "w", encoding="utf-8", newline=newline) as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
