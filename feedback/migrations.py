"""The feedback database schema, as sqlite-utils migrations applied in order."""

from sqlite_utils import Migrations

migrations = Migrations("feedback")


@migrations()
def create_templates(db):
    db["templates"].create({"id": str, "text": str, "created": str}, pk="id")


@migrations()
def create_predictions(db):
    db["predictions"].create(
        {
            "id": int,
            "created": str,
            "text": str,
            "label": str,
            "scores": str,
            "prompt": str,
            "model": str,
            "template": str,
            "mode": str,
            "generated": str,
        },
        pk="id",
        not_null={"created", "text", "scores", "prompt", "model", "mode"},
        foreign_keys=[("template", "templates", "id")],
    )


@migrations()
def create_verdicts(db):
    db["verdicts"].create(
        {
            "id": int,
            "prediction_id": int,
            "verdict": str,
            "label": str,
            "note": str,
            "reviewer": str,
            "created": str,
            "status": str,
            "updated": str,
        },
        pk="id",
        not_null={"prediction_id", "verdict", "label", "reviewer", "created", "status", "updated"},
        defaults={"note": "", "status": "pending"},
        foreign_keys=[("prediction_id", "predictions", "id")],
    )


@migrations()
def search_prediction_text(db):
    db["predictions"].enable_fts(["text"], create_triggers=True)


@migrations()
def create_indexes(db):
    db["verdicts"].create_index(["status"])
    db["verdicts"].create_index(["prediction_id"])
    db["predictions"].create_index(["created"])


@migrations()
def add_prediction_role(db):
    db["predictions"].add_column("role", str)


@migrations()
def create_idempotency_keys(db):
    db["idempotency_keys"].create(
        {"key": str, "request": str, "response": str, "created": str},
        pk="key",
        not_null={"request", "response", "created"},
    )
