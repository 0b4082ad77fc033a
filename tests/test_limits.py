"""Request bodies over --max-body get 413 before they are parsed, on the REST API and the page's API alike."""

import httpx
import pytest
from conftest import make_service
from fastapi.testclient import TestClient

from playground.server import create_app

TWO_MB = 2_000_000


@pytest.mark.parametrize("path", ["v1/moderations", "v1/moderations/chat", "gradio_api/queue/join"])
def test_a_2_mb_body_gets_413(fake_app, path):
    answer = httpx.post(fake_app.url + path, content=b'{"input": "' + b"x" * TWO_MB + b'"}',
                        headers={"Content-Type": "application/json"}, timeout=60)
    assert answer.status_code == 413
    assert "limit of 1000000 bytes (--max-body)" in answer.json()["error"]["message"]
    assert httpx.get(fake_app.url + "healthz").status_code == 200


def test_a_streamed_body_is_counted_as_it_comes(fake_app):
    def chunks():
        for _ in range(20):
            yield b"x" * 100_000

    before = fake_app.service.batcher.depth
    answer = httpx.post(fake_app.url + "v1/moderations", content=chunks(), timeout=60,
                        headers={"Content-Type": "application/json"})
    assert answer.status_code == 413 and "--max-body" in answer.json()["error"]["message"]
    assert fake_app.service.batcher.depth == before


def test_the_limit_is_an_option(tmp_path):
    service = make_service(tmp_path)
    api = TestClient(create_app(service, max_body=100))
    assert api.post("/v1/moderations", json={"input": "short"}).status_code == 200
    refused = api.post("/v1/moderations", json={"input": "x" * 200})
    assert refused.status_code == 413 and "limit of 100 bytes" in refused.json()["error"]["message"]
    service.close()
