"""The feedback database's one connection: the file created readable by its owner alone, in WAL mode with secure
deletes, its schema migrated; shared between threads under one lock; written in transactions that turn SQLite's
write failures into :class:`~moderation.errors.Unavailable`, and that keep count of the verdicts in each status."""

import contextlib
import os
import pathlib
import sqlite3
import threading
from collections import Counter

import sqlite_utils

from moderation.errors import InvalidInput, Unavailable

from .migrations import migrations
from .rows import STATUSES, decode

WRITE_CHECK_BYTES = 64 * 1024
"""What :meth:`Connection.check_writable` writes (and removes): room for a batch of predictions."""


class Connection:
    """The database file ``path``: ``db`` (sqlite-utils) to be used under ``lock``, and ``failure``, why the last
    write failed (SQLite's words, such as "database or disk is full"), None once one commits."""

    def __init__(self, path):
        self.path = pathlib.Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # a new file is made readable by its owner alone before SQLite opens it: SQLite gives its WAL the same mode
        os.close(os.open(self.path, os.O_RDONLY | os.O_CREAT, 0o600))
        self.db = sqlite_utils.Database(sqlite3.connect(self.path, check_same_thread=False))
        try:
            # secure_delete: a deleted row (a text erased or swept) is overwritten with zeros in the file
            for pragma in ("busy_timeout=5000", "journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON",
                           "secure_delete=ON"):
                self.db.execute(f"PRAGMA {pragma}")
            migrations.apply(self.db)
        except sqlite3.DatabaseError as error:
            self.db.close()
            raise InvalidInput(f"Cannot open the feedback database {self.path} ({error}): give the app's database "
                               "file, or the name of a new one.") from None
        self.lock = threading.Lock()
        self.failure: str | None = None
        self._by_status = Counter(self.counts("select status, count(*) from verdicts group by status"))

    def close(self) -> None:
        """Close the connection."""
        with self.lock:
            self.db.close()

    @contextlib.contextmanager
    def transaction(self):
        """A write transaction (under the lock, which the caller holds): :class:`Unavailable` when SQLite cannot
        write, and ``failure`` set until a later one commits. It yields a Counter in which the caller moves
        verdicts between statuses (+1 for each verdict that gets one, -1 for each that leaves it): they count once
        the transaction commits."""
        moved = Counter()
        try:
            with self.db.atomic():
                yield moved
        except sqlite3.OperationalError as error:
            self.failure = str(error)
            raise Unavailable(cannot_write(self.failure)) from error
        self.failure = None
        self._by_status.update(moved)

    def check_writable(self) -> bool:
        """Write (and remove) :data:`WRITE_CHECK_BYTES` in one transaction, to learn whether writes succeed again;
        clears or sets ``failure`` as any write does."""
        with self.lock:
            try:
                with self.transaction():
                    self.db.execute("insert into write_checks (filler) values (zeroblob(?))", [WRITE_CHECK_BYTES])
                    self.db.execute("delete from write_checks")
            except Unavailable:
                return False
        return True

    def verdicts_by_status(self) -> dict[str, int]:
        """How many verdicts have each status: counted once at start, then kept as each write commits (read without
        the lock, and without a query). Another program's writes to the file are not seen."""
        return {status: self._by_status[status] for status in STATUSES}

    def counts(self, sql: str, params=()) -> dict:
        """``{key: count}`` from a query of two columns."""
        return dict(self.db.execute(sql, params).fetchall())

    def batches(self, sql: str, params: list, batch_size: int, *, key: str = "id", decode=decode):
        """The rows of ``sql`` (which ends ``... > ? order by <key> limit ?``), fetched ``batch_size`` at a time under
        the lock and released between batches, each through ``decode``."""
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"Bad batch_size {batch_size!r}: pass a positive number of rows.")
        return self._batches(sql, params, batch_size, key, decode)

    def _batches(self, sql, params, batch_size, key, decode):
        last = 0
        while True:
            with self.lock:
                batch = list(self.db.query(sql, params + [last, batch_size]))
            yield from map(decode, batch)
            if len(batch) < batch_size:
                return
            last = batch[-1][key]
            del batch  # free this batch before fetching the next one


def cannot_write(reason: str) -> str:
    """What a user is told when the database cannot be written for ``reason``: what is wrong and what to do."""
    if "full" in reason:
        remedy = "free disk space where it is kept, then retry"
    elif "locked" in reason:
        remedy = "another program holds it, retry in a moment"
    else:
        remedy = "check the database file and its disk, then retry"
    return f"The feedback database cannot be written ({reason}): {remedy}."
