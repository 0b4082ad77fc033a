"""Curation in the store: texts reviewers disagree on, the final label a curator sets, the curated label of a
text, and the training export (one line per text, with its curated label)."""

import io
import json

import pytest

from feedback.export import export_jsonl
from feedback.store import FeedbackStore
from moderation.labels import LABELS

SCORES = {label: 0.2 for label in LABELS}


@pytest.fixture
def store(tmp_path):
    with FeedbackStore(tmp_path / "feedback.db") as store:
        yield store


def predict(store, text, label="casual"):
    return store.save_prediction(text=text, label=label, scores=SCORES, prompt="p", model="m")


def verdict(store, prediction, reviewer, label, model_label="casual"):
    right = label == model_label
    return store.add_verdict(prediction, verdict="right" if right else "wrong", label=None if right else label,
                             reviewer=reviewer)


def oig(store, **filters):
    out = io.StringIO()
    export_jsonl(store, out, **filters)
    return [json.loads(line)["text"] for line in out.getvalue().splitlines()]


@pytest.fixture
def judged(store):
    """"agreed" twice moderated and judged alike; "split" judged casual and needs caution; "single" once."""
    first, second = predict(store, "agreed"), predict(store, "agreed")
    verdict(store, first, "ana", "needs caution")
    verdict(store, second, "bo", "needs caution")
    split = predict(store, "split")
    verdict(store, split, "ana", "casual")
    verdict(store, split, "bo", "needs caution")
    verdict(store, predict(store, "single"), "ana", "casual")
    return store


def test_the_export_has_one_line_per_text_and_leaves_out_unsettled_ones(judged):
    assert oig(judged) == ["Input: agreed\nOutput: needs caution", "Input: single\nOutput: casual"]
    assert [row["text"] for row in judged.curation.curated_labels()] == ["agreed", "single"]
    assert [row["verdicts"] for row in judged.curation.curated_labels()] == [2, 1]


def test_disagreements_list_unsettled_texts_and_a_final_label_settles_them(judged):
    [row] = judged.curation.disagreements()
    assert (row["text"], row["model_labels"], row["final_label"]) == ("split", ["casual"], None)
    assert sorted((v["reviewer"], v["label"]) for v in row["verdicts"]) == [("ana", "casual"), ("bo", "needs caution")]
    assert oig(judged, status="accepted") == []

    final = judged.curation.set_final_label("split", "possibly needs caution", " cy ")
    assert (final["label"], final["curator"]) == ("possibly needs caution", "cy")
    assert judged.curation.disagreements()[0]["final_label"] == "possibly needs caution"
    assert oig(judged, status="accepted") == ["Input: split\nOutput: possibly needs caution"]
    assert oig(judged)[1] == "Input: split\nOutput: possibly needs caution"
    judged.curation.set_final_label("split", "needs caution", "cy")
    assert oig(judged, status="accepted") == ["Input: split\nOutput: needs caution"]


def test_a_discarded_verdict_no_longer_makes_a_disagreement(judged):
    bo = next(judged.db["verdicts"].rows_where("reviewer = 'bo' and label = 'needs caution' and prediction_id = 3"))
    judged.curation.set_status(bo["id"], "discarded")
    assert judged.curation.disagreements() == []
    assert "Input: split\nOutput: casual" not in oig(judged), "'any' status still counts the discarded verdict"
    judged.curation.set_status(bo["id"] - 1, "accepted")
    assert oig(judged, status="accepted") == ["Input: split\nOutput: casual"]


def test_final_labels_stream_in_batches(store):
    for number in range(7):
        prediction = predict(store, f"text {number}")
        verdict(store, prediction, "ana", "casual")
        verdict(store, prediction, "bo", "needs caution")
        store.curation.set_final_label(f"text {number}", LABELS[number % 5], "cy")
    rows = list(store.curation.curated_labels(batch_size=2))
    assert [(row["text"], row["label"]) for row in rows] == [(f"text {n}", LABELS[n % 5]) for n in range(7)]
