"""API keys: made by ``python -m feedback api-keys add``, stored as hashes, required on /v1/moderations* by
--api-keys."""

import openai
import pytest
from fastapi.testclient import TestClient
from servers import make_service

from feedback.__main__ import main as feedback_main
from feedback.api_keys import ApiKeys
from playground.server import create_app


@pytest.fixture
def keys_file(tmp_path, cli):
    """A keys file with a key for "chatbot"; yields (path, key) as the command line printed it."""
    path = tmp_path / "api-keys.txt"
    made = cli(feedback_main, "api-keys", "add", "chatbot", "--file", path)
    assert made.returncode == 0, made.stderr
    return path, made.stdout.splitlines()[-1]


def test_the_command_prints_the_key_once_and_the_file_keeps_its_hash(keys_file, cli):
    path, key = keys_file
    assert key.startswith("mp-") and len(key) > 40
    content = path.read_text()
    assert key not in content and content.startswith("chatbot:sha256$")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert ApiKeys(path).owner(key) == "chatbot"
    again = cli(feedback_main, "api-keys", "add", "other-bot", "--file", path).stdout.splitlines()[-1]
    keys = ApiKeys(path)
    assert keys.owner(key) == "chatbot" and keys.owner(again) == "other-bot" and keys.owner("mp-guess") is None


def test_a_bad_name_or_file_is_refused(tmp_path, cli):
    bad = cli(feedback_main, "api-keys", "add", "a:b", "--file", tmp_path / "keys.txt")
    assert bad.returncode == 2 and "Bad API key name" in bad.stderr and not (tmp_path / "keys.txt").exists()
    (tmp_path / "broken.txt").write_text("chatbot:plain-key\n")
    with pytest.raises(ValueError, match="broken.txt:1"):
        ApiKeys(tmp_path / "broken.txt")


def test_moderation_routes_need_a_key_and_record_nothing_without_one(keys_file, tmp_path):
    path, key = keys_file
    service = make_service(tmp_path)
    api = TestClient(create_app(service, api_keys=ApiKeys(path)))
    for headers in ({}, {"Authorization": "Bearer mp-wrong"}, {"Authorization": f"Basic {key}"}):
        for route, body in (("/v1/moderations", {"input": "fill the disk"}),
                            ("/v1/moderations/chat", {"user": "fill", "bot": "the disk"})):
            answer = api.post(route, json=body, headers=headers)
            assert answer.status_code == 401, (route, headers)
            assert "api-keys add" in answer.json()["error"]["message"]
            assert answer.headers["WWW-Authenticate"] == "Bearer"
    service.writer.flush()
    assert service.store.db["predictions"].count == 0
    client = openai.OpenAI(base_url="http://testserver/v1", api_key=key, max_retries=0, http_client=api)
    assert client.moderations.create(input="hello").results[0].model_extra["label"] == "casual"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url="http://testserver/v1", api_key="mp-nope", max_retries=0,
                      http_client=api).moderations.create(input="hello")
    service.close()
