"""API keys: made by ``python -m feedback api-keys add``, revoked and listed by ``revoke`` and ``list``, stored as
hashes, required on /v1/moderations* by --api-keys, and followed by a running server as its file changes."""

import logging
import os
import threading
import time

import httpx
import openai
import pytest
from fastapi.testclient import TestClient
from servers import KEYS_FOLLOWED_S, make_service, moderate_with, running_in_process, within

from feedback.__main__ import main as feedback_main
from feedback.api_keys import CHECK_EVERY_S, ApiKeys
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


def test_revoke_removes_a_name_and_list_shows_names_only(keys_file, cli):
    path, key = keys_file
    cli(feedback_main, "api-keys", "add", "other-bot", "--file", path)
    listed = cli(feedback_main, "api-keys", "list", "--file", path)
    assert listed.returncode == 0 and listed.stdout.splitlines() == ["chatbot", "other-bot"]
    assert "sha256" not in listed.stdout + listed.stderr
    revoked = cli(feedback_main, "api-keys", "revoke", "chatbot", "--file", path)
    assert revoked.returncode == 0 and "Revoked the API key of chatbot" in revoked.stdout
    assert ApiKeys(path).owner(key) is None
    unknown = cli(feedback_main, "api-keys", "revoke", "chatbot", "--file", path)
    assert unknown.returncode == 2 and "holds no API key named 'chatbot'" in unknown.stderr
    assert "api-keys list --file" in unknown.stderr
    last = cli(feedback_main, "api-keys", "revoke", "other-bot", "--file", path)
    assert last.returncode == 0 and "refuses every request to /v1/moderations" in last.stdout
    assert cli(feedback_main, "api-keys", "list", "--file", path).stdout.strip() == f"{path} lists no API keys."
    missing = cli(feedback_main, "api-keys", "list", "--file", path.with_name("missing.txt"))
    assert missing.returncode == 2 and "No API keys file at" in missing.stderr and "Traceback" not in missing.stderr


def moderation_status(url, key) -> int:
    return moderate_with(url, f"Bearer {key}").status_code


def test_a_running_server_follows_its_keys_file(keys_file, tmp_path, cli, caplog):
    path, key = keys_file
    with running_in_process(tmp_path, app_options={"api_keys": ApiKeys(path)}) as app:
        assert moderation_status(app.url, key) == 200
        added = cli(feedback_main, "api-keys", "add", "new-bot", "--file", path).stdout.splitlines()[-1]
        assert within(KEYS_FOLLOWED_S, lambda: moderation_status(app.url, added) == 200), "a new key got 401"
        assert cli(feedback_main, "api-keys", "revoke", "chatbot", "--file", path).returncode == 0
        assert within(KEYS_FOLLOWED_S, lambda: moderation_status(app.url, key) == 401), "a revoked key got 200"

        with caplog.at_level(logging.WARNING, logger="feedback.api_keys"):
            path.write_text(path.read_text() + "chatbot:mp-a-plain-key\n")
            time.sleep(1.5 * CHECK_EVERY_S)
            assert moderation_status(app.url, added) == 200 and moderation_status(app.url, key) == 401
        assert f"{path}:2: not 'name:sha256$...'" in caplog.text and "the 1 keys read before still work" in caplog.text
        again = cli(feedback_main, "api-keys", "add", "chatbot", "--file", path)
        assert again.returncode == 2 and f"{path.name}:2" in again.stderr, "a malformed file is never overwritten"


def test_a_keys_file_slow_to_read_holds_up_no_other_request(keys_file, tmp_path):
    """The file is read again by the request that finds it changed, in a worker thread: a pipe that nobody writes
    to yet holds up that request only."""
    path, key = keys_file
    content = path.read_text()
    with running_in_process(tmp_path, app_options={"api_keys": ApiKeys(path)}) as app:
        pipe = tmp_path / "keys.pipe"
        os.mkfifo(pipe)
        os.replace(pipe, path)
        time.sleep(CHECK_EVERY_S)
        slow = []
        reader = threading.Thread(target=lambda: slow.append(moderation_status(app.url, key)))
        reader.start()
        writer = write_end_once_read(path)
        try:
            start = time.monotonic()
            assert httpx.get(app.url + "healthz", timeout=30).status_code == 200
            assert moderation_status(app.url, key) == 200, "the other requests keep the keys read before"
            assert time.monotonic() - start < 1 and slow == []
        finally:
            os.write(writer, content.encode())
            os.close(writer)
        reader.join(timeout=30)
    assert slow == [200]


def write_end_once_read(pipe) -> int:
    """The write end of ``pipe``, opened once a reader has opened it."""
    opened = []

    def opens() -> bool:
        try:
            opened.append(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:  # ENXIO: nobody reads it yet
            return False
        return True

    assert within(KEYS_FOLLOWED_S, opens), "nobody read the changed keys file"
    return opened[0]
