"""The page's API through the real gradio_client, against the app served in this process on the fake backend."""

import json
import time

import httpx
import pytest
import sqlite_utils
from fakes import expected_scores, fake_moderator
from gradio_client.exceptions import AppError
from servers import PageClient, running_in_process

from feedback.splits import TEST_SHARE, split_for
from moderation.labels import LABELS
from moderation.policy import CARD
from moderation.templates import PromptTemplate

TWO_EXAMPLES = [["Have a lovely day", "casual"], ["Get lost, nobody wants you here", "probably needs caution"]]
CARD = [[example.text, example.label] for example in CARD.examples]


def table(rows):
    return {"headers": ["text", "label"], "data": rows}


@pytest.fixture(scope="module")
def client(fake_app):
    return PageClient(fake_app.url)


def moderate(client, text, mode="score"):
    label, decision, prompt, prediction_id = client.predict(text, mode, api_name="/moderate")
    return label, decision, prompt, prediction_id


def other_label(label):
    return next(candidate for candidate in LABELS if candidate != label)


def verdict_id(saved: str) -> int:
    return int(saved.split("#")[1].split()[0])


def test_every_event_is_in_the_api(client):
    endpoints = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/moderate", "/confirm", "/flag", "/check_turn", "/confirm_side", "/flag_side", "/review", "/accept",
            "/discard", "/relabel", "/export", "/set_prompt", "/publish_prompt", "/drop_draft"} <= endpoints


def test_moderate_flag_review_accept_export(client, fake_app):
    text = "My neighbour's dog barks all night and I hate it"
    label, decision, prompt, prediction_id = moderate(client, text)
    assert prompt == PromptTemplate().assemble(text)
    confidences = {item["label"]: item["confidence"] for item in label["confidences"]}
    assert confidences == pytest.approx(expected_scores(text))
    assert label["label"] == "possibly needs caution"
    assert decision == "**Flagged:** yes · **Would intervene:** no (threshold: needs caution)"

    saved = client.predict(prediction_id, "probably needs caution", "too mild", "ana", api_name="/flag")
    assert saved == f"Saved verdict #{verdict_id(saved)} on prediction #{prediction_id}: wrong, probably needs caution."
    db = sqlite_utils.Database(fake_app.db_path)
    row = db["verdicts"].get(verdict_id(saved))
    assert (row["prediction_id"], row["verdict"], row["label"], row["note"], row["reviewer"], row["status"]) == (
        prediction_id, "wrong", "probably needs caution", "too mild", "ana", "pending")

    rows, checked = client.predict("pending", "any", True, "neighbour", api_name="/review")
    assert [r[1] for r in rows["data"]] == [verdict_id(saved)] and rows["data"][0][2] == text
    assert checked.startswith("No row checked")
    assert rows["headers"][5] == "split" and rows["data"][0][5] == "", "a pending verdict's text has no split yet"
    assert client.predict(verdict_id(saved), "", "cy", api_name="/accept") == (
        f'Verdict #{verdict_id(saved)} ("My neighbour\'s dog barks all night and I…") is now accepted.')
    assert db["verdicts"].get(verdict_id(saved))["status"] == "accepted"
    rows, _ = client.predict("accepted", "any", True, "neighbour", api_name="/review")
    assert rows["data"][0][5] == split_for(text, TEST_SHARE), "accepted, the text has its split"

    path, count = client.predict("oig", "accepted", "", api_name="/export")
    lines = [json.loads(line) for line in open(path, encoding="utf-8")]
    assert {"text": f"Input: {text}\nOutput: probably needs caution", "split": split_for(text, TEST_SHARE),
            "policy": {"name": "prosocial", "id": PromptTemplate().policy.id}} in lines
    assert count == f"{len(lines)} texts exported as oig."


def test_label_is_right_relabel_and_discard(client, fake_app):
    label, _, _, prediction_id = moderate(client, "Can you recommend a good pasta recipe?")
    saved = client.predict(prediction_id, "", "bo", api_name="/confirm")
    db = sqlite_utils.Database(fake_app.db_path)
    assert db["verdicts"].get(verdict_id(saved))["label"] == label["label"] == "casual"
    assert client.predict(verdict_id(saved), "needs caution", "", "cy", api_name="/relabel").endswith(
        '("Can you recommend a good pasta recipe?") is now labelled needs caution (wrong).')
    client.predict(verdict_id(saved), "", "cy", api_name="/discard")
    assert db["verdicts"].get(verdict_id(saved))["status"] == "discarded"


@pytest.mark.parametrize("text", ["", "   \n "])
def test_bad_text_is_a_clear_error(client, text):
    with pytest.raises(AppError, match="Text: The text is empty"):
        client.predict(text, "score", api_name="/moderate")


def test_bad_verdicts_are_refused_and_write_nothing(client, fake_app):
    label, _, _, prediction_id = moderate(client, "I keep failing my exams")
    db = sqlite_utils.Database(fake_app.db_path)
    before = db["verdicts"].count
    refusals = [
        ((prediction_id, label["label"], "", "cy"), "/flag", "Label is right"),
        ((999999, "", "cy"), "/confirm", "No prediction 999999"),
        ((prediction_id + 0.5, "", "cy"), "/confirm", "whole numbers"),
        ((prediction_id, None, "", "cy"), "/flag", "correct label"),
    ]
    for args, endpoint, message in refusals:
        with pytest.raises(AppError, match=message):
            client.predict(*args, api_name=endpoint)
    with pytest.raises(AppError, match="Bad date"):
        client.predict("oig", "any", "last tuesday", api_name="/export")
    assert db["verdicts"].count == before


