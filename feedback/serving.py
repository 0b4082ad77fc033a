"""What the app serves, kept in the database: every serve (and every override of the gate), roll back and shadow, with
who did it, when, why and the gate's figures. The last promotion is what a restarted app serves again."""

import json

from moderation.errors import InvalidInput
from moderation.prompt import is_blank

from .connection import Connection
from .rows import choice, now

SERVE, OVERRIDE, ROLL_BACK, SHADOW, STOP_SHADOW = "serve", "override", "roll back", "shadow", "stop shadow"
ACTIONS = (SERVE, OVERRIDE, ROLL_BACK, SHADOW, STOP_SHADOW)
"""What can happen to what the app serves: a version served (the gate allowing it, or overridden with a reason),
rolled back to, shadowed, or its shadow stopped."""
PROMOTIONS = (SERVE, OVERRIDE, ROLL_BACK)
"""The actions that change what serves."""
MAX_REASON = 2_000


class ServingLog:
    """The serving events of a feedback database (its ``serving_events`` table)."""

    def __init__(self, connection: Connection):
        self.connection = connection
        self.db = connection.db

    def record(self, action: str, *, version: str, folder: str | None, reviewer: str, reason: str | None = None,
               gate: dict | None = None) -> dict:
        """Keep (on disk before it returns) that ``reviewer`` did ``action`` to ``version`` (in ``folder``; None for
        the model the app was started on), for ``reason``, on the gate's figures ``gate``; returns the event. An
        override needs a reason."""
        choice(action, ACTIONS, "action")
        reason = (reason or "").strip() or None
        if action == OVERRIDE and (reason is None or is_blank(reason)):
            raise InvalidInput("Type why you serve a version the gate refused: the reason is kept with your name.",
                               "reason")
        if reason is not None and len(reason) > MAX_REASON:
            raise InvalidInput(f"The reason has {len(reason)} characters; the limit is {MAX_REASON}.", "reason")
        row = {"created": now(), "action": action, "version": version, "folder": folder, "reviewer": reviewer,
               "reason": reason, "gate": None if gate is None else json.dumps(gate)}
        with self.connection.lock, self.connection.transaction():
            row["id"] = self.db["serving_events"].insert(row).last_pk
        return {**row, "gate": gate}

    def history(self, limit: int = 100) -> list[dict]:
        """The latest events, newest first, their gate figures decoded."""
        with self.connection.lock:
            rows = list(self.db.query("select * from serving_events order by id desc limit ?", [limit]))
        return [_decoded(row) for row in rows]

    def promoted(self) -> dict | None:
        """The last event that changed what serves (what a restart serves again); None when there is none."""
        return self._last(PROMOTIONS)

    def shadowing(self) -> dict | None:
        """The shadow started last, if it was not stopped since."""
        last = self._last((SHADOW, STOP_SHADOW))
        return last if last and last["action"] == SHADOW else None

    def _last(self, actions: tuple[str, ...]) -> dict | None:
        with self.connection.lock:
            row = next(self.db.query(f"select * from serving_events where action in ({', '.join('?' * len(actions))})"
                                     " order by id desc limit 1", actions), None)
        return row and _decoded(row)


def _decoded(row: dict) -> dict:
    return {**row, "gate": row["gate"] and json.loads(row["gate"])}
