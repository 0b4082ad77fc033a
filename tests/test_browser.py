"""A reviewer's session in a real browser (Debian chromium through Playwright) on the demo model, served in this
process, with a screenshot per step."""

import json
import re
from pathlib import Path

import pytest
import sqlite_utils
from playwright.sync_api import expect

from feedback.splits import TEST_SHARE, split_for
from moderation.policy import CARD

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).parent.parent / "test-artifacts" / "screenshots"
REMOTE = "remote.invalid"
"""The host that links and images in hostile user content name: the browser must never request it."""


@pytest.fixture
def page(demo_app, browser_page):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser_page.goto(demo_app.url)
    return browser_page


def snap(page, name):
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def choose(page, dropdown_label, option):
    page.get_by_label(dropdown_label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()


def test_reviewer_moderates_corrects_curates_and_exports(page, tmp_path):
    text = "Honestly the referee tonight was a blind clown"
    expect(page.get_by_text("Demo model in use.")).to_be_visible()
    snap(page, "01-opened")

    page.get_by_label("Text", exact=True).fill(text)
    page.get_by_role("button", name="Moderate", exact=True).click()
    prompt = page.locator(".cm-content")
    expect(prompt).to_contain_text(f"Input: {text}")
    expect(prompt).to_contain_text("Possible labels:")
    shown = page.get_by_test_id("label-output-value")
    expect(shown).not_to_be_empty()
    model_label = shown.inner_text().strip()
    assert model_label in {"casual", "needs caution", "needs intervention", "possibly needs caution",
                           "probably needs caution"}
    snap(page, "02-moderated")

    correct = "probably needs caution" if model_label != "probably needs caution" else "possibly needs caution"
    choose(page, "Correct label", correct)
    page.get_by_label("Reviewer", exact=True).fill("dana")
    page.get_by_label("Note", exact=True).fill("insult aimed at a person")
    page.get_by_role("button", name="Save correction").click()
    saved = page.get_by_label("Saved", exact=True)
    expect(saved).to_have_value(re.compile(rf"Saved verdict #\d+ on prediction #\d+: wrong, {correct}\."))
    verdict_id = saved.input_value().split("#")[1].split()[0]
    snap(page, "03-correction-saved")

    page.get_by_role("tab", name="Review").click()
    row = page.get_by_role("row").filter(has_text=text)
    expect(row).to_have_count(1)
    expect(row).to_contain_text(correct)
    row.get_by_text(text).click()
    expect(page.get_by_label("Selected verdict", exact=True)).to_have_value(text)
    expect(page.locator("#review-details")).to_contain_text(f"Verdict #{verdict_id} · pending · by dana")
    page.get_by_role("button", name="Accept", exact=True).click()
    expect(page.get_by_label("Result", exact=True)).to_have_value(
        f'Verdict #{verdict_id} ("Honestly the referee tonight was a blind…") is now accepted.')
    expect(row).to_contain_text("accepted")
    snap(page, "04-reviewed")

    page.get_by_role("tab", name="Export").click()
    page.get_by_role("button", name="Export", exact=True).click()
    expect(page.get_by_label("Rows", exact=True)).to_have_value("1 texts exported as oig.")
    snap(page, "05-exported")
    with page.expect_download() as download:
        page.locator("a[download$='.jsonl']").click()
    path = tmp_path / "export.jsonl"
    download.value.save_as(path)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert lines == [{"text": f"Input: {text}\nOutput: {correct}", "split": split_for(text, TEST_SHARE),
                      "policy": {"name": "prosocial", "id": CARD.id}}]


def remote_requests(page) -> list[str]:
    """The URLs of :data:`REMOTE` that ``page`` requests from now on (user content that makes the browser fetch)."""
    fetched = []
    page.on("request", lambda request: fetched.append(request.url) if REMOTE in request.url else None)
    return fetched


def test_user_text_shows_as_text_and_never_runs(page):
    fetched = remote_requests(page)
    attack = '<img src=x onerror="window.__pwned = 1"><script>window.__pwned = 2</script><b>bold</b>'
    page.get_by_label("Text", exact=True).fill(attack)
    page.get_by_role("button", name="Moderate", exact=True).click()
    expect(page.locator(".cm-content")).to_contain_text('Input: <img src=x onerror="window.__pwned = 1">')
    name = f'<a href="http://{REMOTE}/name">ana</a><img src=y onerror="window.__pwned = 3">'
    page.get_by_label("Reviewer", exact=True).fill(name)
    page.get_by_role("button", name="Label is right").click()
    expect(page.get_by_label("Saved", exact=True)).to_have_value(re.compile(r"Saved verdict #\d+ .*: right, .+\."))
    page.get_by_role("tab", name="Review").click()
    page.get_by_role("button", name="Refresh").click()
    row = page.get_by_role("row").filter(has_text='<img src=x onerror="window.__pwned = 1">')  # the table's first
    expect(row).to_have_count(1)  # characters of the text
    row.get_by_role("gridcell").nth(2).click()
    expect(page.get_by_label("Selected verdict", exact=True)).to_have_value(attack)  # the whole text, as text
    expect(page.locator("#review-details")).to_contain_text(f"by {name}")  # the reviewer's name, as text too
    snap(page, "06-hostile-text")

    page.get_by_role("tab", name="Dashboard").click()  # plotly draws a subset of HTML in labels and hover text
    plot = page.locator("#reviewers-plot")
    expect(plot.locator(".xtick text").filter(has_text=name)).to_have_count(1)
    snap(page, "06-hostile-name-in-a-plot")
    assert plot.locator("svg a").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img[src='x'], img[src='y']").count() == 0
    assert fetched == []


def test_a_new_user_saves_a_correction_without_a_name_and_the_browser_keeps_a_name(page, demo_app):
    text = "The printer jammed again, typical Monday"
    expect(page.get_by_label("Reviewer", exact=True)).to_have_value("")
    page.get_by_label("Text", exact=True).fill(text)
    page.get_by_role("button", name="Moderate", exact=True).click()
    shown = page.get_by_test_id("label-output-value")
    expect(shown).not_to_be_empty()
    correct = "needs caution" if shown.inner_text().strip() != "needs caution" else "casual"
    choose(page, "Correct label", correct)
    page.get_by_role("button", name="Save correction").click()
    saved = page.get_by_label("Saved", exact=True)
    expect(saved).to_have_value(re.compile(rf"Saved verdict #\d+ on prediction #\d+: wrong, {correct}\."))
    snap(page, "07-anonymous-correction")
    row = sqlite_utils.Database(demo_app.db_path)["verdicts"].get(int(saved.input_value().split("#")[1].split()[0]))
    assert (row["reviewer"], row["label"]) == ("anonymous", correct)

    page.get_by_label("Reviewer", exact=True).fill("dana")
    page.get_by_label("Reviewer", exact=True).blur()
    page.wait_for_timeout(500)  # the name reaches the browser's storage through the server's answer
    page.reload()
    expect(page.get_by_label("Reviewer", exact=True)).to_have_value("dana")


def test_reviewer_evaluates_a_draft_sees_the_confusion_matrix_and_compares_two_runs(page, demo_app):
    service = demo_app.service
    page.get_by_role("tab", name="Evaluate").click()
    page.get_by_role("button", name="Evaluate", exact=True).click()
    summary = page.locator("#evaluation-summary")
    expect(summary).to_contain_text("score on held-out set (129 texts)", timeout=60_000)
    before = service.runs(1)[0]
    expect(summary).to_contain_text(f"Run #{before['id']}: accuracy {before['metrics']['accuracy']:.1%}")
    heatmap = page.locator("#confusion .js-plotly-plot")
    expect(heatmap).to_be_visible()
    expect(page.locator("#confusion")).to_contain_text("predicted")
    assert heatmap.evaluate("plot => plot.data[0].z") == before["metrics"]["confusion"]["matrix"]
    expect(page.locator("#reliability .js-plotly-plot")).to_be_visible()
    snap(page, "08-evaluated")

    page.get_by_role("tab", name="Prompt").click()
    page.locator("span[data-editable=true]", has_text="possibly needs caution").first.dblclick()
    page.keyboard.press("Control+A")
    page.keyboard.type("needs intervention")
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Try in this session").click()
    expect(page.get_by_label("Template", exact=True)).to_have_value(re.compile(r"this session's draft"))
    page.get_by_role("tab", name="Evaluate").click()
    page.get_by_role("button", name="Evaluate", exact=True).click()
    after_id = before["id"] + 1
    expect(summary).to_contain_text(f"Run #{after_id}:", timeout=60_000)
    page.get_by_role("button", name="Compare").click()
    comparison = service.compare(before["id"], after_id)
    assert comparison["flipped"], "the edited example must change some labels for this test to mean anything"
    verdict = page.locator("#comparison-summary")
    expect(verdict).to_contain_text(f"B fixes {comparison['fixed']} and breaks {comparison['broken']} of 129 texts")
    expect(verdict).to_contain_text(f"(run #{before['id']} → #{after_id}; {len(comparison['flipped'])} labels change)")
    expect(page.locator("#flipped")).to_contain_text(comparison["flipped"][0]["text"])
    snap(page, "09-compared")

    page.get_by_role("tab", name="Prompt").click()
    page.get_by_role("button", name="Evaluate against the default").click()
    expect(page.locator("#workbench-summary")).to_contain_text(
        f"The draft fixes {comparison['fixed']} and breaks {comparison['broken']} of 129 texts", timeout=60_000)
    snap(page, "10-workbench")
