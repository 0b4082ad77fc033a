"""Gold that training never sees: an accepted text goes to train or test by the hash of the text as the model sees
it, once; the split stays through another accept, a change of the test share, the final label, exports, merges and
the upgrade of a database accepted before splits were kept."""

import io
import json
import sqlite3

import pytest
import sqlite_utils

from feedback.__main__ import main as feedback_main
from feedback.export import export_jsonl
from feedback.migrations import migrations
from feedback.splits import check_test_share, split_for
from feedback.store import FeedbackStore
from moderation.errors import InvalidInput
from moderation.labels import LABELS
from moderation.prompt import normalize_text

SCORES = {label: 0.2 for label in LABELS}
TEXTS = [f"text number {n} about the weather" for n in range(40)]


def accepted(store, text, reviewer="ana", label="casual"):
    """A prediction of ``text``, a verdict on it, accepted; the verdict."""
    prediction = store.save_prediction(text=normalize_text(text), label="casual", scores=SCORES, prompt="p",
                                       model="m")
    verdict = store.add_verdict(prediction, verdict="right" if label == "casual" else "wrong",
                                label=None if label == "casual" else label, reviewer=reviewer)
    return store.curation.set_status(verdict["id"], "accepted")


def splits(path) -> dict[str, str]:
    return {row["text"]: row["split"] for row in sqlite_utils.Database(path)["splits"].rows}


def oig(store, **filters) -> list[dict]:
    out = io.StringIO()
    export_jsonl(store, out, **filters)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_the_hash_puts_about_the_test_share_in_test_and_ignores_how_a_text_was_typed():
    shares = {share: sum(split_for(f"message {n}", share) == "test" for n in range(2000)) / 2000
              for share in (0.1, 0.2, 0.5)}
    assert shares == pytest.approx({0.1: 0.1, 0.2: 0.2, 0.5: 0.5}, abs=0.03)
    assert {split_for(text, 0.2) for text in ("see you\n tomorrow", "see you tomorrow", "  see you\ttomorrow ")} \
        == {split_for("see you tomorrow", 0.2)}


@pytest.mark.parametrize("share", [0, 1, -0.5, 1.5, "0.2", None, True, float("nan")])
def test_a_test_share_outside_0_to_1_is_refused(share, tmp_path):
    with pytest.raises(InvalidInput, match="give a number between 0 and 1"):
        check_test_share(share)
    with pytest.raises(InvalidInput, match="The test share is"):
        FeedbackStore(tmp_path / "feedback.db", test_share=share)


def test_a_text_keeps_its_first_split_through_accepts_and_a_change_of_share(tmp_path):
    path = tmp_path / "feedback.db"
    with FeedbackStore(path) as store:
        first = {text: accepted(store, text)["id"] for text in TEXTS}
        pending = store.save_prediction(text="never accepted", label="casual", scores=SCORES, prompt="p", model="m")
        store.add_verdict(pending, verdict="right", reviewer="ana")
    assigned = splits(path)
    assert assigned == {text: split_for(text, 0.2) for text in TEXTS}, "accepted texts only, by their hash"
    assert 0 < list(assigned.values()).count("test") < len(TEXTS)
    with FeedbackStore(path, test_share=0.99) as store:  # nearly everything would go to test now
        for text in TEXTS:
            accepted(store, text, reviewer="bo")  # accepted again, by another reviewer
            store.curation.set_status(first[text], "discarded")
            store.curation.set_status(first[text], "accepted")
        store.curation.set_final_label(TEXTS[0], "needs caution", "cy")
        rows = {row["text"]: row["split"] for row in store.curation.verdicts(limit=1000)}
    assert splits(path) == assigned, "the first assignment wins"
    assert rows == {**assigned, "never accepted": None}, "the Review tab's rows show each text's split"


