"""The API's contract: its OpenAPI document (``/openapi.json``, shown at ``/docs``) says what the server does.

Schemathesis, the property-based tester for OpenAPI, runs all of its checks against a real server on the tiny model
(with its adapter as a version to serve through the gate): as started by default, with ``--api-keys`` and with
``--auth``, and it is given the key or the login. It finds nothing. The other tests pin down what its checks take on
trust: the document follows the server's options, a method that a path does not have gets 405 with ``Allow`` while
the page keeps its own routes, and the patterns in the document are the server's own rules."""

import http.client
import json
import re
import shutil
import subprocess
import sys
import urllib.parse
import uuid

import httpx
import pytest
from fastapi.testclient import TestClient
from servers import make_service, running_in_process

from feedback.api_keys import ApiKeys, add_api_key
from feedback.idempotency import MAX_KEY
from feedback.reviewers import Reviewers, add_reviewer
from moderation.prompt import is_blank
from moderation.versions import ModelVersion
from playground.api.patterns import SURROGATES, blank_text, header_token
from playground.server import create_app
from playground.service import Limits

PASSWORD = "correct horse battery"
SCHEMATHESIS = """\
# A fixed seed, as Hypothesis has on CI: the suite's result does not hang on luck (run schemathesis by hand, with
# another seed, to explore further).
seed = 20261206
cache = {{ enabled = false }}

[generation]
# 50 cases an operation (the default is 100) keep each start within about 10 s on two busy cores.
max-examples = 50
database = "none"

# Serving a version runs the gate (two evaluations on the gate set): a few cases, on the one version there is.
[[operations]]
include-path = "/v1/versions/{{version}}/serve"
parameters = {{ version = "{version}" }}
generation = {{ max-examples = 5 }}
{auth}"""
"""Schemathesis's settings. No check is disabled: the test runs them all."""
STARTS = {
    "default": "",
    "--api-keys": '[auth.openapi.HTTPBearer]\nbearer = "{key}"\n',
    "--auth": f'[auth.openapi.HTTPBasic]\nusername = "ana"\npassword = "{PASSWORD}"\n',
}
"""Each start, and the credentials that schemathesis is given for it."""


def served_options(start: str, folder) -> tuple[dict, str]:
    """``running_in_process``'s options for ``start``, and the credentials to give schemathesis."""
    if start == "--api-keys":
        key = add_api_key(folder / "api-keys.txt", "schemathesis")
        return {"app_options": {"api_keys": ApiKeys(folder / "api-keys.txt")}}, STARTS[start].format(key=key)
    if start == "--auth":
        add_reviewer(folder / "reviewers.txt", "ana", PASSWORD)
        return {"reviewers_file": folder / "reviewers.txt"}, STARTS[start]
    return {}, STARTS[start]


def answered(app, path: str, method: str, status: int) -> float:
    """How many ``method path`` requests the app answered with ``status`` (its own request counter)."""
    labels = {"route": path, "method": method, "status": str(status)}
    return app.service.metrics.registry.get_sample_value("moderation_http_requests_total", labels) or 0


@pytest.mark.slow
@pytest.mark.parametrize("start", STARTS)
def test_schemathesis_with_all_its_checks_finds_nothing(start, tmp_path, tiny_moderator, tiny_adapter_dir):
    """On the tiny model, with its adapter as the one version trained here (to serve through the gate)."""
    options, credentials = served_options(start, tmp_path)
    version = ModelVersion.read(tiny_adapter_dir).name
    shutil.copytree(tiny_adapter_dir, tmp_path / "versions" / version)
    config = tmp_path / "schemathesis.toml"
    config.write_text(SCHEMATHESIS.format(auth=credentials, version=version))
    with running_in_process(tmp_path / "app", tiny_moderator, versions_dir=tmp_path / "versions", **options) as app:
        verdicts = [app.service.confirm(shown.id, reviewer="ana")["id"]  # verdicts for bulk changes to change
                    for shown in app.service.moderate(["I hate mondays", "You idiot", "What a lovely day"])]
        app.service.change(dict.fromkeys(verdicts), status="accepted")  # batch #1, which an undo takes back
        command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
                   f"{app.url}openapi.json", "--checks", "all"]
        run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0 and "No issues found" in run.stdout, run.stdout[-8000:] + run.stderr[-2000:]
        operations = httpx.get(f"{app.url}openapi.json").json()["paths"]
        for path, methods in operations.items():  # it got past the credentials, to answers that labelled or read
            for method in methods:
                assert answered(app, path, method.upper(), 200) > 0, f"no {method.upper()} {path} answered 200"


@pytest.fixture
def document(tmp_path):
    """The OpenAPI document of an app made with the given service limits and app options."""
    services = []

    def make(limits=Limits(), **app_options) -> dict:
        services.append(make_service(tmp_path / str(len(services)), limits=limits))
        return TestClient(create_app(services[-1], **app_options)).get("/openapi.json").json()

    yield make
    for service in services:
        service.close()


def statuses(document, path, method) -> set[str]:
    return set(document["paths"][path][method]["responses"])


