"""Shadow predictions: a candidate's label of a text that the serving model answered, kept beside the serving model's
label and the versions that made each, and how often the two agree."""

import json

from .connection import Connection
from .rows import now
from .templates import Templates

DISAGREE = "shadowed.label is not shadowed.serving_label"
"""Where a shadow row (``shadowed``) differs from the serving model."""


class Shadows:
    """The shadow predictions of a feedback database, each made in the policy of its template (read through
    ``templates``)."""

    def __init__(self, connection: Connection, templates: Templates):
        self.connection = connection
        self.db = connection.db
        self.templates = templates

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
        shadow label -> count, over the labels of the policy of its latest prediction, least severe first, and any
        other it gave)``}``; None before any shadow labelled a text."""
        with self.connection.lock:
            model, template = next(self.db.execute(
                "select model, template from shadow_predictions where ?1 is null or model = ?1 order by id desc "
                "limit 1", [model]), (model, None))
            if model is None:
                return None
            counts = self.db.execute("select serving_label, label, count(*) from shadow_predictions where model = ? "
                                     "group by 1, 2", [model]).fetchall()
            policy = self.templates.policy_held(template)
        given = {label for serving, shadow, _ in counts for label in (serving, shadow)} - set(policy.labels)
        labels = policy.labels + tuple(sorted(given))
        confusion = {serving: dict.fromkeys(labels, 0) for serving in labels}
        for serving, label, count in counts:
            confusion[serving][label] = count
        texts = sum(count for _, _, count in counts)
        return {"model": model, "texts": texts,
                "agree": sum(count for serving, label, count in counts if serving == label) / texts,
                "confusion": confusion}
