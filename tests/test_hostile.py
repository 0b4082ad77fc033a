"""Hostile inputs from tests/data/hostile.jsonl against the REST API, the Gradio API, input files and CLIs.

The app is served in this process on the fake backend (what is tested is everything around the model),
the command lines run in this process too. Every case must end in a correct result or a clear error
(a 4xx JSON error, a Gradio error, exit code 2), never a traceback in the output or the log; afterwards
the server still answers /healthz and the database changed only as the outcome says (an error writes
nothing). A case that documents a bug is marked xfail in the corpus
(``"xfail": "<why>"``). The browser test at the end checks that hostile text shows as text, never as HTML.

Corpus lines: ``{"name", "kind", "target", "input", "expect": "result"|"error", "error_contains"?, ...}``.
Large or binary values are generated: ``{"repeat": [s, n]}`` is ``s * n``, ``{"repeat_list": [v, n]}`` is
``[v] * n``, ``{"concat": [...]}`` joins strings, ``{"bytes_b64": "..."}`` is raw bytes. In a page call's file,
``{secret}`` is a 0600 file of the test's, ``{uploads}`` this server's upload folder (where a FIFO, a link to
/dev/zero, a folder and a link to /etc are planted), ``{other_upload}`` a file uploaded to another server and
``{used_upload}`` an upload that a call has used. Page calls go through gradio_client and as raw HTTP
(``/gradio_api/call/<api_name>``) alike.
"""

import base64
import functools
import html
import io
import json
import logging
import math
import os
import re
import sqlite3
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest
from gradio.utils import get_upload_folder
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from gradio_client.utils import is_file_obj_with_meta, is_http_url_like, traverse
from markdown_it import MarkdownIt
from servers import (
    KEYS_FOLLOWED_S,
    PageClient,
    call_page,
    file_data,
    file_endpoints,
    from_address,
    log_in,
    moderate_with,
    running_in_process,
    upload,
    with_file,
    within,
)

from feedback.__main__ import main as feedback_main
from feedback.api_keys import ApiKeys, add_api_key, key_hash
from feedback.reviewers import add_reviewer
from feedback.store import FeedbackStore
from moderation.__main__ import main as moderation_main
from moderation.evaluate import compare
from moderation.evaluate.__main__ import main as evaluate_main
from moderation.evaluate.metrics import compute_metrics
from moderation.labelled_files import HELDOUT_FILE, read_examples, read_labelled
from moderation.labels import LABELS
from moderation.policy import CARD
from moderation.prompt import TRUNCATION_MARKER
from moderation.templates import PromptTemplate
from moderation.training.__main__ import main as train_main
from moderation.training.report import report_text
from playground.server import main as server_main

ROOT = Path(__file__).parent.parent
CORPUS = Path(__file__).parent / "data" / "hostile.jsonl"
REVIEWER = "hostile-tester"
PASSWORD = "correct horse battery"
REVIEWER_ADDRESS = "127.0.9.9"
"""Where the reviewer of the locked app logs in from: no case guesses from there."""
SECRET = "reviewers file: ana scrypt$16384$8$1$c2FsdA$aGFzaA"
"""What the ``{secret}`` file holds: no answer may show it."""
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"


