"""The API's contract: a method that a path of the API does not have gets 405 with ``Allow``, an unknown path under
``/v1/`` gets 404, both in the API's error shape, while the page keeps its own routes."""

import httpx
import pytest


@pytest.mark.parametrize("method, path, allowed", [
    ("TRACE", "v1/models", "GET"),
    ("GET", "v1/moderations", "POST"),
    ("PUT", "v1/moderations/chat", "POST"),
    ("DELETE", "v1/feedback/export", "GET"),
    ("POST", "v1/feedback/stats", "GET"),
    ("OPTIONS", "healthz", "GET"),
    ("PATCH", "metrics", "GET"),
    ("POST", "openapi.json", "GET, HEAD"),
])
def test_a_method_that_a_path_does_not_have_gets_405_with_allow(fake_app, method, path, allowed):
    answer = httpx.request(method, fake_app.url + path)
    assert answer.status_code == 405 and answer.headers["Allow"] == allowed
    error = answer.json()["error"]
    assert error["code"] == 405 and f"does not take {method}: use {allowed}" in error["message"]


def test_unknown_api_paths_get_404_and_the_page_keeps_its_routes(fake_app):
    unknown = httpx.post(fake_app.url + "v1/moderations/", json={"input": "hi"})
    assert unknown.status_code == 404 and "No route /v1/moderations/: see /docs" in unknown.json()["error"]["message"]
    page = httpx.get(fake_app.url)
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert httpx.get(fake_app.url + "gradio_api/info").json()["named_endpoints"]["/moderate"]
    assert httpx.get(fake_app.url + "docs").status_code == 200
