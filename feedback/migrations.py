"""The feedback database schema, as sqlite-utils migrations applied in order."""

import datetime
import hashlib
import json

from sqlite_utils import Migrations

migrations = Migrations("feedback")


FIVE_LABELS = ("casual", "possibly needs caution", "probably needs caution", "needs caution", "needs intervention")
"""The labels older predictions were made with, least severe first (a migration keeps its own words: the live
code's may change)."""
REACHING_DEFAULT_THRESHOLD = FIVE_LABELS[3:]
"""The labels that intervened at the default threshold when margins were added."""


def _old_margins(scores: dict[str, float]) -> dict:
    """The queue's columns of a scored prediction as they were first computed: the gap between the two most probable
    labels, and between the most probable that intervened at the default threshold and the most probable that did
    not."""
    first, second = sorted(scores.values(), reverse=True)[:2]
    reaching = max(scores[label] for label in REACHING_DEFAULT_THRESHOLD)
    below = max(scores[label] for label in FIVE_LABELS if label not in REACHING_DEFAULT_THRESHOLD)
    return {"margin": first - second, "intervene_margin": abs(reaching - below)}


def _hash(request: str) -> str:
    """What an idempotency key keeps of its request since keys hold hashes (as the live code computes it)."""
    return hashlib.sha256(request.encode("utf-8", "surrogatepass")).hexdigest()


def _split(text: str) -> str:
    """The split a text accepted before splits were kept gets: test for the lowest 20% of its SHA-256's range."""
    return "test" if int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:16], 16) < 0.2 * 16**16 else "train"


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
def one_verdict_per_reviewer(db):
    """Each reviewer keeps one verdict per prediction: where a reviewer gave several, the latest stays."""
    db.execute("delete from verdicts where id not in (select max(id) from verdicts group by prediction_id, reviewer)")
    db["verdicts"].create_index(["prediction_id", "reviewer"], unique=True)
    db["verdicts"].create_index(["reviewer"])


@migrations()
def add_prediction_margins(db):
    """What the review queue orders by, kept with each scored prediction; older rows get theirs from their scores
    (their intervention threshold was not kept: the default one stands in)."""
    db["predictions"].add_column("margin", float)
    db["predictions"].add_column("intervene_margin", float)
    last = 0
    while rows := db.execute("select id, scores from predictions where mode = 'score' and id > ? order by id "
                             "limit 1000", [last]).fetchall():
        scored = [(row_id, json.loads(scores)) for row_id, scores in rows]
        db.conn.executemany("update predictions set margin = :margin, intervene_margin = :intervene_margin "
                            "where id = :id", [{"id": row_id, **_old_margins(scores)}
                                               for row_id, scores in scored if set(scores) == set(FIVE_LABELS)])
        last = rows[-1][0]
    for column in ("margin", "intervene_margin", "text"):
        db["predictions"].create_index([column])


@migrations()
def create_final_labels(db):
    """The label a curator settles on for a text that reviewers disagree on."""
    db["final_labels"].create({"text": str, "label": str, "curator": str, "created": str}, pk="text",
                              not_null={"label", "curator", "created"})


@migrations()
def create_evaluation_runs(db):
    db["evaluation_runs"].create(
        {
            "id": int,
            "created": str,
            "model": str,
            "version": str,
            "template": str,
            "threshold": str,
            "mode": str,
            "gold_name": str,
            "gold_hash": str,
            "gold_size": int,
            "metrics": str,
        },
        pk="id",
        not_null={"created", "model", "template", "threshold", "mode", "gold_name", "gold_hash", "gold_size",
                  "metrics"},
        foreign_keys=[("template", "templates", "id")],
    )
    db["evaluation_items"].create(
        {"id": int, "run_id": int, "position": int, "text": str, "gold": str, "label": str, "scores": str,
         "generated": str},
        pk="id",
        not_null={"run_id", "position", "text", "gold", "scores"},
        foreign_keys=[("run_id", "evaluation_runs", "id")],
    )
    db["evaluation_items"].create_index(["run_id", "position"], unique=True)


