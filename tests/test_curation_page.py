"""Curation in a real browser (Debian chromium through Playwright) on the fake backend, one app for the module: the
Review table narrowing as a search is typed, a bulk accept of a filtered set and its undo, a relabel refused because
another reviewer changed the verdict since it was shown, the Review and Disagreements tables within 1280 pixels, and
the Batch tab's results in the page; a screenshot per step."""

import re

import pytest
import sqlite_utils
from playwright.sync_api import expect
from test_browser import SCREENSHOTS, snap

pytestmark = pytest.mark.browser

LAYOUT = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def app(fake_app):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return fake_app


@pytest.fixture
def page(app, browser_page):
    browser_page.goto(app.url)
    browser_page.get_by_label("Reviewer", exact=True).fill("cy")
    return browser_page


def judged(app, texts, reviewer="ana", label=None) -> list[int]:
    """Each text moderated and judged by ``reviewer`` (right, or corrected to ``label``): the verdicts' ids."""
    shown = app.service.moderate(list(texts))
    return [(app.service.flag(one.id, label, reviewer=reviewer) if label else
             app.service.confirm(one.id, reviewer=reviewer))["id"] for one in shown]


def statuses(app, ids) -> dict[int, str]:
    db = sqlite_utils.Database(app.db_path)
    return {row["id"]: row["status"] for row in db.query(
        f"select id, status from verdicts where id in ({', '.join('?' * len(ids))})", list(ids))}


def review(page):
    page.get_by_role("tab", name="Review").click()
    return page.locator("#review-table")


def test_typing_in_search_narrows_the_table_with_no_other_click(app, page):
    judged(app, ["typing test: the weather is grey", "typing test: the parrot talks", "typing test: a parrot again"])
    table = review(page)
    expect(table.get_by_role("row").filter(has_text="typing test:")).to_have_count(3)
    page.get_by_label("Search texts", exact=True).press_sequentially("parrot", delay=40)
    expect(table.get_by_role("row").filter(has_text="typing test:")).to_have_count(2)
    expect(table.get_by_role("row").filter(has_text="the weather is grey")).to_have_count(0)
    snap(page, "curation-01-typed")


def test_a_bulk_accept_of_a_filtered_set_then_undo_brings_every_verdict_back(app, page):
    ids = judged(app, [f"bulk test number {n}" for n in range(50)])
    app.service.change(dict.fromkeys(ids[:10]), status="discarded", curator="bo")  # some had another status
    outside = judged(app, ["not in the bulk set"])
    before = statuses(app, ids + outside)
    table = review(page)

    page.get_by_label("Search texts", exact=True).fill("bulk test number")  # 1: filter
    expect(table.get_by_role("grid")).to_have_attribute("aria-rowcount", "51")  # the header and 50 rows
    page.get_by_role("button", name="Select all matching").click()  # 2: select all
    expect(page.locator("#review-checked")).to_contain_text("50 checked: all that match the filters")
    expect(table.get_by_role("gridcell", name="☐", exact=True)).to_have_count(0)
    snap(page, "curation-02-selected")
    page.get_by_role("button", name="Accept 50 verdicts").click()  # 3: confirm
    result = page.get_by_label("Result", exact=True)
    expect(result).to_have_value(re.compile(r'^Batch #\d+: 50 verdicts now accepted: verdict #\d+ \("bulk test number '
                                            r'\d+"\), .* and 47 more\. Undo batch #\d+ takes them back\.$'))
    assert set(statuses(app, ids).values()) == {"accepted"}
    assert statuses(app, outside) == {outside[0]: before[outside[0]]}
    expect(table.get_by_role("row").filter(has_text="bulk test number").first).to_contain_text("accepted")
    snap(page, "curation-03-accepted")

    batch = re.search(r"Batch #(\d+)", result.input_value())[1]
    page.get_by_role("button", name=f"Undo batch #{batch}").click()
    expect(result).to_have_value(re.compile(rf"^Batch #{batch} is undone: .* and 47 more are as they were before "
                                            r"it\.$"))
    assert statuses(app, ids + outside) == before
    expect(table.get_by_role("row").filter(has_text="bulk test number").first).to_contain_text("pending")
    snap(page, "curation-04-undone")


