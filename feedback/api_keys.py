"""API keys for the REST moderation routes: a file of names with SHA-256 hashes of their keys, never the keys.

Each line is ``name:sha256$<hex digest>``. A key is 32 random bytes (``mp-`` and 43 URL-safe characters), so
a plain hash is enough: nobody can guess one to match it, and checking it costs microseconds.
"""

import hashlib
import logging
import os
import secrets
import threading
import time
from pathlib import Path

from moderation.errors import InvalidInput

from .secrets_file import SecretsFile

PREFIX = "mp-"
KEYS_FILE = SecretsFile(scheme="sha256$", noun="API key", command="api-keys")
CHECK_EVERY_S = 1.0
"""How often, at most, a server looks whether its keys file changed."""

log = logging.getLogger("feedback.api_keys")


def new_key() -> str:
    """A fresh random API key."""
    return PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    """How the file stores ``key``."""
    return KEYS_FILE.scheme + hashlib.sha256(key.encode()).hexdigest()


def load_api_keys(path: str | Path) -> dict[str, str]:
    """Name -> stored hash; InvalidInput naming the line when the file is malformed, or when it lists no key."""
    return KEYS_FILE.load(path)


def add_api_key(path: str | Path, name: str) -> str:
    """A new key for ``name`` (replacing its old one) stored in the file, written whole or not at all; the key."""
    name = KEYS_FILE.name(name)
    keys = KEYS_FILE.read_if_any(path)
    key = new_key()
    keys[name] = key_hash(key)
    KEYS_FILE.write(path, keys)
    return key


def revoke_api_key(path: str | Path, name: str) -> int:
    """Remove ``name``'s key from the file, written whole or not at all; how many keys are left."""
    keys = KEYS_FILE.read_if_any(path)
    if keys.pop(name, None) is None:
        raise InvalidInput(f"{path} holds no API key named {name!r}: "
                           f"'python -m feedback api-keys list --file {path}' lists the names.")
    KEYS_FILE.write(path, keys)
    return len(keys)


def api_key_names(path: str | Path) -> list[str]:
    """The names that have a key in the file, in its order."""
    return list(KEYS_FILE.read(path))


class ApiKeys:
    """The keys allowed to call the moderation routes: read from their file at start, and again whenever the file
    changes (another inode, size or modification time, looked at once a second at most).

    A file that turns malformed keeps the keys read before, and says why in the log; a file that lists no key
    lets no key in.
    """

    def __init__(self, path: str | Path, *, check_every: float = CHECK_EVERY_S, clock=time.monotonic):
        self.path = Path(path)
        self.check_every = check_every
        self.clock = clock
        self._stamp = _stamp(self.path)
        self._names = _by_hash(load_api_keys(self.path))
        self._due = clock() + check_every
        self._reading = threading.Lock()

    def owner(self, key: str) -> str | None:
        """The name ``key`` was made for, or None when it is no key of the file (as it is now, give or take a
        second). Reading a changed file happens in the calling thread: call it off the event loop."""
        self._refresh()
        return self._names.get(key_hash(key))  # a lookup by a hash of 256 random bits leaks nothing to time

    def _refresh(self) -> None:
        """Read the file again when it is due and changed; a caller that finds it being read keeps the keys it has."""
        if self.clock() < self._due or not self._reading.acquire(blocking=False):
            return
        try:
            self._due = self.clock() + self.check_every
            stamp = _stamp(self.path)
            if stamp == self._stamp:
                return
            self._stamp = stamp
            try:
                names = _by_hash(KEYS_FILE.read(self.path))
            except (InvalidInput, OSError) as error:
                log.warning("The API keys file changed but cannot be used; the %d keys read before still work: %s",
                            len(self._names), error)
                return
            if not names:
                log.warning("%s lists no API key now: every request to /v1/moderations gets 401.", self.path)
            self._names = names
        finally:
            self._reading.release()


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What changes when the file does: its inode (a file renamed over it), size and modification time; None when
    it cannot be found."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_ino, status.st_size, status.st_mtime_ns


def _by_hash(keys: dict[str, str]) -> dict[str, str]:
    return {stored: name for name, stored in keys.items()}
