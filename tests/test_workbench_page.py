"""The reviewer's workbench through the page's API (the real gradio_client) on the fake backend, served in this
process: the Queue, Batch, Disagreements and Dashboard tabs, and the REST figures."""

import json

import httpx
import pytest
import sqlite_utils
from fakes import label_for
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from servers import PageClient, running_in_process

from moderation.labels import LABELS
from playground.ui.page import build_page

ENDPOINTS = {"/queue_next", "/queue_label", "/queue_right", "/queue_skip", "/queue_undo", "/queue_clear_skips",
             "/batch", "/dashboard", "/disagreements", "/set_final_label"}


@pytest.fixture
def app(tmp_path):
    with running_in_process(tmp_path) as app:
        yield app


def record(app, *texts):
    """Texts moderated through the REST API, which records them like the page does (its writer commits them
    moments after the answer: wait for that)."""
    httpx.post(app.url + "v1/moderations", json={"input": list(texts)}).raise_for_status()
    app.service.writer.flush()


def test_the_queue_takes_verdicts_skips_and_undoes(app):
    client = PageClient(app.url)
    assert ENDPOINTS <= set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    record(app, "I will hurt you", "What a lovely day", "You idiot")
    db = sqlite_utils.Database(app.db_path)

    prediction, text, label, choices, prompt, left = client.predict("newest", "", api_name="/queue_next")
    assert (prediction, text, label["label"]) == (3, "You idiot", "probably needs caution")
    assert "\n3 probably needs caution  ← the model\n" in choices and prompt.endswith("Input: You idiot\nOutput:")
    assert prompt.count("5. probably needs caution") == 1, "the card's prompt keeps its own order of the labels"
    assert left.startswith("3 waiting for you")

    saved, prediction, text, *_ = client.predict(3, "newest", "", api_name="/queue_right")
    assert saved == "Saved verdict #1 on prediction #3: right, probably needs caution."
    assert (prediction, text) == (2, "What a lovely day")
    prediction, text, *_ = client.predict(2, "newest", "", api_name="/queue_skip")
    assert (prediction, text) == (1, "I will hurt you")
    assert client.predict(1, "casual", "", api_name="/queue_label").endswith("wrong, casual.")
    assert client.predict(1, "needs intervention", "", api_name="/queue_label").endswith("right, needs intervention.")
    assert [(row["reviewer"], row["verdict"]) for row in db["verdicts"].rows] == [("anonymous", "right")] * 2

    saved, prediction, text, *_ = client.predict("", api_name="/queue_undo")
    assert (saved, prediction, text) == ("Took back verdict #1 on prediction #3.", 3, "You idiot")
    assert db["verdicts"].count == 1
    with pytest.raises(AppError, match="No verdict of yours to take back"):
        client.predict("", api_name="/queue_undo")
    *_, left = client.predict("newest", "bo", api_name="/queue_next")
    assert left.startswith("3 waiting for you"), "another reviewer's queue is their own"


def test_a_skip_leaves_out_the_prediction_it_names_and_no_other(app):
    """An id that is not a whole number is refused: ``int()`` made 2.7 skip prediction #2 without a word."""
    client = PageClient(app.url)
    record(app, "one", "two", "three")
    with pytest.raises(AppError, match="No prediction 2.7: prediction ids are whole numbers"):
        client.predict(2.7, "newest", "", api_name="/queue_skip")
    prediction, text, *_ = client.predict(3, "newest", "", api_name="/queue_skip")
    assert (prediction, text) == (2, "two")


def test_skips_last_for_the_reviewer_across_sessions_until_cleared(app):
    record(app, "one", "two")
    first = PageClient(app.url)
    assert first.predict(2, "newest", "ana", api_name="/queue_skip")[:2] == (1, "one")
    first.predict(1, "newest", "ana", api_name="/queue_skip")
    first.close()
    again = PageClient(app.url)  # another browser session, the same reviewer
    prediction, text, *_, left = again.predict("newest", "ana", api_name="/queue_next")
    assert (prediction, text) == (None, "")
    assert left == ("Nothing left to judge in this order (2 waiting for you; you skipped 2 texts: Clear my skips "
                    "brings them back).")
    assert again.predict("newest", "bo", api_name="/queue_next")[:2] == (2, "two"), "skips are the reviewer's own"
    cleared, prediction, text, *_ = again.predict("newest", "ana", api_name="/queue_clear_skips")
    assert (cleared, prediction, text) == ("Cleared 2 skips: those texts wait in your queue again.", 2, "two")


