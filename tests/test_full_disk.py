"""A full disk on a real server: SQLite itself answers "database or disk is full" (``PRAGMA max_page_count`` on the
store's connection), and no acknowledged prediction or verdict is lost silently.

A REST prediction is recorded after its answer: the batch that fails is counted on /metrics, /healthz says
degraded with the reason, and from then on every request that would record gets 503 until a write succeeds again.
A keyed request, a page prediction and a verdict are committed before they are acknowledged: each fails with a
message that says what to do. Once space is freed, /healthz is ok again with no other request to find it out."""

import time
import uuid

import httpx
import pytest
import sqlite_utils
from gradio_client.exceptions import AppError
from servers import PageClient, running_in_process, stored_texts
from test_metrics import scrape, value

from moderation.labels import LABELS

FULL = "database or disk is full"
REMEDY = "free disk space"
PADDING = "padding " * 60


def refused(answer: httpx.Response) -> bool:
    """Whether ``answer`` is the 503 of a database that cannot be written, saying what to do."""
    if answer.status_code != 503:
        return False
    message = answer.json()["error"]["message"]
    assert FULL in message and REMEDY in message and "Traceback" not in message
    return True


def fill_up(app) -> tuple[list[int], list[str]]:
    """Let the app's database grow by a few pages only, then post REST requests one at a time until five are
    refused; (the status of each answer, the texts answered 200)."""
    store = app.service.store
    store.db.execute(f"PRAGMA max_page_count = {store.db.execute('PRAGMA page_count').fetchone()[0] + 12}")
    statuses, acked = [], []
    with httpx.Client(base_url=app.url, timeout=30) as http:
        for number in range(200):
            text = f"full disk text {number} {PADDING}end"
            answer = http.post("v1/moderations", json={"input": text})
            statuses.append(answer.status_code)
            if answer.status_code == 200:
                acked.append(text)
            elif refused(answer) and statuses.count(503) == 5:
                break
            time.sleep(0.06)  # past the writer's linger: a batch of one request
    app.service.writer.flush()
    return statuses, acked


@pytest.fixture(scope="module")
def full_app(tmp_path_factory):
    """The app on the fake backend, its database filled up by REST requests: (app, statuses, texts answered 200)."""
    with running_in_process(tmp_path_factory.mktemp("full-disk")) as app:
        yield app, *fill_up(app)


def test_a_full_disk_loses_no_rest_prediction_silently(full_app):
    app, statuses, acked = full_app
    health = httpx.get(app.url + "healthz")
    lost = value(scrape(app.url), "moderation_predictions_lost_total")
    first_refusal = statuses.index(503)
    assert set(statuses[first_refusal:]) == {503}, "a request was answered 200 while the database failed"
    missing = [text for text in acked if text not in stored_texts(app.db_path)]
    assert missing, "the database never filled up"
    assert lost == len(missing), "every acknowledged prediction that is not on disk is counted as lost"
    assert health.status_code == 503 and health.json()["status"] == "degraded" and health.json()["reason"] == FULL


def test_keyed_requests_page_predictions_and_verdicts_fail_with_a_clear_message(full_app):
    app, _, _ = full_app
    assert app.service.store.failure == FULL
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    keyed = httpx.post(app.url + "v1/moderations", json={"input": f"keyed {PADDING}"}, headers=headers)
    assert refused(keyed)
    client = PageClient(app.url)
    shown = []
    with pytest.raises(AppError, match=REMEDY) as caught:
        for number in range(50):  # each one committed before it is shown, until one cannot be
            shown.append(client.predict(f"page text {number} {PADDING}end", "score", api_name="/moderate")[3])
    assert FULL in str(caught.value)
    db = sqlite_utils.Database(app.db_path)
    assert all(db["predictions"].count_where("id = ?", [int(number)]) for number in shown)
    prediction_id, label = db.execute("select id, label from predictions order by id limit 1").fetchone()
    saved, before = [], db["verdicts"].count
    with pytest.raises(AppError, match=REMEDY):
        for number in range(50):  # long notes fill the verdicts' pages
            other = next(name for name in LABELS if name != label)
            saved.append(client.predict(prediction_id, other, "n" * 2000, f"reviewer {number}", api_name="/flag"))
    assert all(message.startswith("Saved verdict #") for message in saved)
    assert db["verdicts"].count == before + len(saved), "every acknowledged verdict is on disk, no other"
    client.close()


def test_once_space_is_freed_the_server_is_healthy_and_records_again(tmp_path):
    with running_in_process(tmp_path) as app:
        fill_up(app)
        assert httpx.get(app.url + "healthz").status_code == 503
        lost = value(scrape(app.url), "moderation_predictions_lost_total")
        app.service.store.db.execute("PRAGMA max_page_count = 1073741823")
        deadline = time.monotonic() + 20
        while httpx.get(app.url + "healthz").status_code != 200:  # no other request: the writer checks the store
            assert time.monotonic() < deadline, "/healthz stayed degraded after space was freed"
            time.sleep(0.2)
        text = f"recorded again {uuid.uuid4()}"
        assert httpx.post(app.url + "v1/moderations", json={"input": text}).status_code == 200
        app.service.writer.flush()
        assert text in stored_texts(app.db_path)
        assert value(scrape(app.url), "moderation_predictions_lost_total") == lost