def test_a_final_label_accepts_and_splits_the_text(tmp_path):
    with FeedbackStore(tmp_path / "feedback.db", test_share=0.99) as store:
        prediction = store.save_prediction(text="settled", label="casual", scores=SCORES, prompt="p", model="m")
        store.add_verdict(prediction, verdict="wrong", label="needs caution", reviewer="ana")
        store.curation.set_final_label("settled", "casual", "cy")
    assert splits(tmp_path / "feedback.db") == {"settled": split_for("settled", 0.99)}


def test_exports_carry_the_split_and_keep_one(tmp_path, cli):
    path = tmp_path / "feedback.db"
    with FeedbackStore(path) as store:
        for text in TEXTS:
            accepted(store, text)
        records = oig(store, status="accepted")
        assert [record["split"] for record in records] == [split_for(text, 0.2) for text in TEXTS]
        assert [record["text"] for record in oig(store, split="test")] == [
            record["text"] for record in records if record["split"] == "test"]
    out = tmp_path / "train.jsonl"
    run = cli(feedback_main, "export", "--format", "full", "--split", "train", "--db", path, out)
    assert run.returncode == 0, run.stderr
    full = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(row["text"] for row in full) == sorted(text for text in TEXTS if split_for(text, 0.2) == "train")
    assert {row["split"] for row in full} == {"train"}
    refused = cli(feedback_main, "export", "--split", "validation", "--db", path, out)
    assert refused.returncode == 2 and "invalid choice: 'validation'" in refused.stderr


def replica(path, share, texts, *, keeps_splits=True):
    """A replica's database whose accepted ``texts`` went to test with the chance ``share``; without
    ``keeps_splits``, as written before splits were kept."""
    with FeedbackStore(path, test_share=share) as store:
        for text in texts:
            accepted(store, text, reviewer=path.stem)
    if not keeps_splits:
        with sqlite3.connect(path) as db:
            db.execute("drop table splits")
    return path


def test_a_merge_carries_the_splits_and_the_first_assignment_wins(tmp_path, cli):
    everything_tested = replica(tmp_path / "a.db", 0.999, TEXTS[:10])
    nothing_tested = replica(tmp_path / "b.db", 0.001, TEXTS[5:15])
    old = replica(tmp_path / "c.db", 0.2, TEXTS[30:35], keeps_splits=False)
    target = tmp_path / "all.db"
    replica(target, 0.2, TEXTS[0:2])
    run = cli(feedback_main, "merge", everything_tested, nothing_tested, old, "--into", target)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().endswith("18 splits"), run.stdout  # 8 of a, 5 of b, 5 given to c's
    merged = splits(target)
    assert {text: merged[text] for text in TEXTS[:2]} == {text: split_for(text, 0.2) for text in TEXTS[:2]}, \
        "the target's own stay"
    assert {merged[text] for text in TEXTS[2:10]} == {"test"}, "a's, including the texts b accepted too"
    assert {merged[text] for text in TEXTS[10:15]} == {"train"}
    assert {text: merged[text] for text in TEXTS[30:35]} == {text: split_for(text, 0.2) for text in TEXTS[30:35]}, \
        "a replica that kept no splits: its accepted texts get theirs"


def test_texts_accepted_before_splits_were_kept_get_theirs_on_upgrade(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite_utils.Database(path)
    migrations.apply(db, stop_before="create_splits")
    db["predictions"].insert_all({"id": n, "created": "2026-01-01", "text": text, "scores": "{}", "prompt": "p",
                                  "model": "m", "mode": "score"} for n, text in enumerate(TEXTS[:20], 1))
    db["verdicts"].insert_all({"prediction_id": n, "verdict": "right", "label": "casual", "reviewer": "ana",
                               "created": "2026-01-01", "status": "accepted" if n <= 15 else "pending",
                               "updated": "2026-01-01"} for n in range(1, 21))
    db.close()
    FeedbackStore(path).close()
    assert splits(path) == {text: split_for(text, 0.2) for text in TEXTS[:15]}