def load_corpus() -> list[dict]:
    cases = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    names = [case["name"] for case in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return cases


def expand(value):
    """The value a corpus entry stands for, with generated strings, lists and bytes filled in."""
    if isinstance(value, dict):
        if set(value) == {"repeat"}:
            text, count = value["repeat"]
            return text * count
        if set(value) == {"repeat_list"}:
            item, count = value["repeat_list"]
            return [expand(item)] * count
        if set(value) == {"concat"}:
            return "".join(expand(part) for part in value["concat"])
        if set(value) == {"bytes_b64"}:
            return base64.b64decode(value["bytes_b64"])
        return {key: expand(item) for key, item in value.items()}
    if isinstance(value, list):
        return [expand(item) for item in value]
    return value


def params() -> list:
    return [
        pytest.param(case, id=case["name"],
                     marks=[pytest.mark.xfail(strict=True, reason=case["xfail"])] if "xfail" in case else [])
        for case in load_corpus()
    ]


# ------------------------------------------------------------------------------------------------ helpers


def http(url, *, method="GET", body: bytes | None = None, content_type: str | None = None, timeout=120):
    """(status, raw body) of one request; HTTP errors are answers too."""
    request = urllib.request.Request(url, data=body, method=method)
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def counts(db_path) -> dict:
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        return {table: db.execute(f"select count(*) from {table}").fetchone()[0]
                for table in ("predictions", "verdicts", "templates")}


def prediction_rows(db_path, ids) -> list[dict]:
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        db.row_factory = sqlite3.Row
        return [dict(db.execute("select * from predictions where id = ?", [i]).fetchone()) for i in ids]


def last_predictions(db_path, count) -> list[dict]:
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute("select * from predictions order by id desc limit ?", [count]).fetchall()
    return [dict(row) for row in reversed(rows)]


def check_prompt(prompt: str, examples: int = len(CARD.examples), text: str | None = None):
    """Exactly one record per example plus the text's own: nothing in a text starts a line of its own."""
    lines = prompt.splitlines()
    assert prompt.split("\n") == lines, "a line break other than \\n reached the prompt"
    assert sum(line.startswith("Input:") for line in lines) == examples + 1
    assert sum(line.startswith("Output:") for line in lines) == examples + 1
    assert prompt.endswith("\nOutput:")
    if text is not None:
        assert prompt.endswith(f"\nInput: {text}\nOutput:")


def check_scores(scores: dict, label: str):
    assert set(scores) == set(LABELS)
    assert math.isclose(sum(scores.values()), 1, abs_tol=1e-6)
    assert label in LABELS and label == max(scores, key=scores.get)


def check_stored(db_path, ids, case, examples=len(CARD.examples)):
    """The recorded predictions: the card's layout, the text as normalised, truncated only with the marker."""
    for row in prediction_rows(db_path, ids):
        check_prompt(row["prompt"], examples, case.get("text"))
        assert row["prompt"].endswith(f"Input: {row['text']}\nOutput:")
        if case.get("truncated"):
            assert row["text"].endswith(TRUNCATION_MARKER)
        if row["mode"] == "score":
            check_scores(json.loads(row["scores"]), row["label"])


def json_error(status, raw, case):
    """A 4xx answer in OpenAI's error shape whose message says what is wrong."""
    assert 400 <= status < 500, f"status {status}: {raw[:300]!r}"
    assert status == case.get("status", status)
    answer = json.loads(raw)
    message = answer["error"]["message"]
    assert isinstance(message, str) and message
    assert case.get("error_contains", "") in message
    assert "Traceback" not in message


def app_error(call, case):
    with pytest.raises(AppError) as caught:
        call()
    message = str(caught.value)
    assert case.get("error_contains", "") in message, message[:500]
    assert "Traceback" not in message and SECRET not in message
    for lacking in case.get("error_lacks", ()):
        assert lacking not in message, message[:500]


def cli_error(run, case):
    assert run.returncode == 2, run.stderr[-2000:]
    assert case["error_contains"] in run.stderr, run.stderr[-2000:]
    assert "Traceback" not in run.stderr


def other_label(label):
    return next(candidate for candidate in LABELS if candidate != label)


def has_surrogate(value) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= ch <= "\udfff" for ch in value)
    if isinstance(value, dict):
        return any(has_surrogate(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return any(has_surrogate(item) for item in value)
    return False


def predict(ctx, api_name: str, *args, raw: bool = False):
    """``client.predict``; with ``raw`` (and for a lone surrogate, which httpx cannot encode, but a browser's
    JSON.stringify sends as ``\\udXXX``) the call goes through Gradio's plain HTTP API instead, with the same
    AppError on failure."""
    if not raw and not has_surrogate(args):
        return ctx.fixture("client").predict(*args, api_name=api_name)
    event, data = call_page(ctx.url, api_name, *args)
    if event == "error":
        raise AppError(str(data))
    return data[0] if len(data) == 1 else tuple(data)


CHAINED = re.compile(
    r"\n+(?:The above exception was the direct cause of the following exception:|"
    r"During handling of the above exception, another exception occurred:)\n+Traceback \(most recent call last\):\n"
)
EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_]\w*\.)*\w*(?:Error|Exception|Exit|Interrupt)\b.*$", re.MULTILINE)


def unexpected_tracebacks(logged: str) -> list[str]:
    """The final exception of each traceback in the server log (Gradio's refusal of a value included: the page
    answers a value it cannot take with a message, and writes no traceback)."""
    found = []
    for report in CHAINED.sub("\n", logged).split("Traceback (most recent call last):")[1:]:
        finals = EXCEPTION_LINE.findall(report)
        found.append(finals[-1] if finals else report.strip()[-300:])
    return found


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def hostile_app(tmp_path_factory):
    """The app on the fake backend, served in this process."""
    with running_in_process(tmp_path_factory.mktemp("hostile")) as app:
        yield app


@pytest.fixture(scope="module")
def app_server(hostile_app):
    """(url, database file) of the app."""
    return hostile_app.url, hostile_app.db_path


@pytest.fixture(scope="module")
def client(app_server):
    url, _ = app_server
    return PageClient(url)


@pytest.fixture(scope="module")
def target_prediction(client):
    """A prediction to give verdicts on: (id, model label)."""
    label, _, _, prediction_id = client.predict("The bus was late again this morning", "score", api_name="/moderate")
    return int(prediction_id), label["label"]


@pytest.fixture(scope="module")
def export_dir(hostile_app):
    """The server's own export folder (the client gets a downloaded copy)."""
    return hostile_app.service.scratch.exports


@pytest.fixture(scope="module")
def page_files(app_server):
    """Every api_name of the page that takes a file, with arguments for it."""
    return file_endpoints(app_server[0])


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory):
    """A file of the server's machine that only its owner may read, as the reviewers file is."""
    path = tmp_path_factory.mktemp("secrets") / "reviewers-secret.txt"
    path.write_text(SECRET + "\n")
    path.chmod(0o600)
    return str(path)


@pytest.fixture(scope="module")
def uploads_dir(hostile_app):
    """This server's upload folder, with what an attacker on the machine could plant in it: a FIFO, a link to
    /dev/zero, a folder named like a file and a link to /etc."""
    folder = hostile_app.service.scratch.uploads
    os.mkfifo(folder / "planted.fifo")
    (folder / "planted-zero.txt").symlink_to("/dev/zero")
    (folder / "planted-folder.jsonl").mkdir()
    (folder / "planted-etc").symlink_to("/etc")
    return str(folder)


@pytest.fixture(scope="module")
def other_upload(tmp_path_factory):
    """A file uploaded to another server running in this process."""
    with running_in_process(tmp_path_factory.mktemp("other-server")) as other:
        yield upload(other.url, "rows.txt", b"a text uploaded to another server\n").json()[0]


@pytest.fixture(scope="module")
def used_upload(app_server):
    """An upload that a page call has used (and so removed)."""
    url, _ = app_server
    path = upload(url, "rows.txt", b"a text labelled once\n").json()[0]
    assert call_page(url, "/batch", file_data(path), "jsonl", False, "")[0] == "complete"
    return path


