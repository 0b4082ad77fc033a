"""The Evaluate tab and the Prompt tab's workbench through the real gradio_client, against the app served in this
process on the fake backend."""

import json

import pytest
import sqlite_utils
from fakes import label_for
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from servers import PageClient

from moderation.evaluate import heldout_gold
from moderation.evaluate.intervals import run_intervals
from moderation.templates import PromptTemplate

DRAFT = {"headers": ["text", "label"],
         "data": [["Have a lovely day", "casual"], ["I will hurt you", "needs intervention"]]}


@pytest.fixture(scope="module")
def client(fake_app):
    return PageClient(fake_app.url)


def gold_file(tmp_path, items, name="gold.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps({"text": text, "label": label}) + "\n" for text, label in items))
    return handle_file(str(path))


def runs(fake_app):
    return sqlite_utils.Database(fake_app.db_path)["evaluation_runs"].count


def test_the_tab_and_the_workbench_are_in_the_api(client):
    endpoints = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/evaluate", "/runs", "/compare_runs", "/evaluate_draft"} <= endpoints


def test_an_evaluation_is_stored_and_shown_as_three_figures(client, fake_app):
    summary, confusion, f1, reliability, run_a, run_b = client.predict("held-out set", None, "score",
                                                                       api_name="/evaluate")
    run = fake_app.service.runs(1)[0]
    assert run_b["value"] == run["id"] and run_b["choices"][0][1] == run["id"]
    assert summary.startswith(f"**Run #{run['id']}**: accuracy **{run['metrics']['accuracy']:.1%}** [")
    items = fake_app.service.store.evaluations.get(run["id"])["items"]
    low, high = run_intervals(heldout_gold().labels, [item["label"] for item in items])["accuracy"]
    assert f"[{low:.1%}, {high:.1%}]" in summary and "(on 129 texts)" in summary
    assert "score on held-out set (129 texts)" in summary
    heatmap = json.loads(confusion["plot"])["data"][0]
    assert heatmap["type"] == "heatmap" and heatmap["z"] == run["metrics"]["confusion"]["matrix"]
    assert [bar["f1"] for bar in run["metrics"]["per_label"].values()] == json.loads(f1["plot"])["data"][0]["y"]
    assert json.loads(reliability["plot"])["data"][1]["y"] == [b["accuracy"] for b in run["metrics"]["calibration"]]
    assert [item["label"] for item in fake_app.service.store.evaluations.get(run["id"])["items"]] == [
        label_for(text) for text in heldout_gold().texts]


def test_an_uploaded_file_against_another_mode_shows_the_flips(client, fake_app, tmp_path):
    upload = gold_file(tmp_path, [("You idiot", "probably needs caution"), ("gibberish again", "casual"),
                                  ("fine thanks", "casual")])
    first = client.predict("a file", upload, "score", api_name="/evaluate")
    second = client.predict("a file", upload, "generate", api_name="/evaluate")
    a, b = second[4]["value"], second[5]["value"]
    assert (a, b) == (first[5]["value"], first[5]["value"] + 1), "the pickers hold the previous run and this one"
    assert second[3] is None, "generate mode has no probabilities to draw"
    verdict, flipped, figures = client.predict(a, b, api_name="/compare_runs")
    assert flipped["data"] == [["gibberish again", "casual", "casual", "no label", "broken"]]
    assert verdict.startswith(f"**B fixes 0 and breaks 1** of 3 texts on the gold.jsonl against A (run #{a} → #{b}")
    assert ["accuracy", "1.000", "0.667", "-0.333"] in figures["data"]
    pickers = client.predict(None, None, api_name="/runs")
    assert [choice[1] for choice in pickers[0]["choices"]][:2] == [b, a]


@pytest.mark.parametrize("content, message", [
    ('{"text": "fine", "label": "casual"}\n{"text": "rude", "label": "offensive"}\n',
     r"bad\.jsonl: line 2: Unknown label 'offensive'"),
    ('{"text": "fine", "label": "casual"}\n{"text": "cut off', r"bad\.jsonl: line 2: not valid JSON"),
    ("\n", r"bad\.jsonl holds no labelled texts"),
])
def test_a_bad_gold_file_is_a_clear_error_and_no_run(client, fake_app, tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    before = runs(fake_app)
    with pytest.raises(AppError, match=message):
        client.predict("a file", handle_file(str(path)), "score", api_name="/evaluate")
    assert runs(fake_app) == before


def test_a_gold_files_error_names_it_but_neither_its_content_nor_where_the_server_keeps_it(client, tmp_path):
    path = tmp_path / "keys.json"
    path.write_text('{"api_key": "sk-SECRET-123"}\n')
    with pytest.raises(AppError) as refused:
        client.predict("a file", handle_file(str(path)), "score", api_name="/evaluate")
    assert str(refused.value) == ('keys.json: line 1: An example must be an object with a "text" string and a '
                                  "\"label\", or a \"text\" record 'Input: ...\\nOutput: ...'.")


def test_a_file_without_a_file_is_refused(client):
    with pytest.raises(AppError, match="Upload a gold file first"):
        client.predict("a file", None, "score", api_name="/evaluate")


def test_an_unknown_run_lists_the_recent_ones(client, fake_app):
    client.predict("held-out set", None, "score", api_name="/evaluate")
    latest = fake_app.service.runs(1)[0]["id"]
    with pytest.raises(AppError, match=rf"No evaluation run 999\. The latest runs:\n#{latest} "):
        client.predict(latest, 999, api_name="/compare_runs")
    with pytest.raises(AppError, match="Pick two runs to compare"):
        client.predict(None, latest, api_name="/compare_runs")


def test_the_sessions_draft_is_what_the_tab_evaluates(fake_app):
    mine = PageClient(fake_app.url)
    mine.predict(DRAFT, "never", api_name="/set_prompt")
    mine.predict("held-out set", None, "score", api_name="/evaluate")
    run = fake_app.service.runs(1)[0]
    assert (run["template"], run["threshold"]) == (PromptTemplate.from_examples(
        [{"text": text, "label": label} for text, label in DRAFT["data"]]).id, "never")


def test_the_workbench_measures_the_edited_draft_against_the_default(client, fake_app):
    before = runs(fake_app)
    verdict, flipped = client.predict(DRAFT, "needs intervention", "held-out set", api_name="/evaluate_draft")
    assert runs(fake_app) == before + 2
    default, draft = fake_app.service.runs(2)[::-1]
    assert (default["template"], draft["template"]) == (fake_app.service.settings.template.id,
                                                        PromptTemplate.from_examples(
                                                            [{"text": t, "label": lab} for t, lab in DRAFT["data"]]).id)
    assert verdict.startswith(f"**The draft fixes 0 and breaks 0** of 129 texts on the held-out set against the "
                              f"default (run #{default['id']} → #{draft['id']}; 0 labels change).")
    assert "| intervene.f1 | 0.077 | 0.154 | 0.077 |" in verdict and flipped["data"] == []
    with pytest.raises(AppError, match="Unknown label 'fine'"):
        client.predict({"headers": ["text", "label"], "data": [["hi", "fine"]]}, "never", "held-out set",
                       api_name="/evaluate_draft")
    assert runs(fake_app) == before + 2
