"""Files that appear whole or not at all."""

import contextlib
import os
import tempfile
from pathlib import Path


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