PLACES = {"{secret}": "secret_file", "{uploads}": "uploads_dir", "{other_upload}": "other_upload",
          "{used_upload}": "used_upload"}
"""The names a page call's file may hold, and the fixtures they stand for."""


@pytest.fixture(scope="module")
def locked_app(tmp_path_factory):
    """The app behind logins (reviewer "ana") and API keys (one for "chatbot"), served in this process; yields
    (app, keys file, chatbot's key)."""
    folder = tmp_path_factory.mktemp("hostile-locked")
    add_reviewer(folder / "reviewers.txt", "ana", PASSWORD)
    key = add_api_key(folder / "keys.txt", "chatbot")
    with running_in_process(folder, reviewers_file=folder / "reviewers.txt",
                            app_options={"api_keys": ApiKeys(folder / "keys.txt")}) as app:
        yield app, folder / "keys.txt", key


class Context:
    """What a case runs against; each runner returns how many predictions and verdicts it expects to add."""

    def __init__(self, request, app_server, tmp_path, cli):
        self.request = request
        self.url, self.db_path = app_server
        self.tmp_path = tmp_path
        self.cli = cli

    def fixture(self, name):
        return self.request.getfixturevalue(name)

    def placed(self, value):
        """``value`` with the names of :data:`PLACES` in its strings filled in."""
        if isinstance(value, dict):
            return {key: self.placed(item) for key, item in value.items()}
        if isinstance(value, str):
            for name, fixture in PLACES.items():
                if name in value:
                    value = value.replace(name, self.fixture(fixture))
        return value


# ------------------------------------------------------------------------------------------------ runners


def run_rest(case, ctx: Context):
    spec = case["input"]
    if case["target"] == "rest":
        body, content_type, method = json.dumps(expand(spec["json"])).encode(), "application/json", "POST"
    else:
        body = expand(spec["body"])
        body = body.encode("utf-8") if isinstance(body, str) else body
        content_type, method = spec.get("content_type"), spec.get("method", "POST")
    status, raw = http(ctx.url + spec["path"].lstrip("/"), method=method, body=body or None, content_type=content_type)
    if case["expect"] == "error":
        json_error(status, raw, case)
        return 0, 0
    assert status == 200, f"status {status}: {raw[:300]!r}"
    if spec["path"].startswith("/v1/feedback/export"):  # jsonl
        exported = [json.loads(line) for line in raw.decode("utf-8").splitlines()]
        if case.get("every_verdict"):
            assert len(exported) == counts(ctx.db_path)["verdicts"]
        return 0, 0
    if spec["path"].startswith("/v1/feedback/verdicts/bulk"):
        assert set(json.loads(raw)) == {"batch", "changed", "unchanged", "updated"}
        return 0, 0
    answer = json.loads(raw)
    if spec["path"].endswith("/chat"):
        sides = [answer["user"], answer["bot"]]
        triggered = [role for role, side in zip(("user", "bot"), sides) if side["intervene"]]
        assert answer["triggered_by"] == triggered and answer["intervened"] == bool(triggered)
    else:
        sides = answer["results"]
        sent = expand(spec["json"])["input"] if case["target"] == "rest" else None
        if sent is not None:
            assert len(sides) == (1 if isinstance(sent, str) else len(sent))
    for side in sides:
        check_scores(side["category_scores"], side["label"])
        assert [name for name in LABELS if side["categories"][name]] == [side["label"]]
        assert side["flagged"] == (side["label"] != "casual")
    ctx.fixture("hostile_app").service.writer.flush()  # the API's predictions are committed in batches
    recorded = last_predictions(ctx.db_path, len(sides))
    check_stored(ctx.db_path, [row["id"] for row in recorded], case)
    assert [row["label"] for row in recorded] == [side["label"] for side in sides]
    return len(sides), 0


def run_moderate(case, ctx: Context):
    spec = expand(case["input"])
    mode = spec.get("mode", "score")

    def call():
        return predict(ctx, "/moderate", spec["text"], mode, "")  # "": the default model

    if case["expect"] == "error":
        app_error(call, case)
        return 0, 0
    label, decision, prompt, prediction_id = call()
    if mode == "score":
        confidences = {item["label"]: item["confidence"] for item in label["confidences"]}
        check_scores(confidences, label["label"])
    else:
        assert label["label"] in (*LABELS, "no label")
    assert "Would intervene" in decision
    check_prompt(prompt, text=case.get("text"))
    (row,) = prediction_rows(ctx.db_path, [int(prediction_id)])
    assert row["prompt"] == prompt and row["mode"] == mode
    check_stored(ctx.db_path, [int(prediction_id)], case)
    return 1, 0


def run_check_turn(case, ctx: Context):
    spec = expand(case["input"])

    def call():
        return predict(ctx, "/check_turn", spec["user"], spec["bot"], "")

    if case["expect"] == "error":
        app_error(call, case)
        return 0, 0
    user_label, bot_label, decision, reply, user_id, bot_id = call()
    for shown in (user_label, bot_label):
        check_scores({item["label"]: item["confidence"] for item in shown["confidences"]}, shown["label"])
    assert (reply == spec["bot"]) != decision.startswith("**Intervened")
    check_stored(ctx.db_path, [int(user_id), int(bot_id)], case)
    return 2, 0


