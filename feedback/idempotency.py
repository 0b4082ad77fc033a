"""Idempotency keys: a request sent again with its key gets the first answer again. A key keeps a hash of its
request and the ids of its answer (the verdict, or the response's id, its predictions and the settings that
decided it), never a body, and is kept for ``key_hours``."""

import datetime
import hashlib
import json

from sqlite_utils.db import NotFoundError

from moderation.errors import Conflict, InvalidInput

from .connection import Connection
from .rows import iso, now

MAX_KEY = 200
"""Characters an idempotency key may have."""
KEY_HOURS = 24.0
"""How long an idempotency key is kept by default: a retry within that time gets the first answer again, a request
made with the key later is a new one."""


class IdempotencyKeys:
    """The keys of a feedback database; the caller holds the connection's lock and makes the transactions."""

    def __init__(self, connection: Connection, key_hours: float = KEY_HOURS):
        self.db = connection.db
        self.key_hours = key_hours

    def find(self, key: str | None, request: str) -> dict | None:
        """What the first request made with ``key`` was answered with: ``{"verdict_id", "response_id",
        "predictions", "settings"}``; None for no key, a new key, or one older than ``key_hours``; Conflict when the
        key was used for another request."""
        if key is None:
            return None
        check_key(key)
        found = self.db.execute("select request_hash, verdict_id, response_id, predictions, settings from "
                                "idempotency_keys where key = ? and created >= ?", [key, self.since()]).fetchone()
        if found is None:
            return None
        hashed, *answer = found
        row = dict(zip(("verdict_id", "response_id", "predictions", "settings"), answer))
        if hashed != request_hash(request):
            raise Conflict(f"The idempotency key {key!r} was used for another request: send a new key with a "
                           "new request.", "idempotency_key")
        return {**row, **{name: json.loads(row[name]) for name in ("predictions", "settings") if row[name]}}

    def remember(self, key: str | None, request: str, **answer) -> None:
        """Keep ``key`` with the hash of ``request`` and the answer's ids (replacing an expired row of the key)."""
        if key is not None:
            row = {"key": key, "request_hash": request_hash(request), "created": now(), **answer}
            self.db["idempotency_keys"].insert(row, replace=True)

    def since(self) -> str:
        """When the oldest key still kept was made."""
        return iso(datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=self.key_hours))

    def verdict(self, key: str, verdict_id: int) -> dict:
        """The verdict a key's first request stored; InvalidInput when it was taken back since."""
        try:
            return self.db["verdicts"].get(verdict_id)
        except NotFoundError:
            raise InvalidInput(f"The idempotency key {key!r} names verdict #{verdict_id}, which was taken back: "
                               "give the verdict again with a new key.", "idempotency_key") from None


def request_hash(request: str) -> str:
    """What an idempotency key keeps of its request: a SHA-256, so that a retry can be told from another request
    without the request (texts, notes, names) being stored."""
    return hashlib.sha256(request.encode("utf-8", "surrogatepass")).hexdigest()


def check_key(key) -> str:
    """``key`` if it can be an idempotency key; InvalidInput saying what one is otherwise."""
    if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY or not key.isprintable():
        raise InvalidInput(f"Bad idempotency key: use up to {MAX_KEY} printable characters, such as a UUID.",
                           "idempotency_key")
    return key
