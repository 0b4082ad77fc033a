import json
import os
import threading

import pytest
import sqlite_utils

from feedback.export import verdict_rows
from feedback.migrations import migrations
from feedback.rows import STATUSES
from feedback.stats import summary
from feedback.store import FeedbackStore
from moderation.labels import LABELS
from moderation.templates import PromptTemplate

SCORES = {label: 0.2 for label in LABELS}


@pytest.fixture
def store(tmp_path):
    with FeedbackStore(tmp_path / "data" / "feedback.db") as store:
        yield store


def predict(store, text="I hate my job", label="possibly needs caution", **extra):
    return store.save_prediction(
        text=text, label=label, scores=SCORES, prompt=f"Input: {text}\nOutput:", model="demo", **extra
    )


def counts(store):
    return {name: store.db[name].count for name in ("templates", "predictions", "verdicts", "final_labels")}


def test_a_new_database_and_its_wal_are_for_their_owner_alone(tmp_path):
    path = tmp_path / "feedback.db"
    previous = os.umask(0o022)  # the usual umask, which leaves new files readable by everyone
    try:
        with FeedbackStore(path) as store:
            predict(store)
            modes = {file.name: oct(file.stat().st_mode & 0o777) for file in tmp_path.iterdir()}
    finally:
        os.umask(previous)
    assert modes == {"feedback.db": "0o600", "feedback.db-wal": "0o600", "feedback.db-shm": "0o600"}


def test_migrations_create_schema_once(tmp_path):
    path = tmp_path / "new" / "feedback.db"
    FeedbackStore(path).close()
    db = sqlite_utils.Database(path)
    assert {"templates", "predictions", "verdicts", "predictions_fts", "_sqlite_migrations"} <= set(
        db.table_names()
    )
    triggers = {trigger.name for trigger in db["predictions"].triggers}
    assert triggers == {"predictions_ai", "predictions_ad", "predictions_au"}
    assert {tuple(i.columns) for i in db["verdicts"].indexes} >= {("status",), ("prediction_id",)}
    assert ("created",) in {tuple(i.columns) for i in db["predictions"].indexes}
    assert db["verdicts"].foreign_keys[0].other_table == "predictions"
    rows = db["_sqlite_migrations"].rows_where("migration_set = 'feedback'", order_by="id")
    applied = [row["name"] for row in rows]
    assert applied == [
        "create_templates",
        "create_predictions",
        "create_verdicts",
        "search_prediction_text",
        "create_indexes",
        "add_prediction_role",
        "one_verdict_per_reviewer",
        "add_prediction_margins",
        "create_final_labels",
        "create_evaluation_runs",
        "create_idempotency_keys",
        "create_write_checks",
        "idempotency_keys_hold_hashes_and_ids",
        "create_curation_batches",
        "create_queue_skips",
        "create_splits",
        "add_evaluation_trained_texts",
        "create_serving_events",
        "create_shadow_predictions",
    ]
    assert db.execute("pragma journal_mode").fetchone()[0] == "wal"
    db.close()

    FeedbackStore(path).close()
    db = sqlite_utils.Database(path)
    assert db["_sqlite_migrations"].count == len(applied)
    assert migrations.pending(db) == []


def test_an_older_database_upgrades_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite_utils.Database(path)
    migrations.apply(db, stop_before="add_prediction_role")
    db["predictions"].insert({"created": "2026-01-01T00:00:00", "text": "old text", "label": "casual",
                              "scores": "{}", "prompt": "p", "model": "m", "mode": "score"})
    db.close()
    with FeedbackStore(path) as store:
        new_id = store.save_prediction(text="new", label="casual", scores=SCORES, prompt="p", model="m", role="bot")
        rows = list(store.db.query("select text, role from predictions order by id"))
    assert rows == [{"text": "old text", "role": None}, {"text": "new", "role": "bot"}]
    assert new_id == 2


