"""Merge the feedback databases of several app replicas into one: templates once, every prediction and verdict
with new ids (each verdict still pointing at its prediction), the splits of accepted texts (a text keeps the split it
was given first: the target's, else the first source's; an accepted text that no source gave one gets its own), and
the idempotency keys (naming the new ids; a retry
sends its request as it was, so a key's request hash stays). A source written before keys held hashes keeps its
keys out: they would name no answer that can be rebuilt.

The sources are only read. The target is written in one transaction: after a failure it is as it was.
"""

import json
import sqlite3
from pathlib import Path

from moderation.errors import InvalidInput

from .splits import assign_accepted
from .store import FeedbackStore

PREDICTION_COLUMNS = ("created", "text", "label", "scores", "prompt", "model", "template", "mode", "generated", "role")
VERDICT_COLUMNS = ("verdict", "label", "note", "reviewer", "created", "status", "updated")
KEY_COLUMNS = ("key", "request_hash", "verdict_id", "response_id", "predictions", "settings", "created")


def merge(sources: list[str | Path], into: str | Path) -> dict[str, int]:
    """Copy every source database into ``into`` (created if needed); returns how many rows of each kind it added."""
    into = Path(into)
    paths = [Path(source) for source in sources]
    for path in paths:
        if not path.is_file():
            raise InvalidInput(f"No feedback database at {path}: give the replicas' database files.")
        if into.exists() and path.resolve() == into.resolve():
            raise InvalidInput(f"{path} is both a source and the target: merge into a new file.")
    added = {"templates": 0, "predictions": 0, "verdicts": 0, "idempotency_keys": 0, "splits": 0}
    with FeedbackStore(into) as target, target.db.atomic():
        for path in paths:
            source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            source.row_factory = sqlite3.Row
            try:
                for kind, count in _copy(source, target.db).items():
                    added[kind] += count
            finally:
                source.close()
        added["splits"] += assign_accepted(target.db, target.curation.test_share)
    return added


def _copy(source: sqlite3.Connection, target) -> dict[str, int]:
    tables = {row[0] for row in source.execute("select name from sqlite_master where type = 'table'")}
    added = {"templates": 0}
    for row in source.execute("select id, text, created from templates"):
        added["templates"] += target.execute("insert or ignore into templates (id, text, created) values (?, ?, ?)",
                                             tuple(row)).rowcount
    predictions = {}
    for row in source.execute("select * from predictions order by id"):
        values = [row[column] if column in row.keys() else None for column in PREDICTION_COLUMNS]
        predictions[row["id"]] = target.execute(
            f"insert into predictions ({', '.join(PREDICTION_COLUMNS)}) values ({', '.join('?' * len(values))})",
            values).lastrowid
    verdicts = {}
    for row in source.execute("select * from verdicts order by id"):
        values = [predictions[row["prediction_id"]], *(row[column] for column in VERDICT_COLUMNS)]
        columns = ", ".join(("prediction_id", *VERDICT_COLUMNS))
        verdicts[row["id"]] = target.execute(
            f"insert into verdicts ({columns}) values ({', '.join('?' * len(values))})", values).lastrowid
    added.update(predictions=len(predictions), verdicts=len(verdicts), splits=0, idempotency_keys=0)
    for row in source.execute("select text, split, created from splits") if "splits" in tables else ():
        added["splits"] += target.execute("insert or ignore into splits (text, split, created) values (?, ?, ?)",
                                          tuple(row)).rowcount
    hashed = "idempotency_keys" in tables and any(
        row["name"] == "request_hash" for row in source.execute("pragma table_info(idempotency_keys)"))
    for row in source.execute(f"select {', '.join(KEY_COLUMNS)} from idempotency_keys") if hashed else ():
        key = dict(row)
        if key["verdict_id"] is not None:
            key["verdict_id"] = verdicts[key["verdict_id"]]
        if key["predictions"] is not None:
            key["predictions"] = json.dumps([predictions[old] for old in json.loads(key["predictions"])])
        added["idempotency_keys"] += target.execute(
            f"insert or ignore into idempotency_keys ({', '.join(KEY_COLUMNS)}) values "
            f"({', '.join('?' * len(KEY_COLUMNS))})", [key[column] for column in KEY_COLUMNS]).rowcount
    return added