def run_verdict(case, ctx: Context):
    prediction_id, model_label = ctx.fixture("target_prediction")
    spec = {"prediction": prediction_id, "label": other_label(model_label), "note": "", "reviewer": REVIEWER,
            "idempotency_key": "", **expand(case["input"])}
    if case["target"] == "flag":
        args = (spec["prediction"], spec["label"], spec["note"], spec["reviewer"], spec["idempotency_key"])
        verdict, label = "wrong", spec["label"]
    else:
        args = (spec["prediction"], spec["note"], spec["reviewer"], spec["idempotency_key"])
        verdict, label = "right", model_label

    def call():
        return predict(ctx, f"/{case['target']}", *args)

    if case["expect"] == "error":
        app_error(call, case)
        return 0, 0
    name = case.get("saved_as", spec["reviewer"].strip())
    with sqlite3.connect(f"file:{ctx.db_path}?mode=ro", uri=True) as db:
        replaced = db.execute("select count(*) from verdicts where prediction_id = ? and reviewer = ?",
                              [prediction_id, name]).fetchone()[0]
    saved = call()
    assert saved.startswith("Saved verdict #") and saved.endswith(f": {verdict}, {label}.")
    verdict_id = int(saved.split("#")[1].split()[0])
    with sqlite3.connect(f"file:{ctx.db_path}?mode=ro", uri=True) as db:
        row = db.execute("select prediction_id, verdict, label, note, reviewer from verdicts where id = ?",
                         [verdict_id]).fetchone()
    assert row[:3] == (prediction_id, verdict, label)
    assert row[4] == name
    expected_note = spec["note"].encode("utf-8", "ignore").decode("utf-8")  # a lone surrogate cannot be stored
    assert row[3] in (spec["note"], expected_note)
    return 0, 0 if replaced else 1  # a reviewer's second verdict on a prediction replaces the first


CARD_POLICY = ({"headers": ["label", "description"],
                "data": [[label, CARD.description(label)] for label in CARD.labels]}, CARD.name, CARD.ordinal)
"""The Prompt tab's policy fields as the card's policy fills them (its labels, descriptions, name, ordinal)."""


def run_set_prompt(case, ctx: Context):
    client = ctx.fixture("client")
    spec = expand(case["input"])
    table = {"headers": ["text", "label"], "data": spec["examples"]}
    before = counts(ctx.db_path)["templates"]

    def call():
        return predict(ctx, "/set_prompt", table, spec.get("threshold", "needs caution"), *CARD_POLICY)

    def probe(examples, prefix):
        _, _, prompt, prediction_id = client.predict("probe after set_prompt", "score", api_name="/moderate")
        check_prompt(prompt, examples, "probe after set_prompt")
        assert prompt.startswith(prefix)
        check_stored(ctx.db_path, [int(prediction_id)], {}, examples)

    try:
        if case["expect"] == "error":
            app_error(call, case)
            assert counts(ctx.db_path)["templates"] == before, "a refused template was saved"
            probe(len(CARD.examples), PromptTemplate().prefix)  # the card's template is still the one in use
        else:
            preview, message = call()
            assert f": {case['examples']} examples;" in message
            assert preview.endswith(" <text>\nOutput:")
            probe(case["examples"], preview.removesuffix(" <text>\nOutput:"))
    finally:  # whatever happened, the next case starts from the card's template
        card = [[example.text, example.label] for example in CARD.examples]
        client.predict({"headers": ["text", "label"], "data": card}, "needs caution", *CARD_POLICY,
                       api_name="/set_prompt")
    return 1, 0


def run_export(case, ctx: Context):
    folder = ctx.fixture("export_dir")
    spec = {"format": "oig", "status": "any", "since": "", **expand(case["input"])}
    files = set(folder.iterdir())

    def call():
        return predict(ctx, "/export", spec["format"], spec["status"], spec["since"])

    if case["expect"] == "error":
        app_error(call, case)
        left = sorted(path.name for path in set(folder.iterdir()) - files)
        assert not left, f"a refused export left files behind: {left}"
        return 0, 0
    path, message = call()
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    assert message == f"{len(lines)} {'texts' if spec['format'] == 'oig' else 'verdicts'} exported as {spec['format']}."
    return 0, 0


def run_review(case, ctx: Context):
    """The Review tab's filters, as /review (or /select_all, ``api``) takes them: the table comes first."""
    spec = {"api": "/review", "status": "any", "label": "any", "disagree": False, "search": "", **expand(case["input"])}

    def call():
        return predict(ctx, spec["api"], spec["status"], spec["label"], spec["disagree"], spec["search"])

    if case["expect"] == "error":
        app_error(call, case)
        return 0, 0
    table = call()[0]
    assert isinstance(table["data"], list)
    return 0, 0


def write_input_file(case, ctx: Context) -> Path:
    content = expand(case["input"]["content"])
    path = ctx.tmp_path / f"{case['name']}.jsonl"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def run_examples_file(case, ctx: Context):
    path = write_input_file(case, ctx)
    if case["expect"] == "error":
        with pytest.raises(ValueError) as caught:
            PromptTemplate(read_examples(path, CARD))
        assert case["error_contains"] in str(caught.value)
    else:
        template = PromptTemplate(read_examples(path, CARD))
        assert len(template.examples) == case["examples"]
        check_prompt(template.assemble("probe"), case["examples"], "probe")
    if case["input"].get("cli"):
        model = ctx.fixture("tiny_model_dir")
        run = ctx.cli(moderation_main, "--json", "--model", model, "--examples", path, "probe")
        if case["expect"] == "error":
            cli_error(run, case)
        else:
            assert run.returncode == 0, run.stderr[-2000:]
            check_prompt(json.loads(run.stdout)["prompt"], case["examples"], "probe")
    return 0, 0