@migrations()
def create_idempotency_keys(db):
    db["idempotency_keys"].create(
        {"key": str, "request": str, "response": str, "created": str},
        pk="key",
        not_null={"request", "response", "created"},
    )


@migrations()
def create_write_checks(db):
    """Where the store writes (and removes) a few pages to learn whether writes succeed again after a failure."""
    db["write_checks"].create({"id": int, "filler": bytes}, pk="id")


@migrations()
def idempotency_keys_hold_hashes_and_ids(db):
    """An idempotency key keeps a hash of its request and the ids of its answer (the verdict, or the response's id,
    its predictions and the settings that decided it), never a body. A verdict's key keeps its verdict; a REST key
    stored its whole response, whose predictions it did not name, so it cannot be rebuilt: it is dropped."""
    verdict_keys = db.execute("select key, request, response, created from idempotency_keys where request like "
                              "'[\"verdict\"%'").fetchall()
    db["idempotency_keys"].drop()
    db["idempotency_keys"].create(
        {"key": str, "request_hash": str, "verdict_id": int, "response_id": str, "predictions": str, "settings": str,
         "created": str},
        pk="key",
        not_null={"request_hash", "created"},
    )
    db["idempotency_keys"].create_index(["created"])
    db["idempotency_keys"].insert_all({"key": key, "request_hash": _hash(request), "verdict_id": int(response),
                                       "created": created} for key, request, response, created in verdict_keys)


@migrations()
def create_curation_batches(db):
    """Each curation action (on one verdict or many, in one transaction) as a batch, with what each verdict it
    changed was before it, so that the batch can be undone; ``created`` is the ``updated`` time it gave them."""
    db["batches"].create({"id": int, "created": str, "curator": str, "status": str, "label": str, "undone": str,
                          "undone_by": str}, pk="id", not_null={"created"})
    db["batch_verdicts"].create({"batch_id": int, "verdict_id": int, "status": str, "label": str, "verdict": str},
                                pk=("batch_id", "verdict_id"), not_null={"status", "label", "verdict"},
                                foreign_keys=[("batch_id", "batches", "id")])


@migrations()
def create_queue_skips(db):
    """The texts each reviewer skipped in the queue (by one of their predictions), until the reviewer clears them; a
    skip goes with its prediction when that is deleted."""
    db.execute("""create table skips (
      reviewer text not null,
      prediction_id integer not null references predictions (id) on delete cascade,
      created text not null,
      primary key (reviewer, prediction_id))""")
    db["skips"].create_index(["prediction_id"])


@migrations()
def create_splits(db):
    """The split (train or test) of each accepted text, assigned once; the texts accepted before get theirs by the
    hash of the text, 20% to test (as the live code first computed it)."""
    db["splits"].create({"text": str, "split": str, "created": str}, pk="text", not_null={"split", "created"})
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds")
    texts = [row[0] for row in db.execute("select distinct predictions.text from verdicts join predictions on "
                                          "predictions.id = verdicts.prediction_id where verdicts.status = 'accepted'")]
    db["splits"].insert_all({"text": text, "split": _split(text), "created": created} for text in texts)


@migrations()
def add_evaluation_trained_texts(db):
    """How many gold texts that the evaluated version trained on a run left out, or kept."""
    for column in ("trained_left_out", "trained_included"):
        db["evaluation_runs"].add_column(column, int, not_null_default=0)


@migrations()
def create_serving_events(db):
    """What the app served and shadowed, and who changed it, when and why (with the gate's figures)."""
    db["serving_events"].create(
        {"id": int, "created": str, "action": str, "version": str, "folder": str, "reviewer": str, "reason": str,
         "gate": str},
        pk="id",
        not_null={"created", "action", "version", "reviewer"},
    )


@migrations()
def create_shadow_predictions(db):
    """A shadow's label of a text the serving model answered, beside the serving model's."""
    db["shadow_predictions"].create(
        {"id": int, "created": str, "text": str, "template": str, "serving_model": str, "serving_label": str,
         "model": str, "label": str, "scores": str},
        pk="id",
        not_null={"created", "text", "serving_model", "serving_label", "model", "label", "scores"},
    )
    for columns in (["text"], ["model"], ["created"]):
        db["shadow_predictions"].create_index(columns)
