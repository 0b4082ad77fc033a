"""Several models served at once, on the fake backend: REST's ``model`` picks each (404 listing them for another),
``GET /v1/models`` lists them with their policies, a chat turn's reply reaches a guard format with the message it
answers, one text goes through every model (Compare), one judgement covers every model's prediction (all written
or none), and the leaderboard ranks the served models on one gold set, each run stored."""

import asyncio

import pytest
import sqlite_utils
from conftest import ROOT
from fakes import fake_moderator
from fastapi.testclient import TestClient
from servers import in_own_thread, make_service

from moderation.errors import InvalidInput
from moderation.evaluate import GoldSet
from moderation.models import ModelSpec, served_as
from moderation.policy import CARD, read_policy
from moderation.prompt import normalize_text
from moderation.settings import Settings
from moderation.templates import template_for
from playground.server import create_app

COMMUNITY = read_policy(ROOT / "policies" / "community.toml")
GUARDS = {"lg": "llama-guard", "yn": "yes-no"}


def guard(name: str, format: str):
    """A fake model served as ``name`` in ``format`` and the community policy."""
    return served_as(ModelSpec(name, None, format=format, policy=COMMUNITY), fake_moderator(name))


@pytest.fixture
def served(tmp_path):
    """A service whose default is the fake in the card's format, with a llama-guard and a yes-no fake beside it, all
    in the community policy."""
    service = make_service(tmp_path, settings=Settings(template_for("card", COMMUNITY)),
                           others=[guard(name, format) for name, format in GUARDS.items()])
    yield service
    service.close()


def stored(service, table: str) -> list[dict]:
    service.writer.flush()
    return list(sqlite_utils.Database(service.store.path)[table].rows)


def test_rest_model_picks_each_served_model_in_its_format_and_policy(served):
    api = TestClient(create_app(served))
    default = api.post("/v1/moderations", json={"input": "I will hurt you"}).json()
    assert default["model"] == "fake-moderation"
    assert set(default["results"][0]["category_scores"]) == set(COMMUNITY.labels)
    for name, format in GUARDS.items():
        answer = api.post("/v1/moderations", json={"input": "I will hurt you", "model": name})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["model"] == name
        assert set(body["results"][0]["category_scores"]) == set(COMMUNITY.labels)
        assert sum(body["results"][0]["category_scores"].values()) == pytest.approx(1) or format == "yes-no"
    rows = stored(served, "predictions")
    assert [row["model"] for row in rows] == ["fake-moderation", "lg", "yn"]
    assert {row["template"] for row in rows[1:]} == {served.served(name)[1].template.id for name in GUARDS}


def test_an_unknown_model_gets_404_listing_the_served_ones_and_records_nothing(served):
    api = TestClient(create_app(served))
    for model in ("gpt-4", "", "LG"):
        answer = api.post("/v1/moderations", json={"input": "hello", "model": model})
        assert answer.status_code == 404
        error = answer.json()["error"]
        assert error["param"] == "model" and "fake-moderation, lg, yn" in error["message"]
    chat = api.post("/v1/moderations/chat", json={"user": "hi", "bot": "hello", "model": "nope"})
    assert chat.status_code == 404 and "lg, yn" in chat.json()["error"]["message"]
    assert stored(served, "predictions") == []


def test_v1_models_lists_every_served_model_with_its_policy_the_default_first(served):
    data = TestClient(create_app(served)).get("/v1/models").json()["data"]
    assert [(model["id"], model["role"], model["default"], model["policy"]["name"]) for model in data] == [
        ("fake-moderation", "serving", True, COMMUNITY.name),
        ("lg", "serving", False, COMMUNITY.name), ("yn", "serving", False, COMMUNITY.name)]
    assert data[1]["policy"]["labels"] == list(COMMUNITY.labels)


@pytest.mark.parametrize("name", list(GUARDS))
def test_a_chat_turn_shows_a_guard_the_message_the_reply_answers(served, name):
    api = TestClient(create_app(served))
    answer = api.post("/v1/moderations/chat", json={"user": "where do you live?", "bot": "far from you, idiot",
                                                   "model": name}).json()
    assert answer["model"] == name
    user, bot = stored(served, "predictions")
    assert "where do you live?" in bot["prompt"] and "far from you, idiot" in bot["prompt"]
    assert "far from you, idiot" not in user["prompt"], "the user's message is judged alone"
    moderator, settings = served.served(name)
    assert bot["prompt"] == settings.template.assemble("far from you, idiot", context="where do you live?")
    assert (user["role"], bot["role"]) == ("user", "bot")


