"""The playground through gradio_client, against the real server and its SQLite file."""

import json
import math

import pytest
import sqlite_utils
from gradio_client import Client
from gradio_client.exceptions import AppError

from moderation.labels import LABELS
from moderation.prompt import CARD_EXAMPLES, PromptTemplate


@pytest.fixture(scope="module")
def client(app_server):
    url, _ = app_server
    return Client(url, verbose=False)


def moderate(client, text, mode="score"):
    label, decision, prompt, prediction_id = client.predict(text, mode, api_name="/moderate")
    return label, decision, prompt, int(prediction_id)


def other_label(label):
    return next(candidate for candidate in LABELS if candidate != label)


def test_every_event_is_in_the_api(client):
    endpoints = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    expected = {"/moderate", "/confirm", "/flag", "/check_turn", "/confirm_side", "/flag_side", "/review", "/accept",
                "/discard", "/relabel", "/export", "/set_prompt"}
    assert expected <= endpoints


def test_moderate_flag_review_accept_export(client, app_server, tmp_path):
    _, db_path = app_server
    text = "My neighbour's dog barks all night and I could scream"
    label, decision, prompt, prediction_id = moderate(client, text)
    assert prompt == PromptTemplate().assemble(text)
    confidences = {item["label"]: item["confidence"] for item in label["confidences"]}
    assert set(confidences) == set(LABELS) and math.isclose(sum(confidences.values()), 1, abs_tol=1e-6)
    assert label["label"] == max(confidences, key=confidences.get)
    assert "Would intervene" in decision

    correct = other_label(label["label"])
    saved = client.predict(prediction_id, correct, "too harsh", "ana", api_name="/flag")
    assert saved.startswith("Saved verdict #") and correct in saved
    verdict_id = int(saved.split("#")[1].split()[0])

    db = sqlite_utils.Database(db_path)
    row = db["verdicts"].get(verdict_id)
    assert (row["prediction_id"], row["verdict"], row["label"], row["note"], row["reviewer"], row["status"]) == (
        prediction_id, "wrong", correct, "too harsh", "ana", "pending")
    prediction = db["predictions"].get(prediction_id)
    assert prediction["text"] == text and prediction["label"] == label["label"] and prediction["prompt"] == prompt
    assert json.loads(prediction["scores"]) == pytest.approx(confidences)

    table = client.predict("pending", "any", True, "neighbour", api_name="/review")
    assert [r[0] for r in table["data"]] == [verdict_id]
    assert table["data"][0][2] == text

    assert "accepted" in client.predict(verdict_id, api_name="/accept")
    assert db["verdicts"].get(verdict_id)["status"] == "accepted"

    path, count = client.predict("oig", "accepted", "", api_name="/export")
    lines = [json.loads(line) for line in open(path, encoding="utf-8")]
    assert {"text": f"Input: {text}\nOutput: {correct}"} in lines
    assert count == f"{len(lines)} verdicts exported as oig."


def test_label_is_right_and_relabel_and_discard(client, app_server):
    _, db_path = app_server
    label, _, _, prediction_id = moderate(client, "Can you recommend a good pasta recipe?")
    saved = client.predict(prediction_id, "", "bo", api_name="/confirm")
    verdict_id = int(saved.split("#")[1].split()[0])
    db = sqlite_utils.Database(db_path)
    assert db["verdicts"].get(verdict_id)["label"] == label["label"]
    new = other_label(label["label"])
    assert new in client.predict(verdict_id, new, api_name="/relabel")
    assert db["verdicts"].get(verdict_id)["verdict"] == "wrong"
    client.predict(verdict_id, api_name="/discard")
    assert db["verdicts"].get(verdict_id)["status"] == "discarded"
    path, _ = client.predict("full", "discarded", "", api_name="/export")
    rows = [json.loads(line) for line in open(path, encoding="utf-8")]
    assert any(row["id"] == verdict_id and row["label"] == new and set(row["scores"]) == set(LABELS) for row in rows)


