"""Files of secrets' hashes, the reviewers' passwords and the API keys: one ``name:SCHEME...`` line for each name,
written whole and readable by their owner alone."""

from dataclasses import dataclass
from pathlib import Path

from moderation.atomic_writes import written_atomically
from moderation.errors import InvalidInput


@dataclass(frozen=True)
class SecretsFile:
    """A kind of secrets file: the scheme its hashes start with, what it lists, and the command that manages it."""

    scheme: str
    """How every hash starts, like ``scrypt$``."""
    noun: str
    """What one line is for, like ``reviewer``."""
    command: str
    """The ``python -m feedback`` command that manages the file, like ``reviewers``."""

    def name(self, name: str) -> str:
        """``name`` without surrounding spaces; InvalidInput when it is empty or holds ':', a space or a control
        character (it could not be read back, or logged in with)."""
        name = name.strip()
        if not _valid(name):
            raise InvalidInput(f"Bad {self.noun} name {name!r}: use letters, digits and punctuation other than ':'.")
        return name

    def read(self, path: str | Path) -> dict[str, str]:
        """Name -> hash of each line of ``path`` (blank lines skipped; a file of none gives none); InvalidInput
        naming the line that is not ``name:SCHEME...``."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InvalidInput(f"No {self.noun}s file at {path}: {self._how(path)}") from None
        except UnicodeDecodeError:
            raise InvalidInput(f"{path} is no {self.noun}s file (it is not UTF-8 text): {self._how('FILE')}") from None
        hashes = {}
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            name, _, stored = line.partition(":")
            if not _valid(name) or not stored.startswith(self.scheme):
                raise InvalidInput(f"{path}:{number}: not 'name:{self.scheme}...'; {self._how('FILE')}")
            hashes[name] = stored
        return hashes

    def load(self, path: str | Path) -> dict[str, str]:
        """:meth:`read`, and InvalidInput when the file lists nobody (a server on it would let nobody in)."""
        hashes = self.read(path)
        if not hashes:
            raise InvalidInput(f"{path} lists no {self.noun}s: {self._how(path)}")
        return hashes

    def read_if_any(self, path: str | Path) -> dict[str, str]:
        """:meth:`read`, or none when there is no file yet (the first one added makes it)."""
        return self.read(path) if Path(path).exists() else {}

    def write(self, path: str | Path, hashes: dict[str, str]) -> None:
        """``path`` holding ``hashes``, one ``name:hash`` line each, replaced whole: the new content goes to a file
        created 0600 beside it, is synced, then renamed over ``path``; a reader sees the old file or the new."""
        with written_atomically(path) as out:
            out.write("".join(f"{name}:{stored}\n" for name, stored in hashes.items()))

    def _how(self, path) -> str:
        return f"add {self.noun}s with 'python -m feedback {self.command} add NAME --file {path}'."


def _valid(name: str) -> bool:
    """Whether ``name`` can be a line's name: not empty, no ':', no space, no control character."""
    return bool(name) and ":" not in name and not any(ch.isspace() or not ch.isprintable() for ch in name)