def run_train_file(case, ctx: Context):
    path = write_input_file(case, ctx)
    if case["expect"] == "error":
        with pytest.raises(ValueError) as caught:
            read_labelled(path, CARD)
        assert case["error_contains"] in str(caught.value)
    else:
        records = read_labelled(path, CARD)
        assert len(records) == case["records"]
        for text, label in records:
            assert label in LABELS and len(text.splitlines()) == 1
    if case["input"].get("cli"):
        assert case["expect"] == "error", "the CLI only checks refused data (training takes too long here)"
        out = ctx.tmp_path / "tuned"
        model = ctx.fixture("tiny_model_dir")
        run = ctx.cli(train_main, "--model", model, "--data", path, "--out", out)
        cli_error(run, case)
        assert not out.exists()
    return 0, 0


ID_CALLS = {
    "/confirm": lambda given: [given, "", REVIEWER, ""],
    "/flag": lambda given: [given, LABELS[0], "", REVIEWER, ""],
    "/confirm_side": lambda given: ["user", given, given, "", REVIEWER, ""],
    "/flag_side": lambda given: ["bot", given, given, LABELS[0], "", REVIEWER, ""],
    "/queue_label": lambda given: [given, LABELS[0], REVIEWER],
    "/queue_right": lambda given: [given, "most uncertain", REVIEWER],
    "/queue_skip": lambda given: [given, "most uncertain", REVIEWER],
    "/accept": lambda given: [given, "", REVIEWER],
    "/discard": lambda given: [given, "", REVIEWER],
    "/relabel": lambda given: [given, LABELS[0], "", REVIEWER],
    "/undo_batch": lambda given: [given, REVIEWER],
    "/compare_runs": lambda given: [given, given],
}
"""Every page call that takes an id: its inputs around the id given."""
ID_SLOT = "<the id>"


def run_page_id(case, ctx: Context):
    """The id (``id``, or ``id_json`` as JSON text, which can say ``1e309``) sent raw to /gradio_api/call, and through
    gradio_client where its JSON can carry the value."""
    spec = case["input"]
    literal = spec.get("id_json", json.dumps(spec.get("id")))
    inputs = ID_CALLS[spec["api"]]
    body = json.dumps({"data": inputs(ID_SLOT)}).replace(json.dumps(ID_SLOT), literal)
    answers = [call_page(ctx.url, spec["api"], body=body)]
    value = json.loads(literal)
    if not isinstance(value, float) or math.isfinite(value):
        try:
            answers.append(("complete", ctx.fixture("client").predict(*inputs(value), api_name=spec["api"])))
        except AppError as error:
            answers.append(("error", str(error)))
    for event, data in answers:
        if case["expect"] == "error":
            assert event == "error" and case["error_contains"] in data, data
            assert "Traceback" not in data
        else:
            assert event == "complete", data
    return 0, 0


class Rendered(HTMLParser):
    """The elements and the text of a Markdown string as a GitHub-like renderer shows it (markdown-it with tables,
    strikethrough and bare links)."""

    def __init__(self, markdown: str):
        super().__init__()
        self.tags, self.text = set(), ""
        self.feed(MarkdownIt("gfm-like").render(markdown))

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)

    def handle_data(self, data):
        self.text += data


def shows_as_text(markdown: str, text: str, layout: set[str]):
    """``markdown`` renders ``text`` (on one line) as it is, and no element but those of its own ``layout``."""
    shown = Rendered(markdown)
    assert shown.tags <= layout, f"user content became {shown.tags - layout}: {markdown!r}"
    assert " ".join(text.splitlines()).strip() in shown.text, markdown


def run_retrain_report(case, ctx: Context):
    """The report a retraining job writes (the Retrain tab shows it as Markdown) with the text among its flips and
    its benign regressions (casual before, as gold says, and flagged after)."""
    text = case["input"]["text"]
    run = {"id": None, "created": None, "version": None, "template": "card", "threshold": "needs caution",
           "mode": "score", "gold_name": "held-out records", "gold_hash": "h", "gold_size": 2}

    def labelled(model, label):
        items = [{"text": text, "gold": "casual", "label": label, "scores": {}, "generated": None},
                 {"text": "a second text", "gold": "needs caution", "label": "needs caution", "scores": {},
                  "generated": None}]
        metrics = compute_metrics([item["gold"] for item in items], [item["label"] for item in items], None,
                                  "needs caution", CARD)
        return {**run, "model": model, "metrics": metrics, "items": items}

    comparison = compare(labelled("base", "casual"), labelled("base-lora-1", "needs caution"))
    assert comparison["benign_regressions"] and comparison["flipped"]
    shows_as_text(report_text(comparison), text,
                  {"h1", "h2", "p", "ul", "li", "strong", "table", "thead", "tbody", "tr", "th", "td"})
    return 0, 0


def run_dashboard(case, ctx: Context):
    """A verdict under the reviewer name given, then the Dashboard: its plot of verdicts per reviewer names the
    reviewer with the entities that make plotly show the name as text (it draws links and other HTML)."""
    added = run_verdict({**case, "target": "flag"}, ctx)
    *_, reviewers, _ = ctx.fixture("client").predict(api_name="/dashboard")
    names = json.loads(reviewers["plot"])["data"][0]["x"]
    assert html.escape(case["input"]["reviewer"].strip(), quote=False) in names
    assert not any("<" in name for name in names)
    return added


