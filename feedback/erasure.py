"""Deleting what is not to be kept (texts are personal data): the daily sweep of expired idempotency keys and of
the predictions no reviewer judged once they are older than the retention period, and ``forget``, which erases a
text everywhere the database holds it.

The store's connection has ``secure_delete`` on, so deleted rows are overwritten with zeros in the file; ``forget``
also rewrites the full-text index (whose segments would keep a deleted text's words until merged) and empties the
write-ahead log into the file, so that no byte of the text stays in either.
"""

import datetime
import json
from collections.abc import Callable

from moderation.errors import InvalidInput
from moderation.prompt import is_blank, normalize_text

from .connection import Connection
from .idempotency import IdempotencyKeys

SWEEP_CHUNK = 1000
"""Predictions deleted per transaction by the sweep, so that other writes are not held up for long."""
ERASED = ("predictions", "verdicts", "final_labels", "splits", "shadow_predictions", "evaluation_items",
          "idempotency_keys")
"""What :meth:`Erasure.forget` deletes, in its report's order."""

_KEYS_NAMING = """delete from idempotency_keys where verdict_id in (select id from verdicts where prediction_id in
  (select value from json_each(:ids))) or exists (select 1 from json_each(idempotency_keys.predictions)
  where value in (select value from json_each(:ids)))"""
"""Deletes the idempotency keys whose answer names one of the predictions ``:ids`` (a JSON list) or a verdict on one."""


class Erasure:
    """Deletions in a feedback database (under its connection's lock, in its transactions)."""

    def __init__(self, connection: Connection, keys: IdempotencyKeys):
        self.db = connection.db
        self._lock = connection.lock
        self._transaction = connection.transaction
        self._keys_since = keys.since

    def sweep(self, keep_days: int | None = None) -> dict[str, int]:
        """Delete the expired idempotency keys and, with ``keep_days``, the predictions older than that many days
        that no reviewer judged (and the keys that name them), :data:`SWEEP_CHUNK` a transaction, and the shadow
        predictions as old whose text no prediction holds any more; how many of each."""
        with self._lock, self._transaction():
            keys = self.db.execute("delete from idempotency_keys where created < ?", [self._keys_since()]).rowcount
        removed = {"predictions": 0, "shadow_predictions": 0, "idempotency_keys": keys}
        if keep_days is None:
            return removed
        before = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=keep_days)).isoformat()
        while True:
            with self._lock, self._transaction():
                ids = json.dumps([row[0] for row in self.db.execute(
                    "select id from predictions where created < ? and not exists (select 1 from verdicts where "
                    "verdicts.prediction_id = predictions.id) order by id limit ?", [before, SWEEP_CHUNK])])
                removed["idempotency_keys"] += self.db.execute(_KEYS_NAMING, {"ids": ids}).rowcount
                deleted = self.db.execute("delete from predictions where id in (select value from json_each(?))",
                                          [ids]).rowcount
            removed["predictions"] += deleted
            if deleted < SWEEP_CHUNK:
                break
        with self._lock, self._transaction():
            removed["shadow_predictions"] = self.db.execute(
                "delete from shadow_predictions where created < ? and text not in (select text from predictions)",
                [before]).rowcount
        if removed["predictions"]:  # the index's segments keep a deleted text's words until they are merged
            with self._lock, self._transaction():
                self.db["predictions"].optimize()
        return removed

    def forget(self, *, text: str | None = None, match: str | None = None) -> dict[str, int]:
        """Erase ``text`` (as given or as the model saw it), or every text that contains ``match`` (case aside),
        from every table that holds texts, in one transaction: the predictions, the verdicts on them, final labels,
        splits, shadow predictions, evaluation items and the idempotency keys that name them; then the full-text
        index is rewritten and the write-ahead log emptied into the file. Returns how many rows of each it removed;
        ``templates``, how many prompt templates hold it among their few-shot examples (those are kept: predictions
        name them); and ``log_emptied``, False when another connection's reading kept the log from being emptied."""
        self.db.conn.create_function("holds", 1, _holding(text, match), deterministic=True)
        with self._lock:
            with self._transaction() as moved:
                ids = json.dumps([row[0] for row in self.db.execute("select id from predictions where holds(text)")])
                moved.subtract(dict(self.db.execute(
                    "select status, count(*) from verdicts where prediction_id in (select value from json_each(?)) "
                    "group by status", [ids]).fetchall()))
                removed = {"idempotency_keys": self.db.execute(_KEYS_NAMING, {"ids": ids}).rowcount}
                removed["verdicts"] = self.db.execute(
                    "delete from verdicts where prediction_id in (select value from json_each(?))", [ids]).rowcount
                removed["predictions"] = self.db.execute(
                    "delete from predictions where id in (select value from json_each(?))", [ids]).rowcount
                for table in ("final_labels", "splits", "shadow_predictions", "evaluation_items"):
                    removed[table] = self.db.execute(f"delete from {table} where holds(text)").rowcount
                self.db["predictions"].optimize()
            templates = self.db.execute(
                "select count(distinct templates.id) from templates, json_each(iif(json_valid(templates.text), "
                "templates.text, '[]')) where holds(json_extract(json_each.value, '$.text'))").fetchone()[0]
            busy, _, _ = self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return {**{table: removed[table] for table in ERASED}, "templates": templates, "log_emptied": not busy}


def _holding(text: str | None, match: str | None) -> Callable[[str | None], bool]:
    """Whether a stored text is ``text`` (as given, or as the model saw it) or contains ``match`` (case aside);
    InvalidInput unless exactly one of them is given, and shows something."""
    if (text is None) == (match is None):
        raise InvalidInput("Give the text to forget, or a pattern that the texts to forget contain.")
    given = text if match is None else match
    if not isinstance(given, str) or is_blank(given):
        raise InvalidInput(f"The {'text' if match is None else 'pattern'} to forget is empty: give what to erase.")
    if match is not None:
        folded = match.casefold()
        return lambda value: value is not None and folded in value.casefold()
    texts = {text, normalize_text(text)}
    return lambda value: value in texts