def test_the_batch_tab_labels_a_file_and_keeps_its_rows_for_review(app, tmp_path):
    client = PageClient(app.url)
    rows = tmp_path / "rows.csv"
    rows.write_text('id,text\n1,I hate mondays\n2,""\n3,See you soon\n', encoding="utf-8")
    path, summary, counts, shown = client.predict(handle_file(str(rows)), "jsonl", True, api_name="/batch")
    assert summary.startswith("2 of 3 rows labelled (1 with an error, kept for review)")
    assert counts["data"] == [["casual", 1, "33.3%"], ["possibly needs caution", 1, "33.3%"],
                              ["probably needs caution", 0, "0.0%"], ["needs caution", 0, "0.0%"],
                              ["needs intervention", 0, "0.0%"], ["error", 1, "33.3%"]]
    assert [row[:2] for row in shown["data"]] == [["I hate mondays", label_for("hate")], ["", ""],
                                                 ["See you soon", "casual"]]
    assert shown["data"][0][2] == 0.6 and "The text is empty" in shown["data"][1][5]
    lines = [json.loads(line) for line in open(path, encoding="utf-8")]
    assert [line.get("label") for line in lines] == [label_for("hate"), None, "casual"]
    assert "The text is empty" in lines[1]["error"]
    assert [row["text"] for row in sqlite_utils.Database(app.db_path)["predictions"].rows] == [
        "I hate mondays", "See you soon"]

    bad = tmp_path / "bad.csv"
    bad.write_text("message\nhello\n", encoding="utf-8")
    with pytest.raises(AppError, match="bad.csv has no text column"):
        client.predict(handle_file(str(bad)), "csv", True, api_name="/batch")
    assert sqlite_utils.Database(app.db_path)["predictions"].count == 2


def test_a_curator_settles_a_disagreement_and_the_figures_follow(app):
    client = PageClient(app.url)
    record(app, "I hate this", "fine")
    for reviewer, label in (("ana", "casual"), ("bo", "needs caution")):
        client.predict(1, label, reviewer, api_name="/queue_label")
    client.predict(2, "casual", "ana", api_name="/queue_label")
    client.predict(2, "casual", "bo", api_name="/queue_label")
    table = client.predict(api_name="/disagreements")
    assert table["data"] == [["I hate this", "", "ana: casual; bo: needs caution", "possibly needs caution"]]
    with pytest.raises(AppError, match="Select a text"):
        client.predict("", "casual", "cy", api_name="/set_final_label")
    settled = client.predict("I hate this", "needs caution", "cy", api_name="/set_final_label")
    assert settled == "The final label of 'I hate this' is now needs caution (set by cy)."
    path, _ = client.predict("oig", "accepted", "", api_name="/export")
    assert [json.loads(line)["text"] for line in open(path, encoding="utf-8")] == [
        "Input: I hate this\nOutput: needs caution"]
    path, _ = client.predict("full", "any", "", api_name="/export")
    disputed = [line for line in map(json.loads, open(path, encoding="utf-8")) if line["text"] == "I hate this"]
    assert [(line["reviewer"], line["label"], line["final_label"], line["final_label_by"]) for line in disputed] == [
        ("ana", "casual", "needs caution", "cy"), ("bo", "needs caution", "needs caution", "cy")]

    overview, *plots, pairs = client.predict(api_name="/dashboard")
    assert overview.startswith("**2** predictions, **0** awaiting a first verdict · **4** verdicts")
    assert pairs["data"] == [["ana", "bo", 2, "0.000"]]
    stats = httpx.get(app.url + "v1/feedback/stats").json()
    assert stats["agreement"]["pairs"] == [{"a": "ana", "b": "bo", "n": 2, "cohen_kappa": 0.0}]
    assert stats["by_reviewer"] == {"ana": 2, "bo": 2} and set(stats["confusion"]) == set(LABELS)
    assert len(plots) == 6 and all(plot for plot in plots)


def test_the_dashboard_fills_when_the_page_loads(app):
    """The page's load event runs the Refresh button's own function into the same figures, once."""
    record(app, "I hate this", "fine")
    page = build_page(app.service)
    refresh = next(event for event in page.fns.values() if event.api_name == "dashboard")
    on_load = [event for event in page.fns.values()  # the browser runs each event with a load trigger
               if "load" in [name for _, name in event.targets] and event.outputs == refresh.outputs]
    assert len(on_load) == 1 and on_load[0].fn is refresh.fn and on_load[0].api_visibility == "private"
    overview, *_ = on_load[0].fn()
    assert overview.startswith("**2** predictions, **2** awaiting a first verdict")
    assert overview == PageClient(app.url).predict(api_name="/dashboard")[0]