def run_evaluate_conflicts(case, ctx: Context):
    """The text accepted with two labels, then evaluated on the accepted verdicts: the summary (Markdown) lists
    it among the texts accepted with different labels."""
    client, text = ctx.fixture("client"), case["input"]["text"]
    for number in range(2):
        shown, _, _, prediction_id = client.predict(text, "score", api_name="/moderate")
        label = [label for label in LABELS if label != shown["label"]][number]
        saved = client.predict(prediction_id, label, "", REVIEWER, "", api_name="/flag")
        client.predict(int(saved.split("#")[1].split()[0]), "", REVIEWER, api_name="/accept")
    summary, *_ = client.predict("accepted verdicts", None, "score", api_name="/evaluate")
    assert "texts were accepted with different labels" in summary
    shows_as_text(summary, text, {"p", "strong", "ul", "li"})
    return 2, 2


def run_feedback_export(case, ctx: Context):
    out = ctx.tmp_path / "export.jsonl"
    run = ctx.cli(feedback_main, "export", "--db", ctx.db_path, "--since", case["input"]["since"], out)
    if case["expect"] == "error":
        cli_error(run, case)
        assert not list(out.parent.glob(f"{out.name}*")), "a refused export left a file behind"
    else:
        assert run.returncode == 0, run.stderr
    return 0, 0


def run_login(case, ctx: Context):
    """A flood of wrong guesses from one address: no more passwords checked than the limit, then 429 saying when to
    retry; the reviewer, from another address, still logs in."""
    spec = expand(case["input"])
    app, _, _ = ctx.fixture("locked_app")
    with from_address(spec["source"]) as http:
        answers = [log_in(http, app.url, spec["name"].format(n=n), spec["password"].format(n=n), via=spec["via"],
                          headers={key: value.format(n=n) for key, value in spec.get("headers", {}).items()})
                   for n in range(spec["guesses"])]
    assert sum(answer.status_code != 429 for answer in answers) <= case["checked_at_most"]
    held = answers[-1]
    assert held.status_code == 429 and int(held.headers["Retry-After"]) >= 1
    body = held.json()
    message = body["error"]["message"] if "error" in body else body["detail"]
    assert case["error_contains"] in message
    with from_address(REVIEWER_ADDRESS) as reviewer:
        assert log_in(reviewer, app.url, "ana", PASSWORD, via=spec["via"]).status_code == 200
    return 0, 0


def run_api_key(case, ctx: Context):
    """A key sent as ``authorization`` says: chatbot's, or one made for the case (once the server takes it) and
    then revoked or replaced while the server runs."""
    spec = case["input"]
    app, keys, key = ctx.fixture("locked_app")
    if "then" in spec:
        key = add_api_key(keys, case["name"])
        assert within(KEYS_FOLLOWED_S, lambda: moderate_with(app.url, f"Bearer {key}").status_code == 200)
        for action in spec["then"]:
            run = ctx.cli(feedback_main, "api-keys", action, case["name"], "--file", keys)
            assert run.returncode == 0, run.stderr
    authorization = spec["authorization"].format(key=key, hash=key_hash(key))
    within(KEYS_FOLLOWED_S, lambda: moderate_with(app.url, authorization).status_code == case["status"])
    answer = moderate_with(app.url, authorization)
    json_error(answer.status_code, answer.content, case)
    return 0, 0


def run_keys_file(case, ctx: Context):
    """The keys file made malformed while the server runs: the keys read before keep working (or, a file of no key,
    none does), the log says why, and no line of the file is taken for a key."""
    spec = expand(case["input"])
    app, keys, key = ctx.fixture("locked_app")
    original = keys.read_bytes()
    content = spec["content"]
    log = ctx.fixture("caplog")

    def logged() -> bool:  # the request that finds the file changed reads it, and logs why it cannot use it
        moderate_with(app.url, f"Bearer {key}")
        return case["error_contains"] in log.text

    try:
        keys.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        assert within(KEYS_FOLLOWED_S, logged)
        assert moderate_with(app.url, f"Bearer {key}").status_code == spec["chatbot_status"]
        for forged in spec.get("forged", []):
            assert moderate_with(app.url, f"Bearer {forged}").status_code == 401
    finally:
        keys.write_bytes(original)
        assert within(KEYS_FOLLOWED_S, lambda: moderate_with(app.url, f"Bearer {key}").status_code == 200)
    return 0, 0


def run_secrets_cli(case, ctx: Context):
    """``python -m feedback reviewers|api-keys ...`` on a file with one name in it: refused, the file unchanged."""
    spec = expand(case["input"])
    path = ctx.tmp_path / "secrets.txt"
    if spec["args"][0] == "reviewers":
        add_reviewer(path, "ana", PASSWORD)
    else:
        add_api_key(path, "chatbot")
    before = path.read_bytes()
    ctx.fixture("monkeypatch").setattr("sys.stdin", io.StringIO(spec.get("stdin", "a long enough password\n")))
    cli_error(ctx.cli(feedback_main, *spec["args"], "--file", path), case)
    assert path.read_bytes() == before
    return 0, 0


def sent_as_is(args) -> bool:
    """Whether gradio_client sends ``args`` as they are: it uploads each local file they name (an upload like any
    other), and sends URLs on."""
    files = []
    traverse(list(args), lambda file: files.append(file) or file, is_file_obj_with_meta)
    return all(is_http_url_like(file["path"]) for file in files)


def run_page_file(case, ctx: Context):
    """A file named in a call to every api_name that takes one: as raw HTTP, and through gradio_client where it
    sends it as it is."""
    file = ctx.placed(expand(case["input"]["file"]))
    for api_name, arguments in ctx.fixture("page_files").items():
        args = with_file(arguments, file)
        app_error(functools.partial(predict, ctx, api_name, *args, raw=True), case)
        if sent_as_is(args):
            app_error(functools.partial(predict, ctx, api_name, *args), case)
    if case["input"].get("never_copied"):
        name = Path(file["path"]).name
        copies = [folder for folder, _, files in os.walk(get_upload_folder()) if name in files]
        assert copies == [], f"{name} was copied into {copies}"
    return 0, 0