def test_round_trip(store):
    store.save_template("t1", PromptTemplate().to_json())
    store.save_template("t1", PromptTemplate().to_json())
    prediction_id = predict(store, template="t1")
    verdict = store.add_verdict(
        prediction_id, verdict="wrong", label="needs caution", note="threat", reviewer="  ann "
    )
    assert verdict["label"] == "needs caution"
    assert verdict["verdict"] == "wrong"
    assert verdict["reviewer"] == "ann"
    assert verdict["status"] == "pending"

    [row] = store.curation.verdicts()
    assert row["id"] == verdict["id"]
    assert row["prediction_id"] == prediction_id
    assert row["model_label"] == "possibly needs caution"
    assert row["label"] == "needs caution"
    assert row["text"] == "I hate my job"
    assert row["scores"] == SCORES
    assert row["template"] == "t1"
    assert row["note"] == "threat"

    accepted = store.curation.set_status(verdict["id"], "accepted")
    assert accepted["status"] == "accepted"
    assert accepted["updated"] >= verdict["updated"]

    relabelled = store.curation.relabel(verdict["id"], "possibly needs caution")
    assert (relabelled["label"], relabelled["verdict"]) == ("possibly needs caution", "right")
    relabelled = store.curation.relabel(verdict["id"], "casual")
    assert (relabelled["label"], relabelled["verdict"]) == ("casual", "wrong")
    assert relabelled["status"] == "accepted"

    right = store.add_verdict(prediction_id, verdict="right", reviewer="bob")
    assert right["label"] == "possibly needs caution"
    assert counts(store) == {"templates": 1, "predictions": 1, "verdicts": 2, "final_labels": 0}


def test_scores_stored_as_floats_in_label_order(store):
    import numpy

    scores = {label: numpy.float32(0.2) for label in reversed(LABELS)}
    prediction_id = store.save_prediction(
        text="hi", label="casual", scores=scores, prompt="Input: hi\nOutput:", model="demo"
    )
    stored = store.db["predictions"].get(prediction_id)["scores"]
    assert list(json.loads(stored)) == list(LABELS)
    assert json.loads(stored)["casual"] == pytest.approx(0.2)


def test_filters_and_stats(store):
    rows = [
        ("I want to call in sick", "casual", "right", None),
        ("I hate this job and I want to quit", "possibly needs caution", "wrong", "needs caution"),
        ("you are sitting in the wrong section", "needs caution", "wrong", "needs intervention"),
        ("lovely weather", "casual", "right", None),
    ]
    ids = []
    for text, model_label, verdict, label in rows:
        prediction_id = predict(store, text=text, label=model_label)
        ids.append(store.add_verdict(prediction_id, verdict=verdict, label=label, reviewer="ann")["id"])
    predict(store, text="never reviewed", label="casual")
    store.curation.set_status(ids[1], "accepted")
    store.curation.set_status(ids[3], "discarded")

    assert [r["id"] for r in store.curation.verdicts()] == ids[::-1]
    assert [r["id"] for r in store.curation.verdicts(limit=2)] == ids[:1:-1]
    assert [r["id"] for r in store.curation.verdicts(status="accepted")] == [ids[1]]
    assert [r["id"] for r in store.curation.verdicts(label="casual")] == [ids[3], ids[0]]
    assert [r["id"] for r in store.curation.verdicts(disagree=True)] == [ids[2], ids[1]]
    assert [r["id"] for r in store.curation.verdicts(search="job")] == [ids[1]]
    assert [r["id"] for r in store.curation.verdicts(search="wrong section")] == [ids[2]]
    assert store.curation.verdicts(search="section wrong") == []
    assert [r["id"] for r in store.curation.verdicts(disagree=True, status="accepted")] == [ids[1]]

    stats = summary(store)
    assert stats["predictions"] == 5
    assert stats["predictions_by_label"]["casual"] == 3
    assert stats["verdicts"] == 4
    assert stats["verdicts_by_label"] == {
        "casual": 2,
        "needs caution": 1,
        "needs intervention": 1,
        "possibly needs caution": 0,
        "probably needs caution": 0,
    }
    assert stats["verdicts_by_status"] == {"pending": 2, "accepted": 1, "discarded": 1}
    assert stats["model_agreement"] == 0.5