def test_a_chat_turn_through_the_service_and_its_batcher_keeps_each_reply_with_its_message(served):
    """Turns arriving together share forward passes, and each reply is still asked with its own user message."""
    turns = [(f"question {number}?", f"answer {number}") for number in range(6)]

    async def together():
        return await asyncio.gather(*(served.label_soon([user, bot], fields=["user", "bot"], roles=["user", "bot"],
                                                        served=served.served("lg")) for user, bot in turns))

    for (user, bot), (_, reply) in zip(turns, in_own_thread(asyncio.run, together())):
        assert reply.prompt == served.served("lg")[1].template.assemble(bot, context=user)


def test_the_card_format_reads_no_context(service):
    turn, _, bot = service.check_turn("hello there", "you idiot")
    assert "hello there" not in bot.result.prompt
    assert turn.bot.label == "probably needs caution"


def test_one_text_goes_through_every_served_model_recorded_and_timed(served):
    compared = served.side_by_side(["I will hurt you"])
    assert [entry.model for entry in compared] == ["fake-moderation", "lg", "yn"]
    assert all(entry.seconds > 0 and len(entry.predictions) == 1 for entry in compared)
    assert [row["id"] for row in stored(served, "predictions")] == [entry.predictions[0].id for entry in compared]
    turn = served.side_by_side(["hi", "bye"], roles=["user", "bot"])
    assert all([prediction.result.text for prediction in entry.predictions] == ["hi", "bye"] for entry in turn)


def test_one_judgement_covers_every_models_prediction(served):
    compared = served.side_by_side(["pure hate here"])
    ids = [entry.predictions[0].id for entry in compared]
    labels = {entry.model: entry.predictions[0].result.label for entry in compared}
    assert labels == {"fake-moderation": "hate", "lg": "ok", "yn": "threat"}, "the fakes' labels: see tests/fakes.py"
    for correct in ("hate", "spam"):  # "right" where a model gave it, a correction elsewhere
        verdicts = served.judge_all(ids, correct, reviewer="kim")
        assert [(verdict["verdict"], verdict["label"]) for verdict in verdicts] == [
            ("right" if labels[name] == correct else "wrong", correct) for name in served.model_names]
    assert len(stored(served, "verdicts")) == 3, "a second judgement replaces the reviewer's first"


def test_a_judgement_one_policy_lacks_is_refused_and_writes_nothing(tmp_path):
    """The default in the card's policy, a guard in the community one: no label is in both."""
    service = make_service(tmp_path, others=[guard("lg", "llama-guard")])
    try:
        ids = [entry.predictions[0].id for entry in service.side_by_side(["some text"])]
        with pytest.raises(InvalidInput, match=f"#{ids[1]}.*needs caution"):
            service.judge_all(ids, "needs caution", reviewer="kim")
        with pytest.raises(InvalidInput, match="Compare a text first"):
            service.judge_all([], "spam", reviewer="kim")
        with pytest.raises(InvalidInput, match="Choose the correct label first"):
            service.judge_all(ids, "", reviewer="kim")
        with pytest.raises(InvalidInput, match="No prediction 999"):
            service.judge_all([*ids, 999], "needs caution", reviewer="kim")
        assert stored(service, "verdicts") == []
    finally:
        service.close()


def test_the_leaderboard_ranks_every_served_model_and_stores_each_run(tmp_path):
    service = make_service(tmp_path, settings=Settings(template_for("yes-no", COMMUNITY)),
                           others=[guard("lg", "llama-guard")])
    try:
        texts = ["spam spam", "harassment here", "just a nice day", "hate speech"]
        labels = ["spam", "harassment", COMMUNITY.labels[0], "hate"]
        gold = GoldSet("a gold file", tuple((normalize_text(text), label) for text, label in zip(texts, labels)),
                       policy=COMMUNITY)
        board = service.leaderboard(gold)
        assert {row["model"] for row in board["rows"]} == {"fake-moderation", "lg"}
        assert board["gold"] == {"name": "a gold file", "size": 4}
        runs = service.runs()
        assert sorted(run["model"] for run in runs) == ["fake-moderation", "lg"]
        assert {row["run"] for row in board["rows"]} == {run["id"] for run in runs}
    finally:
        service.close()


def test_a_model_in_another_policy_refuses_the_leaderboard_before_any_run_is_stored(tmp_path):
    service = make_service(tmp_path, settings=Settings(template_for("card", COMMUNITY)),
                           others=[guard("lg", "llama-guard"),
                                   served_as(ModelSpec("card-guard", None, format="llama-guard", policy=CARD),
                                             fake_moderator("card-guard"))])
    try:
        gold = GoldSet("a gold file", ((normalize_text("spam spam"), "spam"),), policy=COMMUNITY)
        with pytest.raises(InvalidInput) as refused:
            service.leaderboard(gold)
        assert service.runs() == [], "no model's run is stored"
        assert "the policy of the model 'card-guard' is 'prosocial'" in str(refused.value)
    finally:
        service.close()
