"""The page with several served models: the model choice of Moderate, Chat check and Batch through the real
gradio_client (fake models), and the Compare tab in a real browser on three small checkpoints served as
``python app.py --model ... --model ... --model ... --policy policies/community.toml`` opens them (card, llama-guard
and yes-no): one text through all three side by side, then one judgement saved for all of them."""

import re

import httpx
import pytest
import sqlite_utils
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from playwright.sync_api import expect
from servers import PageClient, running_in_process
from test_browser import SCREENSHOTS, snap
from test_policy_page import COMMUNITY_FILE, EXAMPLES
from test_served_models import COMMUNITY, GUARDS, guard

from feedback.store import FeedbackStore
from moderation.settings import Settings
from moderation.templates import template_for
from playground.server import open_serving, parse_args

FORMAT_MARKS = {"card": "Possible labels:", "llama-guard": "<BEGIN UNSAFE CONTENT CATEGORIES>",
                "yes-no": "Human Question:"}
"""A line of each format's prompt."""


@pytest.fixture(scope="module")
def guarded_app(tmp_path_factory):
    """The app on a fake default (card format, community policy) with a llama-guard and a yes-no fake beside it."""
    with running_in_process(tmp_path_factory.mktemp("guarded"), settings=Settings(template_for("card", COMMUNITY)),
                            others=[guard(name, format) for name, format in GUARDS.items()]) as app:
        yield app


@pytest.fixture
def client(guarded_app):
    """The real gradio_client on the guarded app: a session of its own."""
    client = PageClient(guarded_app.url)
    yield client
    client.close()


def predictions(app) -> list[dict]:
    app.service.writer.flush()
    return list(sqlite_utils.Database(app.db_path).query("select * from predictions order by id"))


def test_the_model_choice_picks_who_labels_in_moderate_chat_and_batch(guarded_app, client, tmp_path):
    before = len(predictions(guarded_app))
    label, _, prompt, _ = client.predict("spam spam", "score", "lg", api_name="/moderate")
    assert {item["label"] for item in label["confidences"]} == set(COMMUNITY.labels)
    assert FORMAT_MARKS["llama-guard"] in prompt
    label, decision, _, _ = client.predict("a nice day", "score", "yn", api_name="/moderate")
    assert decision.startswith("**Label:** threat (its format's rule chose it, not the highest bar) · ")
    assert label["label"] != "threat", "the fake's yes-no answers: Yes to every label, threat the most severe"
    client.predict("where are you?", "go away, harassment", "yn", api_name="/check_turn")
    _, _, prompt, _ = client.predict("spam spam", "score", api_name="/moderate")  # the default when left out
    assert FORMAT_MARKS["card"] in prompt
    rows = predictions(guarded_app)[before:]
    assert [(row["model"], row["role"]) for row in rows] == [("lg", None), ("yn", None), ("yn", "user"),
                                                             ("yn", "bot"), ("fake-moderation", None)]
    assert "where are you?" in rows[3]["prompt"], "the reply is asked with the message it answers"
    texts = tmp_path / "texts.txt"
    texts.write_text("buy spam now\nsee you soon\n", encoding="utf-8")
    _, summary, counts, _ = client.predict(handle_file(str(texts)), "jsonl", True, "lg", api_name="/batch")
    assert summary.startswith("2 of 2 rows labelled")
    assert [row[0] for row in counts["data"]] == [*COMMUNITY.labels, "error"]
    assert [row["model"] for row in predictions(guarded_app)[before + 5:]] == ["lg", "lg"]
    with pytest.raises(AppError, match="not in the list of choices|not served here"):
        client.predict("hello", "score", "gpt-4", api_name="/moderate")
    assert len(predictions(guarded_app)) == before + 7


def test_compare_runs_every_model_and_one_judgement_covers_them(guarded_app, client):
    shown = client.predict("pure hate", "", api_name="/compare_models")
    headings = shown[0::4]
    assert [heading.splitlines()[0] for heading in headings] == ["### fake-moderation", "### lg", "### yn"]
    assert all(re.search(r" format · \*\*\w+\*\* · [\d,]+ ms$", heading) for heading in headings)
    assert [FORMAT_MARKS[format] in prompt for format, prompt in zip(("card", "llama-guard", "yes-no"),
                                                                      shown[3::4])] == [True] * 3
    said = client.predict("user", "hate", "kim", api_name="/judge_compared")
    assert said.startswith("Saved 3 verdicts") and "the correct label is hate" in said
    with pytest.raises(AppError, match="That side was not compared"):
        client.predict("bot", "hate", "kim", api_name="/judge_compared")


def test_compare_checks_a_chat_turn_and_judges_the_reply_for_every_model(guarded_app, client):
    shown = client.predict("where do you live?", "far from you, spam", api_name="/compare_models")
    replies, prompts = shown[2::4], shown[3::4]
    assert all(reply["visible"] and {item["label"] for item in reply["value"]["confidences"]}
               == set(COMMUNITY.labels) for reply in replies), "the reply's label is shown beside the message's"
    assert "where do you live?" not in prompts[0], "the card format judges the reply alone"
    assert all("where do you live?" in prompt and "far from you, spam" in prompt for prompt in prompts[1:])
    said = client.predict("bot", "spam", "kim", api_name="/judge_compared")
    assert said.startswith("Saved 3 verdicts")
    judged = predictions(guarded_app)[-6:]
    verdicts = list(sqlite_utils.Database(guarded_app.db_path).query(
        "select prediction_id from verdicts order by id desc limit 3"))
    assert {row["prediction_id"] for row in verdicts} == {row["id"] for row in judged if row["role"] == "bot"}