def test_the_document_states_the_limits_the_server_was_started_with(document):
    schemas = document(Limits(max_inputs=3, max_chars=500))["components"]["schemas"]
    one, many = schemas["ModerationRequest"]["properties"]["input"]["anyOf"]
    for text in (one, many["items"], schemas["ChatRequest"]["properties"]["user"],
                 schemas["ChatRequest"]["properties"]["bot"]):
        assert (text["minLength"], text["maxLength"], text["not"]) == (1, 500, {"pattern": blank_text()})
    assert (many["minItems"], many["maxItems"]) == (1, 3)


def test_security_and_its_refusals_appear_only_where_the_options_enforce_them(document, tmp_path):
    add_api_key(tmp_path / "keys.txt", "bot")
    add_reviewer(tmp_path / "reviewers.txt", "ana", PASSWORD)
    plain = document()
    keyed = document(api_keys=ApiKeys(tmp_path / "keys.txt"))
    locked = document(reviewers=Reviewers(tmp_path / "reviewers.txt"))
    assert "securitySchemes" not in plain["components"]
    for path, method in (("/v1/moderations", "post"), ("/v1/moderations/chat", "post"),
                         ("/v1/feedback/export", "get"), ("/v1/feedback/stats", "get"),
                         ("/v1/feedback/verdicts/bulk", "post"), ("/v1/feedback/batches/{batch_id}/undo", "post")):
        assert "security" not in plain["paths"][path][method] and "401" not in statuses(plain, path, method)
        feedback = path.startswith("/v1/feedback")
        assert keyed["paths"][path][method].get("security") == (None if feedback else [{"HTTPBearer": []}])
        assert locked["paths"][path][method].get("security") == ([{"HTTPBasic": []}] if feedback else None)
        assert ("401" in statuses(keyed, path, method)) == (not feedback)
        assert statuses(locked, path, method) & {"401", "429"} == ({"401", "429"} if feedback else set())
    for start in (plain, keyed, locked):
        assert not [(path, method) for path, methods in start["paths"].items() for method, operation in methods.items()
                    if "422" in operation["responses"]], "the server answers 400, never 422"
        assert "HTTPValidationError" not in start["components"]["schemas"]


def test_every_error_is_documented_in_openais_shape_and_exports_are_jsonl(document):
    plain = document()
    paths = plain["paths"]
    assert statuses(plain, "/v1/moderations", "post") == {"200", "400", "404", "409", "413", "500", "502", "503"}
    for path, methods in paths.items():
        for method, operation in methods.items():
            for status, response in operation["responses"].items():
                # a degraded /healthz answers its own shape, with the reason: the server is up, its database is not
                shape = "Health" if (path, status) == ("/healthz", "503") else "ErrorResponse"
                if status != "200":
                    assert response["content"] == {
                        "application/json": {"schema": {"$ref": f"#/components/schemas/{shape}"}}}, (path, status)
    assert list(paths["/v1/feedback/export"]["get"]["responses"]["200"]["content"]) == ["application/x-ndjson"]
    assert paths["/v1/moderations"]["post"]["responses"]["503"]["headers"]["Retry-After"]["required"] is True


@pytest.mark.parametrize("method, path, allowed", [
    ("TRACE", "v1/models", "GET"),
    ("GET", "v1/moderations", "POST"),
    ("PUT", "v1/moderations/chat", "POST"),
    ("DELETE", "v1/feedback/export", "GET"),
    ("POST", "v1/feedback/stats", "GET"),
    ("GET", "v1/feedback/verdicts/bulk", "POST"),
    ("DELETE", "v1/feedback/batches/1/undo", "POST"),
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


def test_a_key_sent_again_with_another_request_is_a_conflict(fake_app):
    """409, which a client can tell from a bad request: the request is fine, the key is taken."""
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    assert httpx.post(fake_app.url + "v1/moderations", json={"input": "first"}, headers=headers).status_code == 200
    again = httpx.post(fake_app.url + "v1/moderations", json={"input": "second"}, headers=headers)
    assert again.status_code == 409 and "was used for another request" in again.json()["error"]["message"]


@pytest.mark.parametrize("sent, status", [
    ("  key-with-spaces-around \t", 200),
    ("a" * MAX_KEY + "\t", 200),
    ("a" * (MAX_KEY + 1), 400),
    ("caf\u00e9 latin-1", 200),
    ("tab\tinside", 400),
    ("\t", 400),
])
def test_the_key_pattern_is_what_the_server_takes(fake_app, sent, status):
    """Whichever parser reads the header, the spaces and tabs around a key are dropped, as the pattern says."""
    assert bool(re.search(header_token(MAX_KEY), sent)) == (status == 200)
    address = urllib.parse.urlsplit(fake_app.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    try:  # http.client sends the value as it is (httpx refuses spaces around one)
        connection.request("POST", "/v1/moderations", body=json.dumps({"input": sent + " text"}),
                           headers={"Content-Type": "application/json", "Idempotency-Key": sent.encode("latin-1")})
        answer = connection.getresponse()
        assert answer.status == status, answer.read()
    finally:
        connection.close()


def test_the_blank_pattern_is_the_servers_blank():
    blank = re.compile(blank_text())
    mismatched = [hex(code) for code in range(sys.maxunicode + 1)
                  if code not in SURROGATES and bool(blank.match(chr(code))) != is_blank(chr(code))]
    assert not mismatched
    assert blank.match(" \u200b\u3000\U000e0001\t") and not blank.match(" \u200bx")
