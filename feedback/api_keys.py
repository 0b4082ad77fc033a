"""API keys for the REST moderation routes: a file of names with SHA-256 hashes of their keys, never the keys.

Each line is ``name:sha256$<hex digest>``. A key is 32 random bytes (``mp-`` and 43 URL-safe characters), so
a plain hash is enough: nobody can guess one to match it, and checking it costs microseconds.
"""

import hashlib
import secrets
from pathlib import Path

from .secrets_file import SecretsFile

PREFIX = "mp-"
KEYS_FILE = SecretsFile(scheme="sha256$", noun="API key", command="api-keys")


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


class ApiKeys:
    """The keys allowed to call the moderation routes, loaded once from their file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._names = {stored: name for name, stored in load_api_keys(path).items()}

    def owner(self, key: str) -> str | None:
        """The name ``key`` was made for, or None when it is no key of this file."""
        return self._names.get(key_hash(key))  # a lookup by a hash of 256 random bits leaks nothing to time
