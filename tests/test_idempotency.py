"""A retry with the same idempotency key returns the first result and writes nothing: /flag and /confirm on the
page's API, the REST moderation routes with an Idempotency-Key header."""

import threading
import uuid

import httpx
import pytest
import sqlite_utils
from gradio_client.exceptions import AppError
from servers import PageClient

from moderation.labels import LABELS


@pytest.fixture(scope="module")
def client(fake_app):
    return PageClient(fake_app.url)


def count(fake_app, table) -> int:
    fake_app.service.writer.flush()
    return sqlite_utils.Database(fake_app.db_path)[table].count


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
    assert again.status_code == 200 and again.json() == first.json()
    assert count(fake_app, "predictions") == before + 2
    changed = httpx.post(fake_app.url + route, json={**body, "model": "fake-moderation"}, headers=headers)
    assert changed.status_code == 409 and "used for another request" in changed.json()["error"]["message"]
    fresh = httpx.post(fake_app.url + route, json=body, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert fresh.json()["id"] != first.json()["id"] and count(fake_app, "predictions") == before + 4


def test_a_bad_key_is_refused(fake_app):
    answer = httpx.post(fake_app.url + "v1/moderations", json={"input": "hi"}, headers={"Idempotency-Key": "k" * 201})
    assert answer.status_code == 400 and "Bad idempotency key" in answer.json()["error"]["message"]