def test_a_verdict_without_a_name_is_saved_as_anonymous(client, fake_app):
    label, _, _, prediction_id = moderate(client, "I keep losing my keys")
    db = sqlite_utils.Database(fake_app.db_path)
    for blank in ("", "  \t", "\u200b"):
        saved = client.predict(prediction_id, other_label(label["label"]), "", blank, api_name="/flag")
        assert db["verdicts"].get(verdict_id(saved))["reviewer"] == "anonymous"
    assert db["verdicts"].count_where("prediction_id = ?", [prediction_id]) == 1, "one verdict per reviewer"


def test_generate_mode_is_recorded_with_its_text(client, fake_app):
    label, decision, _, prediction_id = moderate(client, "gibberish please", mode="generate")
    prediction = sqlite_utils.Database(fake_app.db_path)["predictions"].get(prediction_id)
    assert (prediction["mode"], prediction["label"], prediction["generated"]) == ("generate", None, " blah blah")
    assert label["label"] == "no label" and "no label (the model's text is none of the policy's labels)" in decision


def test_a_draft_belongs_to_its_session_until_it_is_published(fake_app):
    mine, theirs = PageClient(fake_app.url), PageClient(fake_app.url)
    draft = PromptTemplate.from_examples([{"text": t, "label": lab} for t, lab in TWO_EXAMPLES])
    try:
        preview, status = mine.predict(table(TWO_EXAMPLES), "never", api_name="/set_prompt")
        assert preview == draft.layout() and f"Template {draft.id} (this session's draft): 2 examples;" in status
        _, decision, prompt, prediction_id = moderate(mine, "I will hurt you")
        assert prompt == draft.assemble("I will hurt you") and "(threshold: never)" in decision
        stored = sqlite_utils.Database(fake_app.db_path)["predictions"].get(prediction_id)
        assert stored["template"] == draft.id
        assert moderate(theirs, "I will hurt you")[2] == PromptTemplate().assemble("I will hurt you")
        api = httpx.post(fake_app.url + "v1/moderations", json={"input": "I will hurt you"}).json()
        assert api["results"][0]["intervene"] is True, "the API must not use a session's draft"
        with pytest.raises(AppError, match="Unknown label 'fine'"):
            mine.predict(table([["hi", "fine"]]), "never", api_name="/set_prompt")
        assert moderate(mine, "still the draft")[2] == draft.assemble("still the draft")

        preview, status = theirs.predict(table(TWO_EXAMPLES), "casual", api_name="/publish_prompt")
        assert "the server's default" in status and fake_app.service.settings.template == draft
        api = httpx.post(fake_app.url + "v1/moderations", json={"input": "See you"}).json()
        assert api["results"][0]["intervene"] is True, "published at casual, everything intervenes"
        mine.predict(api_name="/drop_draft")
        assert "(threshold: casual)" in moderate(mine, "See you")[1]
    finally:
        theirs.predict(table(CARD), "needs caution", api_name="/publish_prompt")


def test_chat_check_flags_either_side_with_its_role(client, fake_app):
    user_label, bot_label, decision, reply, user_id, bot_id = client.predict(
        "Where can I buy a cheap bike?", "I will hurt you", api_name="/check_turn")
    assert decision == "**Intervened:** the bot side reached the threshold (threshold: needs caution)."
    assert reply == fake_app.service.settings.intervention
    db = sqlite_utils.Database(fake_app.db_path)
    assert (db["predictions"].get(user_id)["role"], db["predictions"].get(bot_id)["role"]) == ("user", "bot")
    saved = client.predict("bot", user_id, bot_id, "needs caution", "", "eve", api_name="/flag_side")
    assert db["verdicts"].get(verdict_id(saved))["prediction_id"] == bot_id
    saved = client.predict("user", user_id, bot_id, "", "eve", api_name="/confirm_side")
    assert saved.endswith(f"on prediction #{user_id}: right, casual.")
    with pytest.raises(AppError, match="Bot reply: The text is empty"):
        client.predict("hi", " ", api_name="/check_turn")


def test_a_bug_in_the_page_is_reported_as_a_server_failure(tmp_path, caplog):
    with running_in_process(tmp_path, fake_moderator(bug=ValueError("index out of range in packing"))) as app:
        client = PageClient(app.url)
        with pytest.raises(AppError) as failed:
            client.predict("hello", "score", api_name="/moderate")
    assert "Something went wrong on the server" in str(failed.value)
    assert "packing" not in str(failed.value)
    assert any("index out of range in packing" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


def test_a_fractional_id_is_refused_never_rounded_to_another_verdict(client, fake_app):
    first = verdict_id(client.predict(moderate(client, "first of two")[3], "", "ana", api_name="/confirm"))
    second = verdict_id(client.predict(moderate(client, "second of two")[3], "", "ana", api_name="/confirm"))
    assert second == first + 1
    with pytest.raises(AppError, match="verdict ids are whole numbers"):
        client.predict(first + 0.7, "", "cy", api_name="/accept")
    db = sqlite_utils.Database(fake_app.db_path)
    assert [db["verdicts"].get(n)["status"] for n in (first, second)] == ["pending", "pending"]


def test_a_choice_not_offered_is_a_message_and_no_traceback(client, capfd):
    capfd.readouterr()
    with pytest.raises(AppError, match="Mode: 'fast' is not in the list of choices; choose one of: score, generate."):
        client.predict("hello", "fast", api_name="/moderate")
    with pytest.raises(AppError, match="Prediction #1 is in the policy 'prosocial': Unknown label 'fine': choose one "
                                       "of casual, needs caution, needs intervention, possibly needs caution"):
        client.predict(1, "fine", "", "ana", api_name="/flag")
    time.sleep(0.1)  # Gradio writes a failed event's traceback just after answering
    assert "Traceback" not in capfd.readouterr().err
