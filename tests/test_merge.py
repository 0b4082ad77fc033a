"""``python -m feedback merge A.db B.db --into C.db``: the replicas' feedback in one database, sources untouched."""

import hashlib

import sqlite_utils

from feedback.__main__ import main as feedback_main
from feedback.store import FeedbackStore
from moderation.labels import LABELS
from moderation.templates import PromptTemplate

SCORES = {label: 0.2 for label in LABELS}


def replica(path, texts, reviewer):
    """A replica's database: the same template, its own predictions, a verdict on each, one with a key."""
    with FeedbackStore(path) as store:
        store.save_template("card", PromptTemplate().to_json())
        for number, text in enumerate(texts):
            prediction = store.save_prediction(text=text, label="casual", scores=SCORES, prompt=f"Input: {text}",
                                                 model="demo", template="card", role="user" if number else None)
            key = f"{reviewer}-key" if number == 0 else None
            store.add_verdict(prediction, verdict="wrong", label="needs caution", note=text, reviewer=reviewer,
                              idempotency_key=key)
    return path


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_merge_keeps_every_verdict_with_its_prediction(tmp_path, cli):
    a = replica(tmp_path / "a.db", ["first on a", "second on a"], "ana")
    b = replica(tmp_path / "b.db", ["first on b", "second on b", "third on b"], "bo")
    before = {path: digest(path) for path in (a, b)}
    merged = cli(feedback_main, "merge", a, b, "--into", tmp_path / "all.db")
    assert merged.returncode == 0, merged.stderr
    assert "Merged 2 databases" in merged.stdout and "5 predictions, 5 verdicts, 2 idempotency keys" in merged.stdout
    assert {path: digest(path) for path in (a, b)} == before, "the sources are only read"
    with FeedbackStore(tmp_path / "all.db") as store:
        rows = store.curation.verdicts()
        assert sorted((row["text"], row["note"], row["reviewer"]) for row in rows) == sorted(
            [(text, text, "ana") for text in ["first on a", "second on a"]]
            + [(text, text, "bo") for text in ["first on b", "second on b", "third on b"]])
        assert [row["text"] for row in store.curation.verdicts(search="third")] == ["third on b"]
        assert store.db["templates"].count == 1
        first_on_b = next(row for row in rows if row["text"] == "first on b")
        again = store.add_verdict(1, verdict="wrong", label="needs caution", note="first on b", reviewer="bo",
                                  idempotency_key="bo-key")  # the retry names the prediction as replica b did
        assert again["id"] == first_on_b["id"], "a key still names its verdict after the merge"
    roles = [row["role"] for row in sqlite_utils.Database(tmp_path / "all.db")["predictions"].rows]
    assert roles.count("user") == 3


def test_merge_refuses_a_target_that_is_a_source_and_missing_files(tmp_path, cli):
    a = replica(tmp_path / "a.db", ["only"], "ana")
    same = cli(feedback_main, "merge", a, "--into", a)
    assert same.returncode == 2 and "both a source and the target" in same.stderr
    missing = cli(feedback_main, "merge", a, tmp_path / "nope.db", "--into", tmp_path / "c.db")
    assert missing.returncode == 2 and "No feedback database at" in missing.stderr and "Traceback" not in missing.stderr