def run_page_upload(case, ctx: Context):
    """A file uploaded to the page, then labelled or evaluated: through gradio_client, and as raw HTTP (an upload,
    then the call naming what it stored)."""
    spec = expand(case["input"])
    content = spec["content"].encode("utf-8") if isinstance(spec["content"], str) else spec["content"]
    path = ctx.tmp_path / spec["name"]
    path.write_bytes(content)
    for raw in (False, True):
        file = file_data(upload(ctx.url, spec["name"], content).json()[0]) if raw else handle_file(str(path))
        args = [file if argument == "{file}" else argument for argument in spec["args"]]
        call = functools.partial(predict, ctx, spec["api_name"], *args, raw=raw)
        if case["expect"] == "error":
            app_error(call, case)
            continue
        written = call()[0]
        output = (Path(written).read_text(encoding="utf-8") if isinstance(written, str) else
                  http(written["url"])[1].decode("utf-8"))
        for expected in case["output_contains"]:
            assert expected in output, output[:1000]
    return 0, 0


def run_page_value(case, ctx: Context):
    """Values that an input cannot take: as raw HTTP, and through gradio_client where it sends them as they are."""
    spec = expand(case["input"])
    app_error(lambda: predict(ctx, spec["api_name"], *spec["args"], raw=True), case)
    if sent_as_is(spec["args"]):
        app_error(lambda: predict(ctx, spec["api_name"], *spec["args"]), case)
    return 0, 0


