"""Shadow predictions: a candidate's label of a text that the serving model answered, kept beside the serving model's
label and the versions that made each, and how often the two agree."""

import json

from moderation.labels import SEVERITY

from .connection import Connection
from .rows import now

DISAGREE = "shadowed.label is not shadowed.serving_label"
"""Where a shadow row (``shadowed``) differs from the serving model."""


class Shadows:
    """The shadow predictions of a feedback database."""

    def __init__(self, connection: Connection):
        self.connection = connection
        self.db = connection.db

    def save(self, rows: list[dict]) -> None:
        """Record shadow predictions in one transaction, each ``{"text", "template", "serving_model",
        "serving_label", "model", "label", "scores"}``."""
        created = now()
        with self.connection.lock, self.connection.transaction():
            self.db["shadow_predictions"].insert_all(
                {**row, "created": created, "scores": json.dumps(row["scores"])} for row in rows)

    def figures(self, model: str | None = None) -> dict | None:
        """How the shadow ``model`` (by default the latest one) and the serving model compare on the texts it
        labelled: ``{"model", "texts", "agree"`` (the share with the same label), ``"confusion"`` (serving label ->
        shadow label -> count)``}``; None before any shadow labelled a text."""
        with self.connection.lock:
            model = model or next((row[0] for row in self.db.execute(
                "select model from shadow_predictions order by id desc limit 1")), None)
            if model is None:
                return None
            counts = self.db.execute("select serving_label, label, count(*) from shadow_predictions where model = ? "
                                     "group by 1, 2", [model]).fetchall()
        confusion = {serving: dict.fromkeys(SEVERITY, 0) for serving in SEVERITY}
        for serving, label, count in counts:
            confusion[serving][label] = count
        texts = sum(count for _, _, count in counts)
        return {"model": model, "texts": texts,
                "agree": sum(count for serving, label, count in counts if serving == label) / texts,
                "confusion": confusion}
