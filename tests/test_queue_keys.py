"""The Queue tab in a real browser (Debian chromium through Playwright) on the fake backend: verdicts from key
presses alone (1 the least severe label, 5 the most), skips kept until cleared, with a screenshot per step."""

import re

import httpx
import pytest
import sqlite_utils
from playwright.sync_api import expect
from servers import running_in_process
from test_browser import SCREENSHOTS, snap

from moderation.labels import SEVERITY
from moderation.policy import POLICIES, read_policy
from moderation.settings import Settings
from moderation.templates import PromptTemplate

pytestmark = pytest.mark.browser

TEXTS = ["I will hurt you", "What a lovely day", "You idiot", "See you at noon"]


def test_the_queue_saves_verdicts_from_key_presses_alone(tmp_path, browser_page):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser_page
    with running_in_process(tmp_path) as app:
        httpx.post(app.url + "v1/moderations", json={"input": TEXTS}).raise_for_status()
        app.service.writer.flush()  # the API's predictions are committed by the writer, moments after the answer
        db = sqlite_utils.Database(app.db_path)
        page.goto(app.url)
        page.get_by_label("Reviewer", exact=True).fill("kim")
        page.get_by_role("tab", name="Queue").click()
        expect(page.get_by_text("Enter label is right")).to_be_visible()
        card = page.get_by_label("Text to judge", exact=True)
        last = page.get_by_label("Last verdict", exact=True)
        expect(card).not_to_have_value("")
        snap(page, "queue-01-first-card")

        def press(key, expected):
            """Press a key with the focus on the page (outside any text field); returns the text it judged."""
            judged = card.input_value()
            page.locator("body").click(position={"x": 5, "y": 5})
            page.keyboard.press(key)
            expect(last).to_have_value(expected)
            return judged

        buttons = page.locator("button[id^='queue-label-']")
        assert buttons.all_inner_texts() == [f"{n} {label}" for n, label in enumerate(SEVERITY, 1)]
        expect(page.get_by_text("1 casual, 2 possibly needs caution, 3 probably needs caution, 4 needs caution, "
                                "5 needs intervention")).to_be_visible()
        expect(card).to_have_value("I will hurt you")
        first = press("1", re.compile(r"Saved verdict #1 on prediction #\d+: wrong, casual\."))
        expect(card).not_to_have_value(first)
        second = press("Enter", re.compile(r"Saved verdict #2 on prediction #\d+: right, .+\."))
        skipped = card.input_value()
        page.keyboard.press("s")
        expect(card).not_to_have_value(skipped)
        snap(page, "queue-02-judged-and-skipped")
        third = press("5", re.compile(r"Saved verdict #3 on prediction #\d+: \w+, needs intervention\."))
        press("u", re.compile(r"Took back verdict #3 on prediction #\d+\."))
        expect(card).to_have_value(third)
        press("2", re.compile(r"Saved verdict #\d+ on prediction #\d+: \w+, possibly needs caution\."))
        snap(page, "queue-03-undone-and-judged-again")

        page.reload()  # another session of the same reviewer: the skipped text stays out until the skips are cleared
        expect(page.get_by_label("Reviewer", exact=True)).to_have_value("kim")  # the browser remembers the name
        page.get_by_role("tab", name="Queue").click()
        expect(page.get_by_text("you skipped 1 texts")).to_be_visible()
        expect(card).to_have_value("")
        page.get_by_role("button", name="Clear my skips").click()
        expect(card).to_have_value(skipped)

        page.get_by_label("Reviewer", exact=True).click()
        page.keyboard.press("End")
        page.keyboard.press("3")
        expect(page.get_by_label("Reviewer", exact=True)).to_have_value("kim3")
        rows = list(db.query("select predictions.text, predictions.label as model_label, verdicts.reviewer, "
                             "verdicts.label from verdicts join predictions on predictions.id = verdicts.prediction_id "
                             "order by verdicts.id"))
    assert [(row["text"], row["label"]) for row in rows] == [
        (first, "casual"), (second, rows[1]["model_label"]), (third, "possibly needs caution")]
    assert first == "I will hurt you", "key 1 saves the least severe label, on a text the model finds the most severe"
    assert {row["reviewer"] for row in rows} == {"kim"}
    assert skipped not in {first, second, third}


def test_the_keys_follow_the_policy_of_the_text_shown(tmp_path, browser_page):
    """The page is built while the card's policy is published; once the community one is, its texts are judged with
    keys 1 to 5 in its order of severity, and a key beyond its labels does nothing."""
    page = browser_page
    community = read_policy(POLICIES / "community.toml")
    texts = ["threat number one", "what a nice meetup", "more spam here", "pure hate", "harassment again"]
    with running_in_process(tmp_path) as app:
        app.service.publish(Settings(PromptTemplate(community)))
        httpx.post(app.url + "v1/moderations", json={"input": texts}).raise_for_status()
        app.service.writer.flush()
        page.goto(app.url)
        page.get_by_label("Reviewer", exact=True).fill("kim")
        page.get_by_role("tab", name="Queue").click()
        card = page.get_by_label("Text to judge", exact=True)
        last = page.get_by_label("Last verdict", exact=True)
        expect(page.get_by_text("1 ok, 2 spam, 3 harassment, 4 hate, 5 threat")).to_be_visible()
        buttons = page.locator("button[id^='queue-label-']")
        expect(buttons).to_have_count(5)
        assert buttons.all_inner_texts() == [f"{n} {label}" for n, label in enumerate(community.labels, 1)]
        judged = []
        for number in range(1, 6):
            expect(card).not_to_have_value("")
            judged.append(card.input_value())
            page.locator("body").click(position={"x": 5, "y": 5})
            page.keyboard.press("6")  # no sixth label: nothing is saved
            page.keyboard.press(str(number))
            expect(last).to_have_value(re.compile(rf"Saved verdict #{number} on prediction #\d+: \w+, "
                                                  rf"{community.labels[number - 1]}\."))
        snap(page, "queue-04-community-policy")
        rows = list(sqlite_utils.Database(app.db_path).query(
            "select predictions.text, verdicts.label from verdicts join predictions on predictions.id = "
            "verdicts.prediction_id order by verdicts.id"))
    assert [(row["text"], row["label"]) for row in rows] == list(zip(judged, community.labels))