def test_a_relabel_of_a_verdict_another_reviewer_changed_since_it_was_shown_is_refused(app, page):
    (verdict,) = judged(app, ["stale relabel: the cat sat on the mat"])
    table = review(page)
    page.get_by_label("Search texts", exact=True).fill("stale relabel")
    table.get_by_role("gridcell", name="stale relabel: the cat sat on the mat").click()
    details = page.locator("#review-details")
    expect(details).to_contain_text(f"Verdict #{verdict} · pending · by ana")

    app.service.relabel(verdict, "needs intervention", curator="bo")  # another reviewer, since the page showed it
    page.get_by_label("New label (for Relabel)", exact=True).click()
    page.get_by_role("option", name="casual", exact=True).click()
    page.get_by_role("button", name="Relabel", exact=True).click()
    expect(page.get_by_text(re.compile(rf'Verdict #{verdict} \("stale relabel: the cat sat on the mat"\) changed since '
                                       r"it was shown: bo relabelled it needs intervention \(batch #\d+\) at .* UTC; "
                                       r"it is now pending, labelled needs intervention\. Nothing was changed"))
           ).to_be_visible()
    snap(page, "curation-05-refused")
    db = sqlite_utils.Database(app.db_path)
    assert db["verdicts"].get(verdict)["label"] == "needs intervention"
    expect(details).to_contain_text("says needs intervention (wrong)")  # the page shows the verdict as it is now
    expect(table.get_by_role("row").filter(has_text="stale relabel")).to_contain_text("needs intervention")

    page.get_by_role("button", name="Relabel", exact=True).click()  # acting on what it shows now is allowed
    expect(page.get_by_label("Result", exact=True)).to_have_value(
        f'Verdict #{verdict} ("stale relabel: the cat sat on the mat") is now labelled casual (right).')
    assert db["verdicts"].get(verdict)["label"] == "casual"


def within_the_window(page, header) -> None:
    """The column header is shown and lies wholly within the window, without scrolling."""
    expect(header).to_be_visible()
    box = header.bounding_box()
    assert box is not None and 0 <= box["x"] and box["x"] + box["width"] <= LAYOUT["width"], box


def test_the_review_and_disagreements_tables_fit_1280_pixels(app, page):
    long = "layout test: " + " ".join(["a text that goes on and on"] * 12)
    (ana,) = judged(app, [long])
    judged(app, [long], reviewer="bo", label="needs caution")
    page.set_viewport_size(LAYOUT)
    table = review(page)
    page.get_by_label("Search texts", exact=True).fill("layout test")
    expect(table.get_by_role("row").filter(has_text="layout test")).to_have_count(2)
    for column in ("status", "reviewer label", "reviewer"):
        within_the_window(page, table.get_by_role("columnheader", name=column, exact=True))
    table.get_by_role("row").filter(has_text="ana").get_by_role("gridcell").nth(2).click()
    expect(page.get_by_label("Selected verdict", exact=True)).to_have_value(long)  # cut short in the table only
    snap(page, "curation-06-review-at-1280")

    page.get_by_role("tab", name="Disagreements").click()
    disagreements = page.locator("#disagreements-table")
    expect(disagreements.get_by_role("row").filter(has_text="layout test")).to_have_count(1)
    for column in ("final label", "reviewers' labels", "model label"):
        within_the_window(page, disagreements.get_by_role("columnheader", name=column, exact=True))
    snap(page, "curation-07-disagreements-at-1280")


def test_batch_results_show_in_the_page_sortable_and_the_download_stays(page, tmp_path):
    rows = tmp_path / "rows.txt"
    rows.write_text("You idiot\nWhat a lovely day\nI hate mondays\n\nI will hurt you\n", encoding="utf-8")
    page.get_by_role("tab", name="Batch").click()
    page.locator("input[type=file]").first.set_input_files(rows)
    page.get_by_role("button", name="Label the file").click()
    expect(page.get_by_label("Batch", exact=True)).to_have_value(re.compile(r"^4 of 5 rows labelled"))
    counts = page.locator("#batch-counts")
    expect(counts.get_by_role("row").filter(has_text="needs intervention")).to_contain_text("1")
    expect(counts.get_by_role("row").filter(has_text="error")).to_contain_text("20.0%")
    shown = page.locator("#batch-rows")
    expect(shown.get_by_role("row")).to_have_count(6)
    expect(page.locator("a[download$='.jsonl']")).to_have_count(1)

    header = shown.get_by_role("columnheader").filter(has_text="label")
    header.click()
    header.get_by_role("button", name="Open cell menu").click()
    page.get_by_text("Sort ascending").click()
    labels = [row.split("\n")[1] if "\n" in row else "" for row in shown.get_by_role("row").all_inner_texts()[1:]]
    assert labels == sorted(labels), labels
    snap(page, "curation-08-batch-results")
