"""The OpenAI-compatible REST API in this process (FastAPI's TestClient, and the real openai client over it),
on the fake backend: shapes, recording, errors in OpenAI's shape, and bugs kept apart from bad input."""

import asyncio
import logging
import math
import threading

import openai
import pytest
from fakes import expected_scores
from fastapi.testclient import TestClient
from servers import make_service

from moderation.labels import LABELS
from playground.server import create_app


@pytest.fixture(scope="module")
def api_service(tmp_path_factory):
    service = make_service(tmp_path_factory.mktemp("api"))
    yield service
    service.store.close()


@pytest.fixture(scope="module")
def api(api_service):
    return TestClient(create_app(api_service))


def predictions(service) -> list[dict]:
    """The recorded predictions, once the writer has committed what the API handed it."""
    service.writer.flush()
    return list(service.store.db["predictions"].rows)


@pytest.fixture
def client(api):
    return openai.OpenAI(base_url="http://testserver/v1", api_key="not-needed", max_retries=0, http_client=api)


def check_result(result, text):
    scores = result.category_scores.to_dict()
    assert scores == pytest.approx(expected_scores(text))
    assert math.isclose(sum(scores.values()), 1, abs_tol=1e-6)
    label = max(scores, key=scores.get)
    assert result.model_extra["label"] == label
    assert [name for name in LABELS if result.categories.to_dict()[name]] == [label]
    assert result.flagged == (label != "casual")


def test_single_input_is_labelled_and_recorded(client, api_service):
    before = len(predictions(api_service))
    response = client.moderations.create(input="I am going to hurt the people at my old school")
    assert response.id.startswith("modr-") and response.model == "fake-moderation"
    (result,) = response.results
    check_result(result, "hurt")
    assert result.model_extra["intervene"] is True
    (row,) = predictions(api_service)[before:]
    assert row["text"] == "I am going to hurt the people at my old school" and row["label"] == "needs intervention"


def test_list_input_keeps_the_order(client):
    texts = ["Lovely weather for a picnic", "You are a pathetic idiot", "I hate queues"]
    response = client.moderations.create(input=texts)
    for result, text in zip(response.results, texts, strict=True):
        check_result(result, text)


def test_no_record_api_keeps_nothing(service):
    api = TestClient(create_app(service, record_api=False))
    assert api.post("/v1/moderations", json={"input": ["a", "b"]}).status_code == 200
    assert api.post("/v1/moderations/chat", json={"user": "a", "bot": "b"}).status_code == 200
    assert len(predictions(service)) == 0


@pytest.mark.parametrize(
    "body, status, message, param",
    [
        ({"input": ""}, 400, "input: The text is empty", "input"),
        ({"input": ["fine", "  "]}, 400, "input[1]: The text is empty", "input[1]"),
        ({"input": []}, 400, "at least one text", "input"),
        ({"input": 5}, 400, "Invalid request: input", "input"),
        ({"input": ["a", None]}, 400, "input[1]", "input[1]"),
        ({"text": "hi"}, 400, "input: Field required", "input"),
        ({"input": "x" * 20_001}, 400, "limit is 20000", "input"),
        ({"input": ["hi"] * 65}, 400, "at most 64", "input"),
        ({"input": "hi", "model": "gpt-4"}, 404, "not served here", "model"),
        ({"input": "hi", "model": 7}, 400, "model", "model"),
    ],
)
def test_bad_requests_get_a_4xx_in_openais_shape_and_record_nothing(api, api_service, body, status, message, param):
    before = len(predictions(api_service))
    answer = api.post("/v1/moderations", json=body)
    assert answer.status_code == status
    error = answer.json()["error"]
    assert message in error["message"] and error["param"] == param and error["type"] == "invalid_request_error"
    assert len(predictions(api_service)) == before


def test_malformed_json_and_unknown_routes(api):
    answer = api.post("/v1/moderations", content=b"{not json", headers={"Content-Type": "application/json"})
    assert answer.status_code == 400 and "Invalid request" in answer.json()["error"]["message"]
    answer = api.get("/v1/nothing-here")
    assert answer.status_code == 404 and "/docs" in answer.json()["error"]["message"]


def test_the_openai_client_sees_errors_as_errors(client):
    with pytest.raises(openai.BadRequestError, match="empty"):
        client.moderations.create(input="   ")


def test_chat_turn(api, api_service):
    before = len(predictions(api_service))
    answer = api.post("/v1/moderations/chat", json={"user": "Any tips for a marathon?", "bot": "You idiot."})
    assert answer.status_code == 200
    turn = answer.json()
    assert set(turn) == {"id", "model", "user", "bot", "reply", "intervened", "triggered_by"}
    assert (turn["user"]["label"], turn["bot"]["label"]) == ("casual", "probably needs caution")
    assert (turn["intervened"], turn["triggered_by"], turn["reply"]) == (False, [], "You idiot.")
    assert [row["role"] for row in predictions(api_service)[before:]] == ["user", "bot"]
    hurt = api.post("/v1/moderations/chat", json={"user": "fine", "bot": "I will hurt you"}).json()
    assert (hurt["intervened"], hurt["triggered_by"]) == (True, ["bot"])
    assert hurt["reply"] == api_service.settings.intervention
    missing = api.post("/v1/moderations/chat", json={"user": "hi"})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "bot"
    blank = api.post("/v1/moderations/chat", json={"user": "hi", "bot": "\n"})
    assert blank.status_code == 400 and blank.json()["error"]["message"].startswith("bot: The text is empty")


def test_models_health_and_schema(api):
    assert api.get("/v1/models").json()["data"][0]["id"] == "fake-moderation"
    assert api.get("/healthz").json() == {"status": "ok", "model": "fake-moderation"}
    paths = api.get("/openapi.json").json()["paths"]
    assert {"/v1/moderations", "/v1/moderations/chat", "/v1/models", "/healthz", "/v1/feedback/export"} <= set(paths)


def test_a_bug_is_a_500_with_a_generic_message_and_a_logged_traceback(tmp_path, caplog):
    from fakes import fake_moderator

    service = make_service(tmp_path, fake_moderator(bug=ValueError("tensor shapes do not match")))
    api = TestClient(create_app(service), raise_server_exceptions=False)
    with caplog.at_level(logging.ERROR, logger="playground.api"):
        answer = api.post("/v1/moderations", json={"input": "hello"})
    assert answer.status_code == 500
    error = answer.json()["error"]
    assert error["type"] == "server_error" and "tensor shapes" not in error["message"]
    assert "log has the details" in error["message"]
    (record,) = [r for r in caplog.records if r.name == "playground.api"]
    assert "tensor shapes do not match" in str(record.exc_info[1]) and record.exc_text
    assert len(predictions(service)) == 0
    service.store.close()


def test_past_the_waiting_limit_requests_are_told_to_retry(tmp_path):
    from playground.service import Limits

    service = make_service(tmp_path, limits=Limits(max_waiting=2))
    label, entered, release = service.label_soon, threading.Semaphore(0), threading.Event()

    async def held(*args, **kwargs):
        entered.release()
        await asyncio.to_thread(release.wait, 30)
        return await label(*args, **kwargs)

    service.label_soon = held
    api = TestClient(create_app(service))
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(api.post("/v1/moderations", json={"input": "hi"})))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for _ in threads:
        assert entered.acquire(timeout=30)
    busy = api.post("/v1/moderations", json={"input": "one too many"})
    release.set()
    for thread in threads:
        thread.join()
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
    assert "retry" in busy.json()["error"]["message"]
    assert [answer.status_code for answer in answers] == [200, 200]
    service.store.close()
