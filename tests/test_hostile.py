"""Hostile inputs from tests/data/hostile.jsonl against the REST API, the Gradio API, input files and CLIs.

The app is served in this process on the fake backend (what is tested is everything around the model),
the command lines run in this process too. Every case must end in a correct result or a clear error
(a 4xx JSON error, a Gradio error, exit code 2), never a traceback in the output or the log; afterwards
the server still answers /healthz and the database changed only as the outcome says (an error writes
nothing). A case that documents a bug is marked xfail in the corpus
(``"xfail": "<why>"``). The browser test at the end checks that hostile text shows as text, never as HTML.

Corpus lines: ``{"name", "kind", "target", "input", "expect": "result"|"error", "error_contains"?, ...}``.
Large or binary values are generated: ``{"repeat": [s, n]}`` is ``s * n``, ``{"repeat_list": [v, n]}`` is
``[v] * n``, ``{"concat": [...]}`` joins strings, ``{"bytes_b64": "..."}`` is raw bytes.
"""

import base64
import json
import logging
import math
import re
import sqlite3
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from gradio_client.exceptions import AppError
from servers import PageClient, running_in_process

from feedback.__main__ import main as feedback_main
from moderation.__main__ import main as moderation_main
from moderation.labels import LABELS
from moderation.prompt import CARD_EXAMPLES, TRUNCATION_MARKER, PromptTemplate
from moderation.records import read_labelled, read_template
from moderation.train import main as train_main

ROOT = Path(__file__).parent.parent
CORPUS = Path(__file__).parent / "data" / "hostile.jsonl"
CARD = PromptTemplate()
REVIEWER = "hostile-tester"
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


def check_prompt(prompt: str, examples: int = len(CARD_EXAMPLES), text: str | None = None):
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


def check_stored(db_path, ids, case, examples=len(CARD_EXAMPLES)):
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
    assert "Traceback" not in message


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


def predict(ctx, api_name: str, *args):
    """``client.predict``; a lone surrogate (which httpx cannot encode, but a browser's JSON.stringify sends
    as ``\\udXXX``) goes through Gradio's plain HTTP API instead, with the same AppError on failure."""
    if not has_surrogate(args):
        return ctx.fixture("client").predict(*args, api_name=api_name)
    base = f"{ctx.url}gradio_api/call{api_name}"
    status, raw = http(base, method="POST", body=json.dumps({"data": list(args)}).encode(),
                       content_type="application/json")
    assert status == 200, raw[:500]
    _, stream = http(f"{base}/{json.loads(raw)['event_id']}")
    events = re.findall(r"^event: (\w+)\ndata: (.*)$", stream.decode("utf-8"), re.MULTILINE)
    event, data = next((event, data) for event, data in events if event in ("complete", "error"))
    if event == "error":
        data = json.loads(data)
        raise AppError((data.get("error") or "error") if isinstance(data, dict) else str(data))
    outputs = json.loads(data)
    return outputs[0] if len(outputs) == 1 else tuple(outputs)


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
def export_dir(app_server):
    """The server's own export folder (the client gets a downloaded copy)."""
    return Path(app_server[1]).parent / "exports"


class Context:
    """What a case runs against; each runner returns how many predictions and verdicts it expects to add."""

    def __init__(self, request, app_server, tmp_path, cli):
        self.request = request
        self.url, self.db_path = app_server
        self.tmp_path = tmp_path
        self.cli = cli

    def fixture(self, name):
        return self.request.getfixturevalue(name)


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
        return predict(ctx, "/moderate", spec["text"], mode)

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
        return predict(ctx, "/check_turn", spec["user"], spec["bot"])

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


def run_set_prompt(case, ctx: Context):
    client = ctx.fixture("client")
    spec = expand(case["input"])
    table = {"headers": ["text", "label"], "data": spec["examples"]}
    before = counts(ctx.db_path)["templates"]

    def call():
        return predict(ctx, "/set_prompt", table, spec.get("threshold", "needs caution"))

    def probe(examples, prefix):
        _, _, prompt, prediction_id = client.predict("probe after set_prompt", "score", api_name="/moderate")
        check_prompt(prompt, examples, "probe after set_prompt")
        assert prompt.startswith(prefix)
        check_stored(ctx.db_path, [int(prediction_id)], {}, examples)

    try:
        if case["expect"] == "error":
            app_error(call, case)
            assert counts(ctx.db_path)["templates"] == before, "a refused template was saved"
            probe(len(CARD_EXAMPLES), CARD.prefix)  # the card's template is still the one in use
        else:
            preview, message = call()
            assert f": {case['examples']} examples;" in message
            assert preview.endswith(" <text>\nOutput:")
            probe(case["examples"], preview.removesuffix(" <text>\nOutput:"))
    finally:  # whatever happened, the next case starts from the card's template
        card = [[example.text, example.label] for example in CARD_EXAMPLES]
        client.predict({"headers": ["text", "label"], "data": card}, "needs caution", api_name="/set_prompt")
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
    spec = {"status": "any", "label": "any", "disagree": False, "search": "", **expand(case["input"])}

    def call():
        return predict(ctx, "/review", spec["status"], spec["label"], spec["disagree"], spec["search"])

    if case["expect"] == "error":
        app_error(call, case)
        return 0, 0
    table = call()
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
            read_template(path)
        assert case["error_contains"] in str(caught.value)
    else:
        template = read_template(path)
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
            read_labelled(path)
        assert case["error_contains"] in str(caught.value)
    else:
        records = read_labelled(path)
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


def run_feedback_export(case, ctx: Context):
    out = ctx.tmp_path / "export.jsonl"
    run = ctx.cli(feedback_main, "export", "--db", ctx.db_path, "--since", case["input"]["since"], out)
    if case["expect"] == "error":
        cli_error(run, case)
        assert not out.exists() and not Path(f"{out}.tmp").exists()
    else:
        assert run.returncode == 0, run.stderr
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
}


# ------------------------------------------------------------------------------------------------ tests


def test_corpus_covers_every_kind():
    cases = load_corpus()
    assert len(cases) >= 40
    kinds = {case["kind"] for case in cases}
    assert {"empty/whitespace", "1 MB text", "control characters", "invalid UTF-8", "RTL/zero-width",
            "HTML/script", "SQL", "prompt forging", "unknown labels", "oversized JSON body", "wrong types",
            "malformed JSON", "wrong content type", "non-object lines", "bad dates"} <= kinds
    assert {case["target"] for case in cases} == set(RUNNERS)
    for case in cases:
        assert case["expect"] in ("result", "error")
        assert case["expect"] == "result" or "error_contains" in case, case["name"]


@pytest.mark.parametrize("case", params())
def test_hostile_input(case, app_server, request, tmp_path, cli, capfd, caplog):
    url, db_path = app_server
    ctx = Context(request, app_server, tmp_path, cli)
    for name in {"flag": ["target_prediction"], "confirm": ["target_prediction"], "export": ["export_dir"]}.get(
        case["target"], []
    ):
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

