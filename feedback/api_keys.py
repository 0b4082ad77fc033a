"""API keys for the REST moderation routes: a file of names with SHA-256 hashes of their keys, never the keys.

Each line is ``name:sha256$<hex digest>``. A key is 32 random bytes (``mp-`` and 43 URL-safe characters), so
a plain hash is enough: nobody can guess one to match it, and checking it costs microseconds.
"""

import hashlib
import os
import secrets
from pathlib import Path

from moderation.errors import InvalidInput

PREFIX = "mp-"
SCHEME = "sha256$"


def new_key() -> str:
    """A fresh random API key."""
    return PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    """How the file stores ``key``."""
    return SCHEME + hashlib.sha256(key.encode()).hexdigest()


def load_api_keys(path: str | Path) -> dict[str, str]:
    """Name -> stored hash; InvalidInput naming the line when the file is malformed or empty."""
    keys = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        name, separator, stored = line.partition(":")
        if not separator or not name or not stored.startswith(SCHEME):
            raise InvalidInput(f"{path}:{number}: not 'name:sha256$...'; add keys with "
                               "'python -m feedback api-keys add NAME --file FILE'.")
        keys[name] = stored
    if not keys:
        raise InvalidInput(f"{path} lists no API keys: add one with "
                           f"'python -m feedback api-keys add NAME --file {path}'.")
    return keys


def add_api_key(path: str | Path, name: str) -> str:
    """A new key for ``name`` (replacing its old one) stored in the file, written whole or not at all; the key."""
    name = name.strip()
    if not name or ":" in name or any(ch.isspace() or not ch.isprintable() for ch in name):
        raise InvalidInput(f"Bad key name {name!r}: use letters, digits and punctuation other than ':'.")
    path = Path(path)
    keys = load_api_keys(path) if path.exists() and path.read_text(encoding="utf-8").strip() else {}
    key = new_key()
    keys[name] = key_hash(key)
    partial = path.with_name(path.name + ".tmp")
    with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as out:
        out.write("".join(f"{who}:{stored}\n" for who, stored in keys.items()))
    os.replace(partial, path)
    return key


class ApiKeys:
    """The keys allowed to call the moderation routes, loaded once from their file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._names = {stored: name for name, stored in load_api_keys(path).items()}

    def owner(self, key: str) -> str | None:
        """The name ``key`` was made for, or None when it is no key of this file."""
        return self._names.get(key_hash(key))  # a lookup by a hash of 256 random bits leaks nothing to time
