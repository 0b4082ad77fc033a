"""Reviewers who log in: a file of names with scrypt password hashes, never plain passwords.

Each line is ``name:scrypt$n$r$p$salt$hash`` (salt and hash in base64).
"""

import base64
import hashlib
import hmac
import secrets
from pathlib import Path

from moderation.errors import InvalidInput

from .secrets_file import SecretsFile

SCRYPT = {"n": 2**14, "r": 8, "p": 1}
MIN_PASSWORD = 8
REVIEWERS_FILE = SecretsFile(scheme="scrypt$", noun="reviewer", command="reviewers")


def hash_password(password: str) -> str:
    """A salted scrypt hash of ``password`` in the file's format."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **SCRYPT)
    encoded = [base64.b64encode(part).decode() for part in (salt, digest)]
    return "$".join(["scrypt", str(SCRYPT["n"]), str(SCRYPT["r"]), str(SCRYPT["p"]), *encoded])


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a hash made by :func:`hash_password` (in constant time)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p))
    except ValueError:
        return False
    return scheme == "scrypt" and hmac.compare_digest(actual, expected)


def load_reviewers(path: str | Path) -> dict[str, str]:
    """Reviewer name -> password hash; InvalidInput naming the line when the file is malformed, or when it lists
    nobody."""
    return REVIEWERS_FILE.load(path)


def add_reviewer(path: str | Path, name: str, password: str) -> None:
    """Add ``name`` (or give it a new password) in the reviewers file, written whole or not at all."""
    name = REVIEWERS_FILE.name(name)
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"The password is too short: use at least {MIN_PASSWORD} characters.")
    reviewers = REVIEWERS_FILE.read_if_any(path)
    reviewers[name] = hash_password(password)
    REVIEWERS_FILE.write(path, reviewers)


class Reviewers:
    """The reviewers allowed in, loaded once from their file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._hashes = load_reviewers(path)
        self._unknown = hash_password(secrets.token_hex(16))

    def check(self, name: str, password: str) -> bool:
        """Whether ``name`` is a reviewer whose password is ``password`` (as slow for unknown names)."""
        stored = self._hashes.get(name)
        matches = verify_password(password, stored or self._unknown)
        return stored is not None and matches
