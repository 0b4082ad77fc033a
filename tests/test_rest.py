"""The OpenAI-compatible REST API, through the real openai client and plain HTTP, on the running app."""

import json
import math
import threading
import urllib.request

import openai
import pytest
import sqlite_utils
from conftest import running_app

from moderation.labels import LABELS


def post(url, body, *, raw=False):
    data = body.encode() if raw else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def client(app_server):
    url, _ = app_server
    return openai.OpenAI(base_url=url + "v1", api_key="not-needed", max_retries=0)


def check_result(result):
    scores = result.category_scores.to_dict()
    categories = result.categories.to_dict()
    assert set(scores) == set(LABELS) and set(categories) >= set(LABELS)
    assert math.isclose(sum(scores.values()), 1, abs_tol=1e-6)
    label = max(scores, key=scores.get)
    assert result.model_extra["label"] == label
    assert [name for name in LABELS if categories[name]] == [label]
    assert result.flagged == (label != "casual")


def test_single_input(client, app_server):
    _, db_path = app_server
    before = sqlite_utils.Database(db_path)["predictions"].count
    response = client.moderations.create(input="I am going to hurt the people at my old school")
    assert response.id.startswith("modr-")
    assert response.model == "playground-demo-gptj"
    (result,) = response.results
    check_result(result)
    assert sqlite_utils.Database(db_path)["predictions"].count == before + 1


def test_list_input_keeps_the_order(client):
    texts = ["Lovely weather for a picnic", "You are a pathetic loser", "What time does the shop open?"]
    response = client.moderations.create(input=texts)
    assert len(response.results) == 3
    for result in response.results:
        check_result(result)
    alone = [client.moderations.create(input=text).results[0].category_scores.to_dict() for text in texts]
    for result, single in zip(response.results, alone):
        assert result.category_scores.to_dict() == pytest.approx(single, abs=1e-5)


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"input": ""}, 400, "empty"),
        ({"input": ["fine", "  "]}, 400, "input[1]"),
        ({"input": []}, 400, "at least one text"),
        ({"input": 5}, 400, "input"),
        ({"input": ["a", None]}, 400, "input[1]"),
        ({"input": {"text": "hi"}}, 400, "input"),
        ({"text": "hi"}, 400, "input: Field required"),
        ({"input": "x" * 20_001}, 400, "limit is 20000"),
        ({"input": ["hi"] * 65}, 400, "at most 64"),
        ({"input": "hi", "model": "gpt-4"}, 404, "not served here"),
        ({"input": "hi", "model": 7}, 400, "model"),
    ],
)
def test_bad_requests_get_a_4xx_json_error(app_server, body, status, message):
    url, _ = app_server
    code, answer = post(url + "v1/moderations", body)
    assert code == status
    assert message in answer["error"]["message"]


def test_malformed_json_is_a_400(app_server):
    url, _ = app_server
    code, answer = post(url + "v1/moderations", "{not json", raw=True)
    assert code == 400 and "Invalid request" in answer["error"]["message"]


def test_the_openai_client_sees_errors_as_errors(client):
    with pytest.raises(openai.BadRequestError, match="empty"):
        client.moderations.create(input="   ")


def test_chat_turn(app_server):
    url, db_path = app_server
    code, turn = post(url + "v1/moderations/chat", {"user": "Any tips for a first marathon?", "bot": "Start slowly."})
    assert code == 200
    assert set(turn) == {"id", "model", "user", "bot", "reply", "intervened", "triggered_by"}
    triggered = [role for role in ("user", "bot") if turn[role]["intervene"]]
    assert turn["triggered_by"] == triggered
    assert turn["intervened"] == bool(triggered)
    assert (turn["reply"] == "Start slowly.") == (not triggered)
    roles = [row["role"] for row in sqlite_utils.Database(db_path).query("select role from predictions order by id desc limit 2")]
    assert roles == ["bot", "user"]
    code, answer = post(url + "v1/moderations/chat", {"user": "hi"})
    assert code == 400 and "bot" in answer["error"]["message"]


def test_models_health_and_schema(app_server):
    url, _ = app_server
    with urllib.request.urlopen(url + "v1/models") as response:
        assert json.loads(response.read())["data"][0]["id"] == "playground-demo-gptj"
    with urllib.request.urlopen(url + "healthz") as response:
        assert json.loads(response.read())["status"] == "ok"
    with urllib.request.urlopen(url + "openapi.json") as response:
        paths = json.loads(response.read())["paths"]
    assert {"/v1/moderations", "/v1/moderations/chat", "/v1/models", "/healthz"} <= set(paths)
    assert "requestBody" in paths["/v1/moderations"]["post"]


def test_past_the_waiting_limit_requests_are_told_to_retry(demo_model_dir, tmp_path):
    with running_app("demo", tmp_path / "busy.db", "--max-waiting", "2", "--max-wait-ms", "200") as url:
        answers = []

        def call(i):
            answers.append(post(url + "v1/moderations", {"input": [f"message {i} " * 40] * 16}))

        threads = [threading.Thread(target=call, args=(i,)) for i in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    codes = sorted(code for code, _ in answers)
    assert len(codes) == 12 and set(codes) == {200, 503}
    busy = [answer for code, answer in answers if code == 503]
    assert all("retry" in answer["error"]["message"] for answer in busy)