def test_empty_stats(store):
    stats = summary(store)
    assert (stats["predictions"], stats["verdicts"], stats["model_agreement"]) == (0, 0, None)


@pytest.mark.parametrize("query", ['"', "*", "a OR", "-x", ":", '"unbalanced', "NEAR(", "AND", "  "])
def test_hostile_search(store, query):
    predict(store, text="a OR -x: * some text")
    store.add_verdict(1, verdict="right", reviewer="ann")
    assert isinstance(store.curation.verdicts(search=query), list)


def test_concurrent_writers(store):
    errors = []

    def work(worker):
        try:
            for n in range(50):
                prediction_id = predict(store, text=f"worker {worker} text {n}")
                store.add_verdict(prediction_id, verdict="right", reviewer=f"reviewer {worker}")
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []

    ids = [row["id"] for row in store.db["verdicts"].rows]
    assert len(ids) == len(set(ids)) == 400
    with FeedbackStore(store.path) as other:
        assert len(other.curation.verdicts(limit=1000)) == 400
        assert summary(other)["predictions"] == 400
        assert len(list(verdict_rows(other, batch_size=64))) == 400


REFUSALS = {
    "unknown label": (lambda s, p, v: predict(s, label="spam"), "choose one of casual"),
    "empty text": (lambda s, p, v: predict(s, text="  \n"), "enter a text"),
    "scores missing a label": (
        lambda s, p, v: s.save_prediction(
            text="x", label="casual", scores={"casual": 1.0}, prompt="p", model="m"
        ),
        "for each of",
    ),
    "scores not a probability": (
        lambda s, p, v: s.save_prediction(
            text="x", label="casual", scores={**SCORES, "casual": 1.5}, prompt="p", model="m"
        ),
        "from 0 to 1",
    ),
    "unknown mode": (lambda s, p, v: predict(s, mode="guess"), "score, generate"),
    "unknown template": (lambda s, p, v: predict(s, template="nope"), "save_template"),
    "unknown prediction": (
        lambda s, p, v: s.add_verdict(999, verdict="right", reviewer="ann"),
        "moderate the text first",
    ),
    "empty reviewer": (lambda s, p, v: s.add_verdict(p, verdict="right", reviewer=""), "Enter your name"),
    "whitespace reviewer": (
        lambda s, p, v: s.add_verdict(p, verdict="right", reviewer=" \t"),
        "Enter your name",
    ),
    "bad verdict": (lambda s, p, v: s.add_verdict(p, verdict="maybe", reviewer="ann"), "right, wrong"),
    "wrong without label": (
        lambda s, p, v: s.add_verdict(p, verdict="wrong", reviewer="ann"),
        "Choose the correct label",
    ),
    "wrong with the model's label": (
        lambda s, p, v: s.add_verdict(p, verdict="wrong", label="possibly needs caution", reviewer="ann"),
        "Label is right",
    ),
    "wrong with unknown label": (
        lambda s, p, v: s.add_verdict(p, verdict="wrong", label="bad", reviewer="ann"),
        "choose one of",
    ),
    "right with another label": (
        lambda s, p, v: s.add_verdict(p, verdict="right", label="casual", reviewer="ann"),
        "Label is wrong",
    ),
    "bad status": (lambda s, p, v: s.curation.set_status(v, "done"), "pending, accepted, discarded"),
    "unknown verdict id": (lambda s, p, v: s.curation.set_status(999, "accepted"), "No verdict 999"),
    "relabel unknown label": (lambda s, p, v: s.curation.relabel(v, "nice"), "choose one of"),
    "relabel unknown verdict id": (lambda s, p, v: s.curation.relabel(999, "casual"), "No verdict 999"),
    "bad filter status": (lambda s, p, v: s.curation.verdicts(status="done"), "choose one of"),
    "bad since": (lambda s, p, v: verdict_rows(s, since="last week"), "2026-11-29"),
    "take back another's verdict": (lambda s, p, v: s.withdraw_verdict(v, "bob"), "only they can take it back"),
    "take back an unknown verdict": (lambda s, p, v: s.withdraw_verdict(999, "ann"), "No verdict 999"),
    "final label unknown": (lambda s, p, v: s.curation.set_final_label("I hate my job", "meh", "cy"),
                            "choose one of"),
    "final label without curator": (lambda s, p, v: s.curation.set_final_label("I hate my job", "casual", " "),
                                    "curator"),
    "final label of an unjudged text": (lambda s, p, v: s.curation.set_final_label("never seen", "casual", "cy"),
                                        "No verdict"),
    "unknown queue order": (lambda s, p, v: s.queue.next("ann", order="random"), "most uncertain"),
    "accept what changed since it was shown": (
        lambda s, p, v: s.curation.set_status(v, "accepted", shown="2026-01-01T00:00:00.000000+00:00"),
        r'Verdict #1 \("I hate my job"\) changed since it was shown: its reviewer gave their verdict again'),
    "relabel what changed since it was shown": (
        lambda s, p, v: s.curation.relabel(v, "casual", shown="2026-01-01T00:00:00.000000+00:00"),
        "Nothing was changed: look again"),
    "a change of nothing": (lambda s, p, v: s.curation.change({v: None}), "Choose what to change"),
    "a change with an unknown verdict": (lambda s, p, v: s.curation.change({v: None, 999: None}, status="accepted"),
                                         "No verdict 999"),
    "undo an unknown batch": (lambda s, p, v: s.curation.undo(7), "No batch 7"),
    "skip an unknown prediction": (lambda s, p, v: s.queue.skip("ann", 999), "No prediction 999"),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_refusals_write_nothing(store, case):
    call, hint = REFUSALS[case]
    prediction_id = predict(store)
    verdict = store.add_verdict(prediction_id, verdict="right", reviewer="ann")
    before = counts(store)
    with pytest.raises(ValueError, match=hint):
        call(store, prediction_id, verdict["id"])
    assert counts(store) == before
    assert store.db["verdicts"].get(verdict["id"]) == verdict


def test_the_verdicts_counted_by_status_follow_every_write(store):
    def counted_as_stored():
        stored = dict(store.db.execute("select status, count(*) from verdicts group by status").fetchall())
        assert store.connection.verdicts_by_status() == {status: stored.get(status, 0) for status in STATUSES}

    ids = [predict(store, text=f"counted {n}", label="casual") for n in range(4)]
    verdicts = [store.add_verdict(i, verdict="wrong", label="needs caution", reviewer="ana")["id"] for i in ids]
    counted_as_stored()
    store.curation.set_status(verdicts[0], "accepted")
    store.curation.set_status(verdicts[1], "discarded")
    store.curation.set_status(verdicts[1], "discarded")
    store.curation.relabel(verdicts[0], "needs intervention")
    counted_as_stored()
    store.add_verdict(ids[0], verdict="right", reviewer="ana")  # replaces the accepted one: pending again
    store.add_verdict(ids[2], verdict="right", reviewer="bo")
    counted_as_stored()
    store.withdraw_verdict(verdicts[3], "ana")
    store.curation.set_final_label("counted 2", "casual", "cy")
    counted_as_stored()
    assert store.connection.verdicts_by_status() == {"pending": 1, "accepted": 2, "discarded": 1}
    store.close()
    assert FeedbackStore(store.path).connection.verdicts_by_status() == {"pending": 1, "accepted": 2, "discarded": 1}
