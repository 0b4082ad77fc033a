"""The review queue in the store: what waits for a reviewer, in each order; one verdict per reviewer per
prediction; taking a verdict back; and the migration that brings older databases along."""

import json

import pytest
import sqlite_utils

from feedback.migrations import migrations
from feedback.queue import QUEUE_ORDERS, intervene_margin, margin
from feedback.store import FeedbackStore
from moderation.errors import Conflict
from moderation.labels import LABELS
from moderation.policy import CARD


def probabilities(**given) -> dict:
    """Five probabilities: those given (by label, spaces as underscores), the rest sharing what is left."""
    given = {label.replace("_", " "): p for label, p in given.items()}
    rest = (1 - sum(given.values())) / (len(LABELS) - len(given))
    return {label: given.get(label, rest) for label in LABELS}


@pytest.fixture
def store(tmp_path):
    with FeedbackStore(tmp_path / "feedback.db") as store:
        yield store


def record(store, text, scores, threshold="needs caution", mode="score"):
    label = max(scores, key=scores.get) if mode == "score" else None
    return store.save_prediction(text=text, label=label, scores=scores if mode == "score" else {},
                                   prompt=f"Input: {text}\nOutput:", model="m", mode=mode, threshold=threshold)


def queue(store, reviewer, order):
    """Every text the reviewer would be shown, in order, by judging each one as it comes ("right")."""
    shown = []
    while (item := store.queue.next(reviewer, order=order)) is not None:
        shown.append(item["text"])
        store.add_verdict(item["id"], verdict="right", reviewer=reviewer)
    return shown


def test_margins_by_hand():
    assert margin(probabilities(casual=0.5, needs_caution=0.3)) == pytest.approx(0.2)
    assert margin(probabilities(casual=0.2, needs_caution=0.2, needs_intervention=0.2)) == pytest.approx(0)
    # at "needs caution", needs caution and needs intervention intervene: 0.35 against the best of the rest, 0.4
    scores = probabilities(casual=0.4, needs_caution=0.35, needs_intervention=0.05, possibly_needs_caution=0.1)
    assert intervene_margin(scores, "needs caution", CARD) == pytest.approx(0.05)
    assert intervene_margin(scores, "needs intervention", CARD) == pytest.approx(0.35)
    assert intervene_margin(scores, "never", CARD) is None and intervene_margin(scores, "casual", CARD) is None


def test_most_uncertain_first_and_newest(store):
    for text, scores in [("sure", probabilities(casual=0.9)), ("torn", probabilities(casual=0.3, needs_caution=0.3)),
                         ("leaning", probabilities(casual=0.5, needs_caution=0.3))]:
        record(store, text, scores)
    record(store, "generated, no scores", {}, mode="generate")
    assert store.queue.size("ana") == store.queue.size() == 3
    assert queue(store, "ana", "most uncertain") == ["torn", "leaning", "sure"]
    assert queue(store, "bo", "newest") == ["leaning", "torn", "sure"]
    assert store.queue.size("ana") == 0 and store.queue.size("cy") == 3 and store.queue.size() == 0


def test_nearest_the_threshold_first(store):
    record(store, "far", probabilities(casual=0.9))
    record(store, "close", probabilities(casual=0.4, needs_caution=0.38))
    record(store, "observed only", probabilities(casual=0.3, possibly_needs_caution=0.3), threshold="never")
    record(store, "middle", probabilities(casual=0.5, needs_intervention=0.3))
    assert queue(store, "ana", "nearest the threshold") == ["close", "middle", "far", "observed only"]


def test_texts_reviewers_disagree_on_come_first(store):
    ids = {text: record(store, text, probabilities(casual=0.9 - n / 10)) for n, text in enumerate(["a", "b", "c"])}
    store.add_verdict(ids["c"], verdict="right", reviewer="ana")
    store.add_verdict(ids["c"], verdict="wrong", label="needs caution", reviewer="bo")
    store.add_verdict(ids["a"], verdict="right", reviewer="ana")
    assert queue(store, "cy", "reviewers disagree") == ["c", "a", "b"]


def test_a_judged_text_leaves_the_queue_with_its_other_predictions(store):
    first = record(store, "same text", probabilities(casual=0.4, needs_caution=0.35))
    record(store, "same text", probabilities(casual=0.4, needs_caution=0.35))
    other = record(store, "other text", probabilities(casual=0.6))
    assert store.queue.next("ana")["id"] == first
    store.add_verdict(first, verdict="right", reviewer="ana")
    assert store.queue.next("ana")["id"] == other
    item = store.queue.next("bo")
    assert (item["id"], item["scores"], item["prompt"]) == (first, pytest.approx(probabilities(
        casual=0.4, needs_caution=0.35)), "Input: same text\nOutput:")


