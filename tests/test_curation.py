"""Curation in the store: texts reviewers disagree on, the final label a curator sets, the curated label of a
text, and the training export (one line per text, with its curated label); changes of many verdicts at once, in one
transaction and one batch that can be undone; actions refused on verdicts that changed since they were shown."""

import io
import json
import sqlite3

import pytest

from feedback import curation
from feedback.export import export_jsonl
from feedback.store import FeedbackStore
from moderation.errors import Conflict
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


def statuses(store) -> dict[str, tuple[str, str, str]]:
    """Each text's verdicts as (reviewer, status, label), by text and reviewer."""
    return {(row["text"], row["reviewer"]): (row["status"], row["label"], row["verdict"])
            for row in store.curation.verdicts(limit=1000)}


def test_a_bulk_change_is_one_batch_that_undo_takes_back(judged):
    before = statuses(judged)
    shown = judged.curation.matching(status="pending")
    assert len(shown) == 5
    done = judged.curation.change(shown, label="needs intervention", status="accepted", curator="cy")
    assert done["batch"] == 1 and len(done["changed"]) == 5 and done["unchanged"] == []
    assert {(row["status"], row["label"], row["verdict"]) for row in done["changed"]} == {
        ("accepted", "needs intervention", "wrong")}
    assert {row["updated"] for row in judged.curation.verdicts()} == {done["changed"][0]["updated"]}
    assert judged.connection.verdicts_by_status() == {"pending": 0, "accepted": 5, "discarded": 0}

    again = judged.curation.change(judged.curation.matching(), status="accepted", label="needs intervention")
    assert (again["batch"], again["changed"], len(again["unchanged"])) == (None, [], 5), "nothing to change: no batch"

    undone = judged.curation.undo(1, "cy")
    assert len(undone["restored"]) == 5 and statuses(judged) == before
    assert judged.connection.verdicts_by_status() == {"pending": 5, "accepted": 0, "discarded": 0}
    with pytest.raises(Conflict, match=r"Batch #1 was undone already \(cy, .* UTC\): nothing to undo"):
        judged.curation.undo(1)


def test_a_change_runs_in_one_transaction(judged):
    before = statuses(judged)
    judged.db.execute("create trigger fail_the_third before update on verdicts when new.id = 3 "
                      "begin select raise(abort, 'the disk failed'); end")
    with pytest.raises(sqlite3.IntegrityError, match="the disk failed"):
        judged.curation.change(judged.curation.matching(), status="discarded", curator="cy")
    assert statuses(judged) == before and judged.db["batches"].count == 0
    assert judged.connection.verdicts_by_status() == {"pending": 5, "accepted": 0, "discarded": 0}


def test_an_action_on_a_verdict_that_changed_since_it_was_shown_is_refused(judged):
    shown = judged.curation.matching()
    split_bo = next(row for row in judged.curation.verdicts() if (row["text"], row["reviewer"]) == ("split", "bo"))
    judged.curation.set_status(split_bo["id"], "discarded", shown=shown[split_bo["id"]], curator="dee")
    before = statuses(judged)
    with pytest.raises(Conflict) as refused:
        judged.curation.change(shown, status="accepted", curator="cy")
    assert str(refused.value) == (
        f'1 of the 5 verdicts changed since they were shown: verdict #{split_bo["id"]} ("split"): dee set it to '
        f'discarded (batch #1) at {judged.curation.record(split_bo["id"])["updated"][:19].replace("T", " ")} UTC; '
        "it is now discarded, labelled needs caution. Nothing was changed: look again, then act.")
    assert statuses(judged) == before
    with pytest.raises(Conflict, match=r'Verdict #\d+ \("split"\) changed since it was shown: dee set it to discarded'):
        judged.curation.relabel(split_bo["id"], "casual", shown=split_bo["updated"], curator="cy")


def test_undo_is_refused_when_a_verdict_changed_since_the_batch(judged):
    batch = judged.curation.change(judged.curation.matching(), status="accepted", curator="cy")
    changed = batch["changed"][0]
    judged.curation.relabel(changed["id"], "needs intervention", shown=changed["updated"], curator="dee")
    before = statuses(judged)
    with pytest.raises(Conflict, match=rf"Batch #1 cannot be undone: 1 of the 5 verdicts changed since batch #1: "
                                       rf"verdict #{changed['id']} \(.*\): dee relabelled it needs intervention "
                                       r"\(batch #2\).*Nothing was undone"):
        judged.curation.undo(1, "cy")
    assert statuses(judged) == before
    judged.curation.undo(2, "dee")
    judged.curation.undo(1, "cy")
    assert {status for status, _, _ in statuses(judged).values()} == {"pending"}


def test_a_final_label_accepts_the_pending_verdicts_in_a_batch(judged):
    judged.curation.set_final_label("split", "possibly needs caution", "cy")
    assert {key: value[0] for key, value in statuses(judged).items() if key[0] == "split"} == {
        ("split", "ana"): "accepted", ("split", "bo"): "accepted"}
    assert judged.db["batches"].get(1)["curator"] == "cy"
    judged.curation.undo(1, "cy")
    assert {value[0] for key, value in statuses(judged).items() if key[0] == "split"} == {"pending"}


def test_selecting_a_verdict_shows_every_verdict_on_its_text(judged):
    ana = next(row for row in judged.curation.verdicts() if (row["text"], row["reviewer"]) == ("split", "ana"))
    record = judged.curation.record(ana["id"])
    assert (record["text"], record["model_label"], record["status"]) == ("split", "casual", "pending")
    assert [(row["reviewer"], row["label"], row["status"]) for row in record["on_text"]] == [
        ("ana", "casual", "pending"), ("bo", "needs caution", "pending")]


def test_at_most_max_change_verdicts_change_at_once(judged, monkeypatch):
    monkeypatch.setattr(curation, "MAX_CHANGE", 4)
    with pytest.raises(Conflict, match="More than 4 verdicts match: act on at most 4 at once, narrow the filters"):
        judged.curation.matching()
    assert len(judged.curation.matching(search="split")) == 2


def full(store) -> list[dict]:
    out = io.StringIO()
    export_jsonl(store, out, format="full")
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_full_export_of_a_disputed_text_carries_the_curators_final_label(judged):
    assert {(row["text"], row["final_label"], row["final_label_by"]) for row in full(judged)} == {
        ("agreed", None, None), ("split", None, None), ("single", None, None)}
    judged.curation.set_final_label("split", "possibly needs caution", "cy")
    disputed = [row for row in full(judged) if row["text"] == "split"]
    assert [(row["reviewer"], row["label"]) for row in disputed] == [("ana", "casual"), ("bo", "needs caution")]
    assert {(row["final_label"], row["final_label_by"]) for row in disputed} == {("possibly needs caution", "cy")}
    assert "Input: split\nOutput: possibly needs caution" in oig(judged)