def run_rest_keyed(case, ctx: Context):
    """A request with an Idempotency-Key, then (its key aged by ``age_hours``) another with the same key."""
    spec = expand(case["input"])
    headers = {"Content-Type": "application/json", "Idempotency-Key": spec["key"]}

    def post(body):
        request = urllib.request.Request(ctx.url + spec["path"].lstrip("/"), data=json.dumps(body).encode(),
                                         headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def shown(answer: bytes) -> int:
        """How many predictions an answer showed (and recorded): a chat turn's two sides, or each result."""
        return 2 if spec["path"].endswith("/chat") else len(json.loads(answer)["results"])

    status, first = post(spec["first"])
    assert status == 200, first[:300]
    with sqlite3.connect(ctx.db_path) as db:
        db.execute("update idempotency_keys set created = ? where key = ?",
                   [(datetime.now(timezone.utc) - timedelta(hours=spec["age_hours"])).isoformat(), spec["key"]])
    status, then = post(spec["then"])
    if case["expect"] == "error":
        json_error(status, then, case)
        return shown(first), 0
    assert status == 200 and json.loads(then)["id"] != json.loads(first)["id"], "an expired key is a new request"
    return shown(first) + shown(then), 0


def run_feedback_cli(case, ctx: Context):
    """``python -m feedback ARGS`` on a database of its own ({db} in ARGS): a few predictions, or ``db_content``."""
    spec = case["input"]
    db = ctx.tmp_path / "feedback.db"
    if "db_content" in spec:
        content = expand(spec["db_content"])
        db.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    else:
        with FeedbackStore(db) as store:
            for text in ("Keep me, I am harmless", "Keep me too: 100% harmless"):
                store.save_prediction(text=text, label="casual", scores={label: 0.2 for label in LABELS},
                                        prompt=f"Input: {text}\nOutput:", model="demo")
    before = db.read_bytes()
    run = ctx.cli(feedback_main, *[str(db) if arg == "{db}" else expand(arg) for arg in spec["args"]])
    if case["expect"] == "error":
        cli_error(run, case)
        if "db_content" in spec:
            assert db.read_bytes() == before, "a refused command changed the file"
        else:
            assert sqlite3.connect(db).execute("select count(*) from predictions").fetchone()[0] == 2
    else:
        assert run.returncode == 0, run.stderr[-2000:]
        assert case["output_contains"] in run.stdout, run.stdout
    return 0, 0


def cli_args(args: list[str], ctx: Context) -> list[str]:
    """A command line with its places filled: ``{model}`` the tiny model, ``{heldout}`` the shipped held-out set,
    ``{bad_gold}`` a gold file with an unknown label, ``{db}`` a database file of the case's own (not made here)."""
    bad_gold = ctx.tmp_path / "bad-gold.jsonl"
    bad_gold.write_text('{"text": "You are all idiots", "label": "rude"}\n')
    places = {"{heldout}": lambda: HELDOUT_FILE, "{bad_gold}": lambda: bad_gold,
              "{db}": lambda: ctx.tmp_path / "runs.db", "{model}": lambda: ctx.fixture("tiny_model_dir")}
    return [str(places[arg]()) if arg in places else arg for arg in args]


def run_app_options(case, ctx: Context):
    """``python app.py ARGS``: refused before anything loads."""
    assert case["expect"] == "error", "the corpus starts no app of its own"
    cli_error(ctx.cli(server_main, *cli_args(case["input"]["args"], ctx)), case)
    return 0, 0


def run_evaluate_cli(case, ctx: Context):
    """``python -m moderation.evaluate ARGS`` (a gate, on the tiny model): refused with a message, no run stored."""
    assert case["expect"] == "error", "the corpus evaluates nothing to the end"
    cli_error(ctx.cli(evaluate_main, *cli_args(case["input"]["args"], ctx)), case)
    assert not (ctx.tmp_path / "runs.db").exists(), "a refused command wrote a database"
    return 0, 0


RUNNERS = {
    "rest": run_rest,
    "rest_raw": run_rest,
    "moderate": run_moderate,
    "check_turn": run_check_turn,
    "flag": run_verdict,
    "confirm": run_verdict,
    "set_prompt": run_set_prompt,
    "export": run_export,
    "review": run_review,
    "examples_file": run_examples_file,
    "train_file": run_train_file,
    "feedback_export": run_feedback_export,
    "login": run_login,
    "api_key": run_api_key,
    "keys_file": run_keys_file,
    "secrets_cli": run_secrets_cli,
    "page_file": run_page_file,
    "page_upload": run_page_upload,
    "page_value": run_page_value,
    "page_id": run_page_id,
    "retrain_report": run_retrain_report,
    "dashboard": run_dashboard,
    "evaluate_conflicts": run_evaluate_conflicts,
    "rest_keyed": run_rest_keyed,
    "feedback_cli": run_feedback_cli,
    "app_options": run_app_options,
    "evaluate_cli": run_evaluate_cli,
}


# ------------------------------------------------------------------------------------------------ tests


def test_corpus_covers_every_kind():
    cases = load_corpus()
    assert len(cases) >= 40
    kinds = {case["kind"] for case in cases}
    assert {"empty/whitespace", "1 MB text", "control characters", "invalid UTF-8", "RTL/zero-width",
            "HTML/script", "SQL", "prompt forging", "unknown labels", "oversized JSON body", "wrong types",
            "malformed JSON", "wrong content type", "non-object lines", "bad dates", "server files",
            "devices and FIFOs", "links", "URLs", "nested JSON", "CSV quotes", "formula cells",
            "non-table values"} <= kinds
    assert {"password flood", "spoofed X-Forwarded-For", "revoked key", "malformed keys file",
            "names with ':' or newlines"} <= kinds
    assert {case["target"] for case in cases} == set(RUNNERS)
    for case in cases:
        assert case["expect"] in ("result", "error")
        assert case["expect"] == "result" or "error_contains" in case, case["name"]


@pytest.mark.parametrize("case", params())
def test_hostile_input(case, app_server, request, tmp_path, cli, capfd, caplog):
    url, db_path = app_server
    ctx = Context(request, app_server, tmp_path, cli)
    for name in {"flag": ["target_prediction"], "confirm": ["target_prediction"], "dashboard": ["target_prediction"],
                 "export": ["export_dir"]}.get(case["target"], []):
        ctx.fixture(name)  # set up before the counts are taken
    before = counts(db_path)
    capfd.readouterr()
    caplog.clear()

    added_predictions, added_verdicts = RUNNERS[case["target"]](case, ctx)
    request.getfixturevalue("hostile_app").service.writer.flush()

    status, raw = http(url + "healthz", timeout=30)
    assert status == 200 and json.loads(raw)["status"] == "ok", "the server stopped answering"
    after = counts(db_path)
    assert after["predictions"] - before["predictions"] == added_predictions, "predictions half-written"
    assert after["verdicts"] - before["verdicts"] == added_verdicts, "verdicts half-written"
    time.sleep(0.05)  # a failed event's traceback is written just after its answer
    logged = capfd.readouterr().err
    assert not unexpected_tracebacks(logged), f"a traceback was printed:\n{logged[-3000:]}"
    failures = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert not failures, f"an error was logged: {failures[0].getMessage()}"


# ------------------------------------------------------------------------------------------------ browser


def prompt_box_text(page) -> str:
    """The prompt box's text as CodeMirror holds it (special characters are drawn as placeholders)."""
    return page.evaluate(
        "() => { const el = document.querySelector('.cm-content'); if (!el) return null;"
        " const node = el.cmTile || el.cmView;"  # CodeMirror 6 keeps its EditorView on the content node
        " const view = node && (node.view || (node.rootView && node.rootView.view));"
        " return view && view.state ? view.state.doc.toString() : null; }"
    )


@pytest.mark.browser
def test_hostile_text_in_the_page_is_text(app_server, browser_page):
    from playwright.sync_api import expect

    url, _ = app_server
    page = browser_page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    attack = ('<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
              '<a href="javascript:window.__pwned=3">click</a>')
    rtl = "\u202eevil.exe\u202c zero\u200bwidth\u200d join\ufeff"
    page.goto(url)
    text_box = page.get_by_label("Text", exact=True)
    moderate = page.get_by_role("button", name="Moderate", exact=True)
    prompt = page.locator(".cm-content")

    text_box.fill(attack)
    moderate.click()
    expect(prompt).to_contain_text(f"Input: {attack}")
    page.screenshot(path=SCREENSHOTS / "hostile-html.png", full_page=True)
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img[src='x']").count() == 0
    assert page.locator("a[href^='javascript:']").count() == 0
    shown = prompt_box_text(page)
    assert shown is None or shown.endswith(f"\nInput: {attack}\nOutput:")

    text_box.fill(rtl)
    moderate.click()
    expect(prompt).to_contain_text("evil.exe")
    expect(prompt).to_contain_text("zero")
    page.screenshot(path=SCREENSHOTS / "hostile-rtl-zero-width.png", full_page=True)
    shown = prompt_box_text(page)
    assert shown is not None, "could not read the prompt box's text"
    assert shown.endswith(f"\nInput: {rtl}\nOutput:")

    page.get_by_role("tab", name="Export").click()
    page.get_by_label("Since", exact=True).fill('<img src=x onerror="window.__pwned=4">')
    page.get_by_role("button", name="Export", exact=True).click()
    expect(page.get_by_text('Bad date \'<img src=x onerror="window.__pwned=4">\'')).to_be_visible()
    page.screenshot(path=SCREENSHOTS / "hostile-error-toast.png")
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img[src='x']").count() == 0

