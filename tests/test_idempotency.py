"""A retry with the same idempotency key returns the first result and writes nothing: /flag and /confirm on the
page's API, the REST moderation routes with an Idempotency-Key header."""

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import sqlite_utils
from gradio_client.exceptions import AppError
from servers import PageClient, running_in_process

from feedback.migrations import migrations
from feedback.rows import now as store_now
from feedback.store import FeedbackStore
from moderation.labels import LABELS

SCORES = {label: 0.2 for label in LABELS}


@pytest.fixture(scope="module")
def client(fake_app):
    return PageClient(fake_app.url)


def count(fake_app, table) -> int:
    fake_app.service.writer.flush()
    return sqlite_utils.Database(fake_app.db_path)[table].count


def key_row(app, headers) -> list[str]:
    """What the database keeps of an idempotency key, as strings."""
    row = sqlite_utils.Database(app.db_path)["idempotency_keys"].get(headers["Idempotency-Key"])
    return [str(value) for value in row.values()]


def body_texts(body: dict) -> list[str]:
    return [body["user"], body["bot"]] if "user" in body else body["input"]


def test_a_retried_flag_or_confirm_returns_the_first_verdict(client, fake_app):
    label, _, _, prediction_id = client.predict("Retry me, I was cut off", "score", api_name="/moderate")
    other = next(name for name in LABELS if name != label["label"])
    before = count(fake_app, "verdicts")
    key = str(uuid.uuid4())
    first = client.predict(prediction_id, other, "a note", "ana", key, api_name="/flag")
    again = client.predict(prediction_id, other, "a note", "ana", key, api_name="/flag")
    assert again == first and first.startswith("Saved verdict #")
    assert count(fake_app, "verdicts") == before + 1
    confirm_key = str(uuid.uuid4())
    confirmed = client.predict(prediction_id, "", "bo", confirm_key, api_name="/confirm")
    assert client.predict(prediction_id, "", "bo", confirm_key, api_name="/confirm") == confirmed
    assert count(fake_app, "verdicts") == before + 2
    with pytest.raises(AppError, match="was used for another request"):
        client.predict(prediction_id, other, "another note", "ana", key, api_name="/flag")
    assert client.predict(prediction_id, other, "", "dee", api_name="/flag") != first, "no key: a new verdict"
    assert count(fake_app, "verdicts") == before + 3


def test_concurrent_retries_write_one_verdict(fake_app):
    (shown,) = fake_app.service.moderate(["Twice at once"])
    key, results = str(uuid.uuid4()), []
    threads = [threading.Thread(target=lambda: results.append(
        fake_app.service.confirm(shown.id, reviewer="cy", idempotency_key=key)["id"])) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 8 and len(set(results)) == 1


@pytest.mark.parametrize("route, body", [
    ("v1/moderations", {"input": ["I will hurt you", "hello"]}),
    ("v1/moderations/chat", {"user": "hello", "bot": "you idiot"}),
])
def test_a_retried_rest_request_gets_the_first_answer_and_records_once(fake_app, route, body):
    before = count(fake_app, "predictions")
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    first = httpx.post(fake_app.url + route, json=body, headers=headers)
    assert first.status_code == 200
    assert count(fake_app, "predictions") == before + 2, "the first answer's predictions are on disk at once"
    again = httpx.post(fake_app.url + route, json=body, headers=headers)
    assert again.status_code == 200 and again.content == first.content, "rebuilt from its predictions, byte for byte"
    assert count(fake_app, "predictions") == before + 2
    assert not any(text in kept for text in body_texts(body) for kept in key_row(fake_app, headers)), "no text kept"
    changed = httpx.post(fake_app.url + route, json={**body, "model": "fake-moderation"}, headers=headers)
    assert changed.status_code == 409 and "used for another request" in changed.json()["error"]["message"]
    fresh = httpx.post(fake_app.url + route, json=body, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert fresh.json()["id"] != first.json()["id"] and count(fake_app, "predictions") == before + 4


def test_a_bad_key_is_refused(fake_app):
    answer = httpx.post(fake_app.url + "v1/moderations", json={"input": "hi"}, headers={"Idempotency-Key": "k" * 201})
    assert answer.status_code == 400 and "Bad idempotency key" in answer.json()["error"]["message"]


def test_without_recording_a_retry_is_labelled_again_while_the_same_model_and_settings_serve(tmp_path):
    body = {"user": "you idiot", "bot": "I will hurt you"}
    with running_in_process(tmp_path, record_api=False) as app:
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        first = httpx.post(app.url + "v1/moderations/chat", json=body, headers=headers)
        again = httpx.post(app.url + "v1/moderations/chat", json=body, headers=headers)
        assert first.status_code == again.status_code == 200 and again.content == first.content
        assert count(app, "predictions") == 0, "--no-record-api records nothing"
        kept = key_row(app, headers)
        assert not any(text in value for text in body.values() for value in kept), "no text kept"
        table = {"headers": ["text", "label"], "data": [["hello there", "casual"], ["you idiot", "needs caution"]]}
        PageClient(app.url).predict(table, "needs caution", api_name="/publish_prompt")
        changed = httpx.post(app.url + "v1/moderations/chat", json=body, headers=headers)
        assert changed.status_code == 400 and "changed since" in changed.json()["error"]["message"]


def test_concurrent_retries_of_a_rest_request_record_it_once(fake_app):
    before = count(fake_app, "predictions")
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: httpx.post(fake_app.url + "v1/moderations", json={"input": "at once"},
                                                     headers=headers, timeout=30), range(6)))
    assert {answer.status_code for answer in answers} == {200}
    assert len({answer.content for answer in answers}) == 1
    assert count(fake_app, "predictions") == before + 1


