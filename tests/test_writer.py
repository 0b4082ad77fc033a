"""The prediction writer: predictions recorded off the request path, a batch per transaction, all of them at close."""

import logging
import threading
import time

import sqlite_utils

from feedback.store import FeedbackStore
from feedback.writer import PredictionWriter
from moderation.labels import LABELS

SCORES = {label: 0.2 for label in LABELS}


def prediction(number: int, **extra) -> dict:
    return dict(text=f"text {number}", label="casual", scores=SCORES, prompt=f"Input: text {number}\nOutput:",
                model="demo", **extra)


def stored_texts(path) -> list[str]:
    db = sqlite_utils.Database(path)
    try:
        return [row["text"] for row in db.query("select text from predictions order by id")]
    finally:
        db.close()


def test_many_hand_overs_are_committed_in_few_transactions(tmp_path):
    store = FeedbackStore(tmp_path / "feedback.db")
    gate = threading.Lock()
    record = store.save_predictions

    def held(predictions):  # the first batch waits, so that the others queue up behind it
        with gate:
            return record(predictions)

    store.save_predictions = held
    writer = PredictionWriter(store)
    with gate:
        for number in range(200):
            writer.add([prediction(number)])
    writer.flush()
    assert stored_texts(tmp_path / "feedback.db") == [f"text {number}" for number in range(200)]
    assert writer.written == 200 and writer.batches < 20
    writer.close()
    store.close()


def test_close_commits_what_is_still_queued(tmp_path):
    store = FeedbackStore(tmp_path / "feedback.db")
    writer = PredictionWriter(store)
    for number in range(50):
        writer.add([prediction(number), prediction(number + 1000, role="bot")])
    writer.close()
    store.close()
    texts = stored_texts(tmp_path / "feedback.db")
    assert len(texts) == 100 and texts[:2] == ["text 0", "text 1000"]


def test_a_bad_batch_is_logged_and_the_writer_goes_on(tmp_path, caplog):
    store = FeedbackStore(tmp_path / "feedback.db")
    writer = PredictionWriter(store)
    with caplog.at_level(logging.ERROR, logger="feedback.writer"):
        writer.add([prediction(1, template="never-saved")])
        writer.flush()
    writer.add([prediction(2)])
    writer.close()
    store.close()
    assert stored_texts(tmp_path / "feedback.db") == ["text 2"]
    assert writer.lost == 1 and "Could not record 1 predictions" in caplog.text


def test_a_full_queue_makes_the_caller_wait(tmp_path):
    store = FeedbackStore(tmp_path / "feedback.db")
    gate = threading.Lock()
    record = store.save_predictions
    store.save_predictions = lambda predictions: (gate.acquire(), gate.release(), record(predictions))[-1]
    writer = PredictionWriter(store, max_queue=2, linger=0)
    gate.acquire()
    writer.add([prediction(0)])  # taken by the writer, which waits at the gate
    while writer.depth:
        time.sleep(0.001)
    writer.add([prediction(1)])
    writer.add([prediction(2)])
    third = threading.Thread(target=writer.add, args=([prediction(3)],))
    third.start()
    third.join(timeout=0.3)
    assert third.is_alive(), "a full queue must hold the caller back"
    gate.release()
    third.join(timeout=10)
    writer.close()
    store.close()
    assert stored_texts(tmp_path / "feedback.db") == ["text 0", "text 1", "text 2", "text 3"]


def test_predictions_handed_over_together_share_a_commit_and_flush_does_not_linger(tmp_path):
    store = FeedbackStore(tmp_path / "feedback.db")
    writer = PredictionWriter(store, linger=30)
    for number in range(5):
        writer.add([prediction(number)])
    start = time.monotonic()
    writer.flush()
    assert time.monotonic() - start < 10, "flush commits at once"
    assert writer.batches == 1 and len(stored_texts(tmp_path / "feedback.db")) == 5
    writer.close()
    store.close()


def test_a_batch_that_cannot_commit_is_counted_lost_and_the_writer_finds_out_when_writes_succeed_again(tmp_path):
    store = FeedbackStore(tmp_path / "feedback.db")
    writer = PredictionWriter(store, check_every=0.05)
    store.db.execute(f"PRAGMA max_page_count = {store.db.execute('PRAGMA page_count').fetchone()[0]}")
    writer.add([{**prediction(number), "prompt": "p" * 3000} for number in range(5)])
    writer.flush()
    assert writer.lost == 5 and store.failure == "database or disk is full"
    time.sleep(0.2)
    assert store.failure is not None, "the store's checks fail while it is full"
    store.db.execute("PRAGMA max_page_count = 1073741823")
    deadline = time.monotonic() + 10
    while store.failure is not None:
        assert time.monotonic() < deadline, "the writer never found out that writes succeed again"
        time.sleep(0.01)
    writer.add([prediction(6)])
    writer.close()
    store.close()
    assert stored_texts(tmp_path / "feedback.db") == ["text 6"] and writer.lost == 5