@pytest.mark.parametrize(
    "call, message",
    [
        (("", "score"), "empty"),
        (("   \n ", "score"), "empty"),
    ],
)
def test_bad_text_is_a_clear_error(client, call, message):
    with pytest.raises(AppError, match=message):
        client.predict(*call, api_name="/moderate")


def test_bad_verdicts_are_refused_and_write_nothing(client, app_server):
    _, db_path = app_server
    label, _, _, prediction_id = moderate(client, "I keep failing my exams and feel useless")
    db = sqlite_utils.Database(db_path)
    before = db["verdicts"].count
    with pytest.raises(AppError, match="reviewer"):
        client.predict(prediction_id, other_label(label["label"]), "", "  ", api_name="/flag")
    with pytest.raises(AppError, match="Label is right"):
        client.predict(prediction_id, label["label"], "", "cy", api_name="/flag")
    with pytest.raises(AppError, match="No prediction 999999"):
        client.predict(999999, "", "cy", api_name="/confirm")
    with pytest.raises(AppError, match="correct label"):
        client.predict(prediction_id, None, "", "cy", api_name="/flag")
    with pytest.raises(AppError, match="Bad date"):
        client.predict("oig", "any", "last tuesday", api_name="/export")
    assert db["verdicts"].count == before


def test_generate_mode_is_recorded_with_its_text(client, app_server):
    _, db_path = app_server
    label, _, _, prediction_id = moderate(client, "Good morning, how are you?", mode="generate")
    prediction = sqlite_utils.Database(db_path)["predictions"].get(prediction_id)
    assert prediction["mode"] == "generate" and isinstance(prediction["generated"], str)
    assert (prediction["label"] or "no label") == label["label"]


def test_prompt_tab_changes_the_next_moderation(client, app_server):
    _, db_path = app_server
    examples = [["Have a lovely day", "casual"], ["Get lost, nobody wants you here", "probably needs caution"]]
    try:
        preview, message = client.predict(
            {"headers": ["text", "label"], "data": examples}, "never", api_name="/set_prompt"
        )
        template = PromptTemplate.from_examples([{"text": t, "label": lab} for t, lab in examples])
        assert template.id in message and preview.startswith(template.prefix)
        _, decision, prompt, prediction_id = moderate(client, "See you tomorrow")
        assert prompt == template.assemble("See you tomorrow")
        assert "Would intervene:** no (threshold: never)" in decision
        stored = sqlite_utils.Database(db_path)["predictions"].get(prediction_id)
        assert stored["template"] == template.id
        with pytest.raises(AppError, match="Unknown label"):
            client.predict({"headers": ["text", "label"], "data": [["hi", "fine"]]}, "never", api_name="/set_prompt")
        assert moderate(client, "See you tomorrow")[2] == template.assemble("See you tomorrow")
    finally:
        card = [[e.text, e.label] for e in CARD_EXAMPLES]
        client.predict({"headers": ["text", "label"], "data": card}, "needs caution", api_name="/set_prompt")


def test_chat_check_flags_either_side_with_its_role(client, app_server):
    _, db_path = app_server
    user_label, bot_label, decision, reply, user_id, bot_id = client.predict(
        "Where can I buy a cheap bike?", "Try the second-hand market on Sundays.", api_name="/check_turn"
    )
    intervened = decision.startswith("**Intervened")
    assert (reply == "Try the second-hand market on Sundays.") != intervened
    db = sqlite_utils.Database(db_path)
    assert db["predictions"].get(int(user_id))["role"] == "user"
    assert db["predictions"].get(int(bot_id))["role"] == "bot"
    saved = client.predict("bot", user_id, bot_id, other_label(bot_label["label"]), "", "eve", api_name="/flag_side")
    verdict_id = int(saved.split("#")[1].split()[0])
    assert db["verdicts"].get(verdict_id)["prediction_id"] == int(bot_id)
    saved = client.predict("user", user_id, bot_id, "", "eve", api_name="/confirm_side")
    assert f"on prediction #{int(user_id)}: right, {user_label['label']}" in saved
