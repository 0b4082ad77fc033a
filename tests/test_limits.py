"""Request bodies over --max-body get 413 before they are parsed, on the REST API and the page's API alike; the
page's file uploads have their own bound, --max-upload."""

import json
from pathlib import Path

import httpx
import pytest
import sqlite_utils
from fastapi.testclient import TestClient
from gradio_client import handle_file
from servers import PageClient, make_service, running_in_process

from playground.server import MAX_BODY, MAX_UPLOAD, UPLOAD_ENVELOPE, create_app, parse_args

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


@pytest.mark.slow
def test_a_batch_file_larger_than_the_body_limit_uploads_and_is_labelled(tmp_path):
    rows = tmp_path / "rows.txt"
    rows.write_text("".join(f"Text {i:05} of the batch, which I hate to label by hand.\n" for i in range(30_000)),
                    encoding="utf-8")
    assert rows.stat().st_size > 1.2 * MAX_BODY
    with running_in_process(tmp_path / "server") as app:
        client = PageClient(app.url, download_files=tmp_path / "client")
        path, summary, counts, _ = client.predict(handle_file(str(rows)), "jsonl", False, api_name="/batch")
        client.close()
        lines = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]
    assert summary.startswith("30000 of 30000 rows labelled (0 with an error)")
    assert sum(count for _, count, _ in counts["data"]) == 30_000, "the page counts every row, not the first shown"
    assert [line["text"] for line in lines[:2]] == [f"Text {i:05} of the batch, which I hate to label by hand."
                                                    for i in range(2)]
    assert len(lines) == 30_000 and {line["label"] for line in lines} == {"possibly needs caution"}


def test_a_file_over_the_upload_limit_is_refused_with_the_limit_and_nothing_is_recorded(tmp_path):
    rows = tmp_path / "rows.txt"
    rows.write_text("a text to label\n" * 200, encoding="utf-8")
    with running_in_process(tmp_path / "server", app_options={"max_upload": 1000}) as app:
        answer = httpx.post(app.url + "gradio_api/upload", files={"files": ("rows.txt", rows.read_bytes())})
        assert answer.status_code == 413
        assert answer.text == "File size exceeded maximum allowed size of 1000 bytes."
        client = PageClient(app.url)
        with pytest.raises(ValueError, match="exceeds the maximum file size of 1000 bytes"):
            client.predict(handle_file(str(rows)), "jsonl", True, api_name="/batch")
        client.close()
        assert list(app.service.scratch.exports.glob("batch-*")) == []
    assert sqlite_utils.Database(app.db_path)["predictions"].count == 0


def test_an_upload_of_many_files_is_bounded_as_a_whole(tmp_path):
    with running_in_process(tmp_path / "server", app_options={"max_upload": 100_000}) as app:
        one = ("rows.txt", b"a text to label\n" * 5900)  # 94.4 kB: under the limit alone, not twice
        answer = httpx.post(app.url + "gradio_api/upload", files=[("files", one)])
        assert answer.status_code == 200 and len(answer.json()) == 1
        answer = httpx.post(app.url + "gradio_api/upload", files=[("files", one), ("files", one)])
        assert answer.status_code == 413
        assert answer.json()["error"]["message"] == (
            f"The request body is over the server's limit of {100_000 + UPLOAD_ENVELOPE} bytes (--max-upload): "
            "send less.")


def test_the_upload_limit_is_an_option():
    assert parse_args([]).max_upload == MAX_UPLOAD == 100_000_000
    assert parse_args(["--max-upload", "5000000"]).max_upload == 5_000_000