def test_a_key_expires(tmp_path):
    with FeedbackStore(tmp_path / "feedback.db", key_hours=0) as store:
        prediction = store.save_prediction(text="expiring", label="casual", scores=SCORES, prompt="p", model="m")
        first = store.add_verdict(prediction, verdict="right", reviewer="ana", idempotency_key="k")
        later = store.add_verdict(prediction, verdict="right", reviewer="bo", idempotency_key="k")
        assert later["id"] != first["id"], "past its lifetime a key is new: another request may use it"
        assert store.db["idempotency_keys"].count == 1


def test_a_key_whose_verdict_was_taken_back_says_so(fake_app):
    (shown,) = fake_app.service.moderate(["Taken back"])
    key = str(uuid.uuid4())
    verdict = fake_app.service.confirm(shown.id, reviewer="cy", idempotency_key=key)
    fake_app.service.take_back(verdict["id"], reviewer="cy")
    client = PageClient(fake_app.url)
    with pytest.raises(AppError, match=f"names verdict #{verdict['id']}, which was taken back"):
        client.predict(shown.id, "", "cy", key, api_name="/confirm")
    client.close()


def test_the_migration_keeps_verdict_keys_as_hashes_and_drops_rest_bodies(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite_utils.Database(path)
    migrations.apply(db, stop_before="idempotency_keys_hold_hashes_and_ids")
    db["predictions"].insert({"created": "2026-01-01", "text": "old text", "label": "casual", "scores": "{}",
                              "prompt": "p", "model": "m", "mode": "score"})
    db["verdicts"].insert({"prediction_id": 1, "verdict": "right", "label": "casual", "note": "", "reviewer": "ana",
                           "created": "2026-01-01", "status": "pending", "updated": "2026-01-01"})
    request = json.dumps(["verdict", 1, "right", None, "", "ana"])
    db["idempotency_keys"].insert_all([
        {"key": "verdict-key", "request": request, "response": "1", "created": store_now()},
        {"key": "rest-key", "request": '/v1/moderations {"input":"old text"}', "response": '{"id": "modr-1"}',
         "created": store_now()}])
    db.close()
    with FeedbackStore(path) as store:
        assert [row["key"] for row in store.db["idempotency_keys"].rows] == ["verdict-key"]
        assert "request" not in store.db["idempotency_keys"].columns_dict
        assert store.add_verdict(1, verdict="right", reviewer="ana", idempotency_key="verdict-key")["id"] == 1
