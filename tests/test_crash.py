"""Crash safety: SIGKILL the server in the middle of a stream of flags and API requests.

Three gradio_client threads flag predictions through ``/flag`` on a real ``python app.py`` while a fourth
posts texts to ``/v1/moderations``; once 30 verdicts are acknowledged the server is killed with SIGKILL.
The database must then pass ``PRAGMA integrity_check`` and hold:

- every acknowledged verdict with the fields it was acknowledged with (a verdict is on disk before it is
  acknowledged), read directly with sqlite3 and through the app started again on the same file;
- every acknowledged API prediction except, at most, those acknowledged in the last moments before the kill
  (API predictions are committed by a writer thread, a batch at a time, just after their answers).

The start on the same database removes the killed server's scratch folder (its uploads and downloads). A clean
stop (SIGTERM) of ``python app.py`` is tested in ``test_app.py``.
"""

import json
import os
import re
import signal
import sqlite3
import threading
import time
import urllib.request

import pytest
from gradio.utils import get_upload_folder
from servers import ApiStream, PageClient, running_in_process, stored_texts

from bench.app_process import running_app
from moderation.labels import LABELS
from playground.scratch import runs_folder

THREADS = 3
LAST_MOMENTS_S = 1.0
"""API predictions acknowledged this close to the kill may be lost with the writer's last batch."""
ACKED_BEFORE_KILL = 30
MAX_FLAGS_PER_THREAD = 300
DEADLINE_S = 60
SAVED = re.compile(r"Saved verdict #(\d+) on prediction #(\d+): wrong, (.+)\.")
TEXTS = [
    "You idiot, nobody asked you",
    "Can you recommend a good pasta recipe?",
    "I keep failing my exams and feel useless",
    "I am going to hurt the people at my old school",
    "What time does the shop open?",
    "Get lost, nobody wants you here",
]


class FlagStream:
    """Client threads flagging predictions until the server dies; keeps what each acknowledged reply said."""

    def __init__(self, url, predictions):
        self.url = url
        self.predictions = predictions  # [(prediction id, model label)]
        self.killed = threading.Event()
        self.lock = threading.Lock()
        self.acked = {}  # verdict id -> (prediction id, label, reviewer, note)
        self.failed = []  # what the calls cut by the kill raised
        self.bad_replies = []  # replies that do not acknowledge the verdict sent

    def run(self, number):
        """One client: flag the predictions in turn with a label other than the model's, each flag under a
        reviewer name of its own (a reviewer's second verdict on a prediction would replace the first)."""
        client = PageClient(self.url)
        try:
            for count in range(MAX_FLAGS_PER_THREAD):
                if self.killed.is_set():
                    return
                reviewer = f"crash-{number}-{count}"
                prediction_id, model_label = self.predictions[(number + count) % len(self.predictions)]
                others = [label for label in LABELS if label != model_label]
                label, note = others[count % len(others)], f"{reviewer} flag {count}"
                try:
                    reply = client.predict(prediction_id, label, note, reviewer, api_name="/flag")
                except Exception as error:  # noqa: BLE001 - the kill cuts calls in many ways
                    with self.lock:
                        self.failed.append(f"{type(error).__name__}: {error}")
                    return
                saved = SAVED.fullmatch(reply)
                with self.lock:
                    if not saved or (int(saved[2]), saved[3]) != (prediction_id, label):
                        self.bad_replies.append(reply)
                        return
                    self.acked[int(saved[1])] = (prediction_id, label, reviewer, note)
        finally:
            client.close()

    def count(self):
        """How many verdicts have been acknowledged so far."""
        with self.lock:
            return len(self.acked)


def moderate_texts(url):
    """Moderate the texts once; returns [(prediction id, model label)]."""
    client = PageClient(url)
    try:
        predictions = []
        for text in TEXTS:
            label, _, _, prediction_id = client.predict(text, "score", api_name="/moderate")
            predictions.append((int(prediction_id), label["label"]))
        return predictions
    finally:
        client.close()


def stored_verdicts(db_path):
    """(integrity_check result, {verdict id: (prediction id, label, reviewer, note)}) read with sqlite3."""
    connection = sqlite3.connect(db_path)
    try:
        integrity = connection.execute("PRAGMA integrity_check").fetchone()[0]
        rows = connection.execute("select id, prediction_id, label, reviewer, note from verdicts").fetchall()
    finally:
        connection.close()
    return integrity, {row[0]: tuple(row[1:]) for row in rows}


def exported_verdicts(url):
    """{verdict id: (prediction id, label, reviewer, note)} from the server's full jsonl export."""
    with urllib.request.urlopen(url + "v1/feedback/export?format=full", timeout=30) as response:
        rows = [json.loads(line) for line in response.read().decode().splitlines() if line]
    return {row["id"]: (row["prediction_id"], row["label"], row["reviewer"], row["note"]) for row in rows}


@pytest.mark.slow
def test_sigkill_mid_stream_loses_no_acknowledged_verdict(demo_moderator, tmp_path):
    db_path = tmp_path / "feedback.db"
    with running_app("demo", db_path, log=tmp_path / "first-run.log") as (url, server):
        stream, api = FlagStream(url, moderate_texts(url)), ApiStream(url, "killed")
        threads = [threading.Thread(target=stream.run, args=(number,), daemon=True) for number in range(THREADS)]
        threads.append(threading.Thread(target=api.run, daemon=True))
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + DEADLINE_S
        while stream.count() < ACKED_BEFORE_KILL and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(server.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        stream.killed.set()
        api.stop.set()
        server.wait(timeout=10)
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive(), "a call hung after the server was killed"

    assert not stream.bad_replies
    acked = dict(stream.acked)
    assert len(acked) >= ACKED_BEFORE_KILL, f"only {len(acked)} flags acknowledged; failures: {stream.failed[:3]}"
    assert stream.failed, "the kill cut no flag in flight"
    print(f"\n{len(acked)} verdicts acknowledged, {len(stream.failed)} calls cut by SIGKILL: {stream.failed[:3]}")

    integrity, stored = stored_verdicts(db_path)
    assert integrity == "ok"
    assert {verdict_id: stored.get(verdict_id) for verdict_id in acked} == acked
    lost = {text: at for text, at in api.acked.items() if text not in stored_texts(db_path)}
    print(f"{len(api.acked)} API predictions acknowledged, {len(lost)} lost with the writer's last batch")
    assert len(api.acked) >= 10
    assert all(killed_at - at < LAST_MOMENTS_S for at in lost.values()), "an API prediction before the last batch lost"

    killed_runs = list(runs_folder(get_upload_folder(), db_path).glob("run-*"))
    assert len(killed_runs) == 1, "the killed server's scratch folder (uploads, downloads)"
    with running_in_process(tmp_path, demo_moderator) as restarted:  # the same database file
        assert not killed_runs[0].exists(), "the start on the same database did not remove it"
        exported = exported_verdicts(restarted.url)
        assert {verdict_id: exported.get(verdict_id) for verdict_id in acked} == acked
        prediction_id, model_label = stream.predictions[0]
        label = next(other for other in LABELS if other != model_label)
        client = PageClient(restarted.url)
        try:
            reply = client.predict(prediction_id, label, "after restart", "crash-check", api_name="/flag")
        finally:
            client.close()
        assert int(SAVED.fullmatch(reply).group(1)) > max(acked)
    assert stored_verdicts(db_path)[0] == "ok"