def test_a_skipped_text_stays_out_of_its_reviewers_queue_until_they_clear_their_skips(tmp_path):
    path = tmp_path / "feedback.db"
    with FeedbackStore(path) as store:
        first = record(store, "same text", probabilities(casual=0.4, needs_caution=0.35))
        record(store, "same text", probabilities(casual=0.4, needs_caution=0.35))
        other = record(store, "other text", probabilities(casual=0.6))
        store.queue.skip("ana", first)
        store.queue.skip("ana", first)
        assert store.queue.next("ana")["id"] == other, "the skipped text's other prediction is skipped too"
        assert store.queue.next("bo")["id"] == first, "a skip is the reviewer's own"
    with FeedbackStore(path) as store:  # skips are kept in the database
        assert (store.queue.skipped("ana"), store.queue.skipped("bo")) == (1, 0)
        assert store.queue.size("ana") == 3, "a skipped text's predictions still wait for a verdict"
        store.queue.skip("ana", other)
        assert store.queue.next("ana") is None
        assert store.queue.clear_skips("ana") == 2 and store.queue.skipped("ana") == 0
        assert store.queue.next("ana")["id"] == first


def test_a_skip_goes_with_its_prediction_when_that_is_erased(store):
    skipped = record(store, "erase me", probabilities(casual=0.6))
    store.queue.skip("ana", skipped)
    store.erasure.forget(text="erase me")
    assert store.queue.skipped("ana") == 0 and store.db["predictions"].count == 0


def test_a_second_verdict_from_a_reviewer_replaces_the_first(store):
    prediction = record(store, "I hate this", probabilities(possibly_needs_caution=0.6))
    first = store.add_verdict(prediction, verdict="wrong", label="casual", note="a mood", reviewer="ana")
    store.curation.set_status(first["id"], "accepted")
    second = store.add_verdict(prediction, verdict="right", reviewer=" ana ")
    assert second["id"] == first["id"] and store.db["verdicts"].count == 1
    assert (second["verdict"], second["label"], second["note"], second["status"]) == (
        "right", "possibly needs caution", "", "pending")
    assert store.add_verdict(prediction, verdict="right", reviewer="bo")["id"] != first["id"]


def test_a_reviewer_takes_back_their_own_pending_verdict(store):
    prediction = record(store, "maybe", probabilities(casual=0.4, needs_caution=0.35))
    verdict = store.add_verdict(prediction, verdict="wrong", label="needs caution", reviewer="ana")
    assert store.queue.next("ana") is None
    assert store.withdraw_verdict(verdict["id"], "ana") == verdict
    assert store.db["verdicts"].count == 0 and store.queue.next("ana")["id"] == prediction
    judged = store.add_verdict(prediction, verdict="right", reviewer="ana")
    curated = store.curation.set_status(judged["id"], "accepted")
    with pytest.raises(Conflict, match="already accepted: a curator decides on it now"):
        store.withdraw_verdict(curated["id"], "ana")
    stored = store.db["verdicts"].get(curated["id"])
    assert stored == {column: curated[column] for column in stored}


def test_every_order_is_known():
    assert list(QUEUE_ORDERS) == ["most uncertain", "nearest the threshold", "reviewers disagree", "newest",
                                  "serving and shadow disagree"]


def test_an_older_database_keeps_each_reviewers_latest_verdict_and_gets_margins(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite_utils.Database(path)
    migrations.apply(db, stop_before="one_verdict_per_reviewer")
    scores = probabilities(casual=0.45, needs_caution=0.4)
    for text, mode in [("scored", "score"), ("generated", "generate")]:
        db["predictions"].insert({"created": "2026-01-01T00:00:00", "text": text, "label": "casual",
                                  "scores": json.dumps(scores if mode == "score" else {}), "prompt": "p",
                                  "model": "m", "mode": mode})
    for n, (reviewer, label) in enumerate([("ana", "casual"), ("ana", "needs caution"), ("bo", "casual")]):
        db["verdicts"].insert({"prediction_id": 1, "verdict": "right" if label == "casual" else "wrong",
                               "label": label, "reviewer": reviewer, "created": f"2026-01-0{n + 2}T00:00:00",
                               "status": "pending", "updated": f"2026-01-0{n + 2}T00:00:00"})
    db.close()
    with FeedbackStore(path) as store:
        verdicts = [(row["id"], row["reviewer"], row["label"]) for row in store.db["verdicts"].rows]
        predictions = list(store.db.query("select text, margin, intervene_margin from predictions order by id"))
    assert verdicts == [(2, "ana", "needs caution"), (3, "bo", "casual")]
    assert predictions == [{"text": "scored", "margin": pytest.approx(0.05), "intervene_margin": pytest.approx(0.05)},
                           {"text": "generated", "margin": None, "intervene_margin": None}]
