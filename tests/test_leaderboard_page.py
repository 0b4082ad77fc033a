"""The Evaluate tab's leaderboard through the real gradio_client, against the app served in this process with three
fake models (the default in the card's format, a llama-guard and a yes-no one beside it, all in the community
policy): each served model ranked on one gold set, each run stored."""

import json

import pytest
from conftest import ROOT
from fakes import fake_moderator
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from servers import PageClient, call_page, running_in_process

from moderation.models import ModelSpec, served_as
from moderation.policy import read_policy
from moderation.settings import Settings
from moderation.templates import template_for

COMMUNITY = read_policy(ROOT / "policies" / "community.toml")
GUARDS = {"lg": "llama-guard", "yn": "yes-no"}
GOLD = [("buy followers, spam link", "spam"), ("see you at the meetup", "ok"), ("you are harassment itself", "hate"),
        ("a threat to all of you", "threat")]
LABELS = {"fake-moderation": ["spam", "ok", "harassment", "threat"], "lg": ["ok"] * 4, "yn": ["threat"] * 4}
"""What each fake model labels the gold texts: the default (card format) the first of the policy's labels a text
names (else ``ok``), the llama-guard fake always ``ok``, the yes-no fake always ``threat``."""


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    others = [served_as(ModelSpec(name, None, format=format, policy=COMMUNITY), fake_moderator(name))
              for name, format in GUARDS.items()]
    with running_in_process(tmp_path_factory.mktemp("leaderboard"), settings=Settings(template_for("card", COMMUNITY)),
                            others=others) as app:
        yield app


@pytest.fixture(scope="module")
def client(app):
    client = PageClient(app.url)
    yield client
    client.close()


@pytest.fixture
def gold_file(tmp_path):
    path = tmp_path / "community-gold.jsonl"
    path.write_text("".join(json.dumps({"text": text, "label": label}) + "\n" for text, label in GOLD))
    return handle_file(str(path))


def test_every_served_model_is_ranked_with_its_stored_run_and_its_wrong_labels(client, app, gold_file):
    summary, board, wrong, run_a, run_b = client.predict("a file", gold_file, api_name="/leaderboard")
    assert summary == "**3 models on the community-gold.jsonl** (4 texts), best macro-F1 first:"
    runs = {run["model"]: run for run in app.service.runs(3)}
    assert sorted(runs) == ["fake-moderation", "lg", "yn"], "one run stored per served model"
    assert board["headers"] == ["model", "accuracy", "macro-F1", "AUPRC flagged", "benign flags", "p50 ms (one text)",
                                "labels/s", "run"]
    assert sorted(row[0] for row in board["data"]) == sorted(runs)
    for model, accuracy, macro_f1, _, benign, p50, speed, run in board["data"]:
        stored = runs[model]
        assert run == f"#{stored['id']}"
        right = sum(label == gold for label, (_, gold) in zip(LABELS[model], GOLD))
        assert accuracy == f"{stored['metrics']['accuracy']:.1%}" == f"{right / len(GOLD):.1%}"
        assert macro_f1 == f"{stored['metrics']['macro_f1']:.3f}"
        assert benign == str(sum(label != "ok" and gold == "ok" for label, (_, gold) in zip(LABELS[model], GOLD)))
        assert float(p50) >= 0 and float(speed) > 0
    names = [row[0] for row in board["data"]]
    assert names[0] == "fake-moderation" and board["data"][0][1] == "75.0%", "best macro-F1 first"
    macro = [float(row[2]) for row in board["data"]]
    assert macro == sorted(macro, reverse=True)
    assert wrong["headers"] == ["text", "gold", *names]
    assert wrong["data"] == [[text, gold, *(LABELS[name][number] for name in names)]
                             for number, (text, gold) in enumerate(GOLD)], "each text some model gets wrong"
    best, runner_up = (runs[name]["id"] for name in names[:2])
    assert (run_a["value"], run_b["value"]) == (runner_up, best), "the pickers hold the two best runs"
    assert {choice[1] for choice in run_b["choices"]} >= {run["id"] for run in runs.values()}


def test_the_board_shows_the_figures_the_service_ranks(client, app, gold_file):
    _, board, _, _, _ = client.predict("a file", gold_file, api_name="/leaderboard")
    ranked = app.service.leaderboard(app.service.gold_set("a file", gold_file["path"]))
    assert [row[:5] for row in board["data"]] == [
        [row["model"], f"{row['accuracy']:.1%}", f"{row['macro_f1']:.3f}",
         "-" if row["auprc_flagged"] is None else f"{row['auprc_flagged']:.3f}", str(row["benign_flags"])]
        for row in ranked["rows"]]


def test_a_gold_set_in_another_policy_is_a_clear_error_and_stores_no_run(client, app):
    before = len(app.service.runs())
    with pytest.raises(AppError, match="The held-out set is labelled in the card's policy, not in 'community'"):
        client.predict("held-out set", None, api_name="/leaderboard")
    with pytest.raises(AppError, match="Upload a gold file first"):
        client.predict("a file", None, api_name="/leaderboard")
    assert len(app.service.runs()) == before


def test_a_file_of_the_server_sent_raw_is_refused_and_stores_no_run(app):
    before = len(app.service.runs())
    event, error = call_page(app.url, "/leaderboard", "a file",
                             {"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}})
    assert event == "error" and "Upload the file through the page" in error
    assert len(app.service.runs()) == before


def test_one_served_model_is_a_one_row_board(fake_app):
    client = PageClient(fake_app.url)
    summary, board, wrong, run_a, run_b = client.predict("held-out set", None, api_name="/leaderboard")
    client.close()
    run = fake_app.service.runs(1)[0]
    assert summary == "**1 model on the held-out set** (129 texts), best macro-F1 first:"
    assert [row[0] for row in board["data"]] == ["fake-moderation"] and board["data"][0][-1] == f"#{run['id']}"
    assert board["data"][0][1] == f"{run['metrics']['accuracy']:.1%}"
    assert wrong["headers"] == ["text", "gold", "fake-moderation"]
    assert (run_a["value"], run_b["value"]) == (None, run["id"])
