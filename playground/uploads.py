"""The files uploaded to the page. A page call may name only a regular file that this server received as an
upload, in its own upload folder: anything else (a file elsewhere, a link, a device, a FIFO, a folder, a URL) is
refused before it is opened. Uploads are bounded: a server holds at most ``max_total`` bytes of them, a client
address at most ``max_per_client``; each one is removed once the page call that used it ends, and the scratch
folder's sweeper removes the others within the hour.
"""

import contextlib
import os
import stat
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass
from pathlib import Path

from moderation.errors import InvalidInput

from .scratch import MAX_AGE

CLIENT_SHARE = 4
"""A client address may hold this fraction of the server's uploads at once: a quarter."""
MIN_SIZE = 4096
"""Bytes each upload counts for at least (a disk block), so that many empty files are not free."""
NOT_UPLOADED = ("not a file uploaded to this server. Upload the file through the page (or with gradio_client's "
                "handle_file), then send the path that the upload returned.")
GONE = ("that upload is no longer on the server (an upload serves one call, and any upload is removed within the "
        "hour): upload the file again.")


class UploadRefused(Exception):
    """An upload that would take its client or the server past its bound; the message says what to do."""


@dataclass(frozen=True)
class Upload:
    """A file received: the client address that sent it, the bytes it counts for, and when it came."""

    client: str
    size: int
    at: float


class Uploads:
    """The uploads of one server, in ``folder``: checked when a page call names them, counted while they are
    kept, removed when their call ends."""

    def __init__(self, folder: str | Path, *, max_total: int, max_age: float = MAX_AGE, clock=time.monotonic):
        self.folder = Path(os.path.realpath(folder))
        self.max_total = max_total
        self.max_per_client = max_total // CLIENT_SHARE
        self.max_age = max_age
        self.clock = clock
        self._files: OrderedDict[Path, Upload] = OrderedDict()  # oldest first
        self._held: Counter[str] = Counter()  # bytes per client address: its files and its uploads under way
        self._total = 0  # bytes of every file and every upload under way, and of failed uploads' leftovers
        self._under_way = 0
        self._leftovers = 0
        self._lock = threading.Lock()

    def file(self, path) -> Path:
        """``path`` when it names a regular file that this server received as an upload; InvalidInput saying to
        upload it otherwise. Nothing outside the upload folder is looked at, and nothing is opened."""
        if not isinstance(path, str) or not os.path.isabs(path):
            raise InvalidInput(NOT_UPLOADED, "file")
        candidate = Path(os.path.normpath(path))
        if not candidate.is_relative_to(self.folder):
            raise InvalidInput(NOT_UPLOADED, "file")
        try:
            kind = candidate.lstat().st_mode
            real = Path(os.path.realpath(candidate))
        except FileNotFoundError:
            raise InvalidInput(GONE, "file") from None
        except (OSError, ValueError):  # a name too long, a NUL byte
            raise InvalidInput(NOT_UPLOADED, "file") from None
        if not stat.S_ISREG(kind) or real != candidate:
            raise InvalidInput(NOT_UPLOADED, "file")
        return candidate

    def admit(self, client: str, size: int) -> None:
        """Count an upload of up to ``size`` bytes from ``client`` as under way; UploadRefused when it would take
        the client or the server past its bound."""
        with self._lock:
            self._forget_swept()
            if self._held[client] + size > self.max_per_client:
                raise UploadRefused(
                    f"Your uploads would exceed {self.max_per_client:,} bytes, the most one client may keep on this "
                    "server (a quarter of --max-uploads): use the files you uploaded (each is removed once a call "
                    "has used it), or wait, since any upload is removed within the hour.")
            if self._total + size > self.max_total:
                raise UploadRefused(
                    f"The server keeps {self.max_total:,} bytes of uploads at most (--max-uploads), and it is full: "
                    "try again in a few minutes.")
            self._held[client] += size
            self._total += size
            self._under_way += 1

    def received(self, client: str, size: int, paths: list[str] | None) -> None:
        """The upload of ``client`` counted as ``size`` bytes by :meth:`admit` has ended: ``paths`` are the files
        it stored, or None when it failed (its partial files are removed once no upload is under way)."""
        with self._lock:
            self._release(client, size)
            self._under_way -= 1
            if paths is None:
                self._leftovers += size
                self._total += size
            for path in paths or ():
                with contextlib.suppress(OSError):
                    self._keep(Path(path), Upload(client, max(Path(path).stat().st_size, MIN_SIZE), self.clock()))
            if not self._under_way and self._leftovers:
                self._remove_leftovers()

    def used(self, paths: list[Path]) -> None:
        """A page call has ended: remove the uploads it used (and what Gradio's file inputs leave behind)."""
        with self._lock:
            for path in paths:
                upload = self._files.pop(path, None)
                if upload is not None:
                    self._release(upload.client, upload.size)
                path.unlink(missing_ok=True)
                with contextlib.suppress(OSError):  # the folder Gradio made for it, unless another file is in it
                    path.parent.rmdir()
            if paths and not self._under_way:
                self._remove_leftovers()

    def _keep(self, path: Path, upload: Upload) -> None:
        previous = self._files.pop(path, None)
        if previous is not None:  # the same content and name again: Gradio stored it in the same place
            self._release(previous.client, previous.size)
        self._files[path] = upload
        self._held[upload.client] += upload.size
        self._total += upload.size

    def _release(self, client: str, size: int) -> None:
        self._held[client] -= size
        if not self._held[client]:
            del self._held[client]
        self._total -= size

    def _forget_swept(self) -> None:
        """Stop counting the uploads old enough for the sweeper to have removed them."""
        while self._files:
            path, upload = next(iter(self._files.items()))
            if upload.at > self.clock() - self.max_age:
                return
            del self._files[path]
            self._release(upload.client, upload.size)

    def _remove_leftovers(self) -> None:
        """Remove the files at the top of the folder, now that no upload is under way: what failed uploads left
        (Gradio writes an upload there, then moves it into a folder of its own), and the empty file that Gradio's
        file input makes there on each call (and never uses)."""
        for entry in os.scandir(self.folder):
            if entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
        self._total -= self._leftovers
        self._leftovers = 0