def test_judging_before_comparing_is_a_clear_error(guarded_app, client):
    with pytest.raises(AppError, match="Compare a text first"):
        client.predict("user", "hate", "kim", api_name="/judge_compared")


@pytest.mark.browser
def test_three_served_checkpoints_side_by_side_in_a_browser(tmp_path, browser_page, demo_model_dir,
                                                            family_model_dirs, capfd):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    args = parse_args(["--model", f"card={demo_model_dir}", "--model",
                       f"lg={family_model_dirs['llama-guard']},format=llama-guard",
                       "--model", f"yn={family_model_dirs['yes-no']},format=yes-no", "--policy", str(COMMUNITY_FILE)])
    with FeedbackStore(tmp_path / "models.db") as store:
        (default, *others), _ = open_serving(args, store)
    logged = capfd.readouterr().out
    for name, format in [("Default model card", "card"), ("Also serving lg", "llama-guard"),
                         ("Also serving yn", "yes-no")]:
        assert re.search(rf"^{name}: .*, format {format}, policy community, [\d,]+ MiB of weights, loaded in ",
                         logged, re.MULTILINE), logged
    page = browser_page
    with running_in_process(tmp_path, default.moderator, settings=default.settings, others=others) as app:
        page.goto(app.url)
        expect(page.locator("#header")).to_contain_text("Model: card · also serving lg, yn")
        page.get_by_label("Reviewer", exact=True).fill("kim")
        page.get_by_role("tab", name="Compare").click()
        page.get_by_label("Text, or the user's message").fill("buy cheap pills now, click this link")
        page.get_by_role("button", name="Compare", exact=True).click()
        for number, (name, format) in enumerate([("card", "card"), ("lg", "llama-guard"), ("yn", "yes-no")]):
            heading = page.locator(f"#compared-{number}")
            expect(heading).to_contain_text(name)
            expect(heading).to_contain_text(f"{format} format")
            expect(heading).to_contain_text(re.compile(r"\d ms"))
        prompts = page.locator(".cm-content")
        expect(prompts.nth(1)).to_contain_text("<BEGIN UNSAFE CONTENT CATEGORIES>")
        expect(prompts.nth(2)).to_contain_text("Human Question:")
        expect(page.locator("#compared").get_by_role("meter")).to_have_count(3 * len(COMMUNITY.labels))
        snap(page, "compare-01-three-models")
        page.get_by_label("Correct label, for every model").fill("spam")
        page.keyboard.press("Enter")
        page.get_by_role("button", name="Save this judgement for every model").click()
        expect(page.get_by_label("Judgement saved")).to_have_value(re.compile(r"^Saved 3 verdicts .*spam\.$"))
        snap(page, "compare-02-judged")
        for name, format in [("card", "card"), ("lg", "llama-guard"), ("yn", "yes-no")]:  # REST picks each
            answer = httpx.post(app.url + "v1/moderations", json={"input": "see you at the meetup", "model": name})
            assert answer.status_code == 200 and answer.json()["model"] == name
            assert set(answer.json()["results"][0]["category_scores"]) == set(COMMUNITY.labels)
        rows = list(sqlite_utils.Database(app.db_path).query(
            "select predictions.model, predictions.label as said, verdicts.verdict, verdicts.label, verdicts.reviewer "
            "from verdicts join predictions on predictions.id = verdicts.prediction_id order by verdicts.id"))
    assert [row["model"] for row in rows] == ["card", "lg", "yn"]
    assert all(row["label"] == "spam" and row["reviewer"] == "kim" for row in rows)
    assert all(row["verdict"] == ("right" if row["said"] == "spam" else "wrong") for row in rows)


def test_the_prompt_tab_keeps_a_guard_defaults_format(tmp_path):
    """A llama-guard default: a draft with other labels, a published one and a loaded policy file all stay in its
    format (the categories are the policy's labels after the first); its examples are the card format's alone."""
    default = guard("lg", "llama-guard")
    labels = {"headers": ["label", "description"], "data": [["fine", ""], ["rude", "Insults"], ["scam", ""]]}
    with running_in_process(tmp_path, default.moderator, settings=default.settings) as app:
        client = PageClient(app.url)
        try:
            preview, status = client.predict(EXAMPLES, "rude", labels, "shop", False, api_name="/set_prompt")
            assert "S1: rude\nInsults\nS2: scam\n<END UNSAFE CONTENT CATEGORIES>" in preview
            assert "the llama-guard format (no examples)" in status and "policy shop (fine, rude, scam)" in status
            label, _, prompt, _ = client.predict("buy now, a scam", "score", api_name="/moderate")
            assert {item["label"] for item in label["confidences"]} == {"fine", "rude", "scam"}
            assert FORMAT_MARKS["llama-guard"] in prompt and "S2: scam" in prompt
            client.predict(EXAMPLES, "rude", labels, "shop", False, True, api_name="/publish_prompt")
            assert app.service.settings.template.format == "llama-guard"
            assert app.service.settings.policy.labels == ("fine", "rude", "scam")
            *_, loaded_status, loaded_preview = client.predict(handle_file(str(COMMUNITY_FILE)),
                                                              api_name="/load_policy")
            assert loaded_preview.startswith("<|begin_of_text|>") and "S1: spam" in loaded_preview
            assert "the llama-guard format" in loaded_status
        finally:
            client.close()
