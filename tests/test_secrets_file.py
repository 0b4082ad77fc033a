"""Secrets files, the reviewers' and the API keys': one parser of their ``name:hash`` lines, and one writer that
replaces them whole at 0600, so that no reader ever sees one partial or open to others."""

import os
import stat
import sys
import threading

import pytest

from feedback.api_keys import KEYS_FILE, add_api_key, load_api_keys, revoke_api_key
from feedback.reviewers import REVIEWERS_FILE, add_reviewer, load_reviewers

WATCHES = []
"""The :class:`FolderWatch` objects that the audit hook calls (a hook cannot be removed, so it stays installed)."""


class FolderWatch:
    """What another reader of ``folder`` could see at each step of this thread's file operations (every audit event:
    open, chmod, rename, ...): files that others could read, and each content of ``target``."""

    def __init__(self, folder, target):
        self.folder, self.target = folder, target
        self.thread = threading.get_ident()
        self.readable, self.contents, self.events = [], [], 0
        self._looking = False

    def __call__(self, event, args):
        if self._looking or threading.get_ident() != self.thread:
            return
        self._looking = True  # what the watch itself opens is no step of the write
        try:
            self.events += 1
            for entry in os.scandir(self.folder):
                if entry.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                    self.readable.append((event, entry.name, oct(entry.stat().st_mode & 0o777)))
            if self.target.exists():
                self.contents.append(self.target.read_text(encoding="utf-8"))
        finally:
            self._looking = False


def audit(event, args):
    for watch in WATCHES:
        watch(event, args)


sys.addaudithook(audit)


@pytest.fixture
def open_umask():
    """A umask that lets files be created readable by all, as a careless shell's might."""
    before = os.umask(0)
    yield
    os.umask(before)


def add_reviewers(path, *names):
    for name in names:
        add_reviewer(path, name, "a long enough secret")


def add_keys(path, *names):
    for name in names:
        add_api_key(path, name)


@pytest.mark.parametrize("add, load, revoke", [
    (add_reviewers, load_reviewers, None),
    (add_keys, load_api_keys, revoke_api_key),
])
def test_a_reader_never_sees_a_secrets_file_partial_or_open_to_others(tmp_path, open_umask, add, load, revoke):
    path = tmp_path / "secrets.txt"
    add(path, "ana", "bo")
    before = path.read_text()
    watch = FolderWatch(tmp_path, path)
    WATCHES.append(watch)
    try:
        add(path, "cy")
        added = path.read_text()
        if revoke:
            revoke(path, "bo")
    finally:
        WATCHES.remove(watch)
    assert watch.events > 5, "the watch saw the steps of the writes"
    assert watch.readable == [], "a file in the folder could be read by others"
    assert set(watch.contents) <= {before, added, path.read_text()}, "a reader saw the file partial"
    assert list(load(path)) == (["ana", "cy"] if revoke else ["ana", "bo", "cy"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["secrets.txt"], "a partial file was left behind"


@pytest.mark.parametrize("kind, content, error", [
    (REVIEWERS_FILE, "ana:scrypt$1$2\nbo:plaintext\n", "secrets.txt:2: not 'name:scrypt$...'"),
    (REVIEWERS_FILE, "\n\nana bo:scrypt$1\n", "secrets.txt:3: not 'name:scrypt$...'"),
    (REVIEWERS_FILE, ":scrypt$1\n", "secrets.txt:1: not 'name:scrypt$...'"),
    (KEYS_FILE, "bot\x1b[31m:sha256$00\n", "secrets.txt:1: not 'name:sha256$...'"),
    (KEYS_FILE, "bot:scrypt$1\n", "secrets.txt:1: not 'name:sha256$...'"),
    (KEYS_FILE, b"bot:sha256$\xff\xfe\n", "secrets.txt is no API keys file (it is not UTF-8 text)"),
    (KEYS_FILE, " \n\n", "secrets.txt lists no API keys: add API keys with 'python -m feedback api-keys add"),
])
def test_one_parser_names_the_line_of_either_file_that_is_wrong(tmp_path, kind, content, error):
    path = tmp_path / "secrets.txt"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ValueError) as refused:
        kind.load(path)
    assert error in str(refused.value)
    assert f"python -m feedback {kind.command} add NAME --file" in str(refused.value)


def test_a_missing_file_says_how_to_make_one(tmp_path):
    with pytest.raises(ValueError, match="No reviewers file at .*missing.txt: add reviewers with 'python -m feedback "
                                         "reviewers add NAME --file"):
        load_reviewers(tmp_path / "missing.txt")
