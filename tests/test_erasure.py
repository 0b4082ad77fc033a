"""Texts are personal data: ``--keep-days`` deletes the predictions no reviewer judged once they are older (at start
and daily, with the expired idempotency keys), and ``python -m feedback forget`` erases a text everywhere, to the
last byte of the database file and its write-ahead log."""

import datetime
import time
from pathlib import Path

import httpx
import sqlite_utils
from servers import running_in_process

from feedback.__main__ import main as feedback_main
from feedback.retention import DailySweep
from feedback.store import FeedbackStore
from moderation.labels import LABELS
from moderation.templates import PromptTemplate

SCORES = {label: 0.2 for label in LABELS}
SECRET = "Call Zyxwvut Quibbleton at 555-0199 tonight"
WORD = b"zyxwvut"
"""A word of the secret as the full-text index keeps it (folded to lower case)."""


def record(store, text, role=None) -> int:
    return store.save_prediction(text=text, label="casual", scores=SCORES, prompt=f"Input: {text}\nOutput:",
                                   model="demo", template="card", role=role)


def days_ago(days: float) -> str:
    return (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=days)).isoformat()


def file_bytes(path: Path) -> bytes:
    """The database file and its write-ahead log, as they are on disk."""
    wal = Path(f"{path}-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def evaluation_run(texts) -> dict:
    return {"model": "demo", "version": None, "template": "card", "threshold": "needs caution", "mode": "score",
            "gold_name": "gold.jsonl", "gold_hash": "h", "gold_size": len(texts), "trained_left_out": 0,
            "trained_included": 0, "metrics": {"accuracy": 1.0},
            "items": [{"text": text, "gold": "casual", "label": "casual", "scores": SCORES, "generated": None}
                      for text in texts]}


def test_forget_erases_a_text_to_the_last_byte_while_the_app_has_the_database_open(tmp_path, cli):
    path = tmp_path / "feedback.db"
    with FeedbackStore(path) as app:  # the app's connection, open: what it wrote is still in the write-ahead log
        app.save_template("card", PromptTemplate().to_json())
        secret_ids = [record(app, SECRET), record(app, SECRET, role="user")]
        kept = record(app, "Keep this one about the weather")
        app.add_verdict(secret_ids[0], verdict="wrong", label="needs caution", reviewer="ana", idempotency_key="v")
        app.add_verdict(secret_ids[1], verdict="right", reviewer="bo")
        app.add_verdict(kept, verdict="right", reviewer="ana")
        app.curation.set_final_label(SECRET, "needs caution", "cy")
        app.save_once("k", "/v1/moderations ...", "modr-1", [dict(text=SECRET, label="casual", scores=SCORES,
                                                                    prompt="p", model="demo")], {"threshold": "x"})
        app.evaluations.save(evaluation_run([SECRET, "Keep this one about the weather"]))
        app.shadows.save([{"text": SECRET, "template": "card", "serving_model": "demo", "serving_label": "casual",
                           "model": "demo-lora", "label": "needs caution", "scores": SCORES}])
        wal = Path(f"{path}-wal").read_bytes()
        assert SECRET.encode() in wal and WORD in wal, "the text is there to be erased"
        run = cli(feedback_main, "forget", "--text", SECRET, "--db", path)
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == (f"Erased from {path}: 3 predictions, 2 verdicts, 1 final labels, 1 splits, 1 "
                                      "shadow predictions, 1 evaluation items and 2 idempotency keys.")
        assert SECRET not in run.stdout + run.stderr, "the text is not printed"
        erased = file_bytes(path)  # while the app still has it open
        assert SECRET.encode() not in erased and WORD not in erased, "a byte of the text stayed in the file"
    with FeedbackStore(path) as store:
        assert [row["text"] for row in store.curation.verdicts(search="weather")] == ["Keep this one about the weather"]
        assert store.curation.verdicts(search="Zyxwvut") == [] and store.db["final_labels"].count == 0
        assert store.db["splits"].count == 0, "the final label accepted the text: its split goes with it"
        assert store.db["shadow_predictions"].count == 0
        assert [item["text"] for item in store.evaluations.get(1)["items"]] == ["Keep this one about the weather"]
        assert store.connection.verdicts_by_status() == {"pending": 1, "accepted": 0, "discarded": 0}


def test_forget_a_pattern_erases_every_text_that_contains_it_case_aside(tmp_path, cli):
    path = tmp_path / "feedback.db"
    with FeedbackStore(path) as store:
        store.save_template("card", PromptTemplate().to_json())
        for text in ("Mail ANA.B@example.org now", "ana.b@example.org wrote this", "Nobody's address here"):
            record(store, text)
    run = cli(feedback_main, "forget", "--match", "Ana.B@Example.org", "--db", path)
    assert run.returncode == 0 and "2 predictions" in run.stdout
    assert [row["text"] for row in sqlite_utils.Database(path)["predictions"].rows] == ["Nobody's address here"]


def test_forget_names_the_prompt_templates_that_hold_the_text(tmp_path, cli):
    path = tmp_path / "feedback.db"
    with FeedbackStore(path) as store:
        store.save_template("examples", '[{"text": "an example Zyxwvut", "label": "casual"}]')
    run = cli(feedback_main, "forget", "--match", "zyxwvut", "--db", path)
    assert run.returncode == 0 and "1 prompt templates hold it among their examples: they are kept" in run.stderr


def test_the_sweep_keeps_judged_and_recent_predictions_and_drops_expired_keys(tmp_path):
    with FeedbackStore(tmp_path / "feedback.db") as store:
        store.save_template("card", PromptTemplate().to_json())
        old, judged, recent = (record(store, text) for text in ("old unjudged", "old judged", "recent unjudged"))
        store.add_verdict(judged, verdict="right", reviewer="ana")
        store.save_once("old key", "request", "modr-1", None, {})
        store.save_once("new key", "request", "modr-2", None, {})
        store.db.execute("update predictions set created = ? where id in (?, ?)", [days_ago(3), old, judged])
        store.db.execute("update idempotency_keys set created = ? where key = 'old key'", [days_ago(1.1)])
        store.shadows.save([{"text": text, "template": "card", "serving_model": "m", "serving_label": "casual",
                             "model": "shadow", "label": "casual", "scores": SCORES} for text in ("old unjudged",
                                                                                                 "old judged")])
        store.db.execute("update shadow_predictions set created = ?", [days_ago(3)])
        assert store.erasure.sweep(None) == {"predictions": 0, "shadow_predictions": 0, "idempotency_keys": 1}, \
            "by default every prediction"
        assert store.erasure.sweep(2) == {"predictions": 1, "shadow_predictions": 1, "idempotency_keys": 0}
        assert [row["text"] for row in store.db["shadow_predictions"].rows] == ["old judged"]
        assert [row["id"] for row in store.db["predictions"].rows] == [judged, recent]
        assert [row["key"] for row in store.db["idempotency_keys"].rows] == ["new key"]
        assert store.curation.verdicts(search="unjudged") == [] and store.db.execute(
            "select count(*) from predictions_fts where predictions_fts match 'old'").fetchone()[0] == 1


def test_the_sweep_comes_back_every_day(tmp_path):
    with FeedbackStore(tmp_path / "feedback.db") as store:
        store.save_template("card", PromptTemplate().to_json())
        sweep = DailySweep(store, 1, every=0.05)
        try:
            first = record(store, "aged while the app ran")
            # another connection to the file, as the sweep's thread uses the store's own meanwhile
            other = sqlite_utils.Database(tmp_path / "feedback.db")
            with other.conn:
                other.execute("update predictions set created = ? where id = ?", [days_ago(2), first])
            deadline = time.monotonic() + 10
            while other["predictions"].count:
                assert time.monotonic() < deadline, "a later sweep did not delete the aged prediction"
                time.sleep(0.02)
            other.close()
        finally:
            sweep.close()
        assert sweep.sweeps >= 2


def test_the_app_deletes_old_unjudged_predictions_at_start(tmp_path):
    with FeedbackStore(tmp_path / "feedback.db") as store:
        store.save_template("card", PromptTemplate().to_json())
        record(store, "a month old")
        judged = record(store, "a month old, judged")
        store.add_verdict(judged, verdict="right", reviewer="ana")
        store.db.execute("update predictions set created = ?", [days_ago(30)])
    with running_in_process(tmp_path, keep_days=7) as app:
        deadline = time.monotonic() + 10
        while app.service.sweep.sweeps == 0:
            assert time.monotonic() < deadline, "no sweep at start"
            time.sleep(0.02)
        assert httpx.post(app.url + "v1/moderations", json={"input": "new today"}).status_code == 200
        app.service.writer.flush()
        texts = [row["text"] for row in sqlite_utils.Database(app.db_path)["predictions"].rows]
    assert texts == ["a month old, judged", "new today"]
