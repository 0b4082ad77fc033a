"""Merge the feedback databases of several app replicas into one: templates once, every prediction and verdict
with new ids (each verdict still pointing at its prediction), and the idempotency keys.

The sources are only read. The target is written in one transaction: after a failure it is as it was.
"""

import json
import sqlite3
from pathlib import Path

from moderation.errors import InvalidInput

from .store import FeedbackStore

PREDICTION_COLUMNS = ("created", "text", "label", "scores", "prompt", "model", "template", "mode", "generated", "role")
VERDICT_COLUMNS = ("verdict", "label", "note", "reviewer", "created", "status", "updated")
VERDICT_REQUEST = '["verdict"'
"""How the request of an idempotency key that guards a verdict starts (it names the prediction, and its response
is the verdict's id: both get their new ids)."""


def merge(sources: list[str | Path], into: str | Path) -> dict[str, int]:
    """Copy every source database into ``into`` (created if needed); returns how many rows of each kind it added."""
    into = Path(into)
    paths = [Path(source) for source in sources]
    for path in paths:
        if not path.is_file():
            raise InvalidInput(f"No feedback database at {path}: give the replicas' database files.")
        if into.exists() and path.resolve() == into.resolve():
            raise InvalidInput(f"{path} is both a source and the target: merge into a new file.")
    added = {"templates": 0, "predictions": 0, "verdicts": 0, "idempotency_keys": 0}
    with FeedbackStore(into) as target, target.db.atomic():
        for path in paths:
            source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            source.row_factory = sqlite3.Row
            try:
                for kind, count in _copy(source, target.db).items():
                    added[kind] += count
            finally:
                source.close()
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
    added.update(predictions=len(predictions), verdicts=len(verdicts), idempotency_keys=0)
    if "idempotency_keys" in tables:
        for key, request, response, created in source.execute("select key, request, response, created from "
                                                              "idempotency_keys"):
            if request.startswith(VERDICT_REQUEST):  # ["verdict", prediction id, ...] -> the verdict's id
                fields = json.loads(request)
                fields[1] = predictions[fields[1]]
                request, response = json.dumps(fields), str(verdicts[int(response)])
            added["idempotency_keys"] += target.execute(
                "insert or ignore into idempotency_keys (key, request, response, created) values (?, ?, ?, ?)",
                [key, request, response, created]).rowcount
    return added
