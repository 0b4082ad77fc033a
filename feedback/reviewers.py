"""Reviewers who log in: a file of names with scrypt password hashes, never plain passwords.

Each line is ``name:scrypt$n$r$p$salt$hash`` (salt and hash in base64).
"""

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from moderation.errors import InvalidInput

SCRYPT = {"n": 2**14, "r": 8, "p": 1}
MIN_PASSWORD = 8


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
    """Reviewer name -> password hash; ValueError naming the line when the file is malformed."""
    reviewers = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        name, separator, stored = line.partition(":")
        if not separator or not name or not stored.startswith("scrypt$"):
            raise InvalidInput(f"{path}:{number}: not 'name:scrypt$...'; add reviewers with "
                             "'python -m feedback reviewers add NAME --file FILE'.")
        reviewers[name] = stored
    if not reviewers:
        raise InvalidInput(
            f"{path} lists no reviewers: add one with 'python -m feedback reviewers add NAME --file {path}'.")
    return reviewers


def add_reviewer(path: str | Path, name: str, password: str) -> None:
    """Add ``name`` (or give it a new password) in the reviewers file, written whole or not at all."""
    name = name.strip()
    if not name or ":" in name or any(ch.isspace() or not ch.isprintable() for ch in name):
        raise InvalidInput(f"Bad reviewer name {name!r}: use letters, digits and punctuation other than ':'.")
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"The password is too short: use at least {MIN_PASSWORD} characters.")
    path = Path(path)
    reviewers = load_reviewers(path) if path.exists() and path.read_text(encoding="utf-8").strip() else {}
    reviewers[name] = hash_password(password)
    partial = path.with_name(path.name + ".tmp")
    partial.write_text("".join(f"{who}:{stored}\n" for who, stored in reviewers.items()), encoding="utf-8")
    os.chmod(partial, 0o600)
    os.replace(partial, path)


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
