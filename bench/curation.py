"""The time to accept verdicts through the page: four sets of ``--verdicts`` (50) texts are moderated and judged, then
each set is accepted one way. The way a curator does it now, in three actions (type a filter, Select all matching,
confirm "Accept 50 verdicts"): in Chromium through Playwright, and through gradio_client's calls of the same events.
The way before bulk actions (select a row, then Accept, for each verdict: two clicks a verdict, after the filter):
in Chromium, and through gradio_client's /accept. It prints the seconds and the actions of each, and checks that every
verdict is accepted.

    .venv/bin/python bench/curation.py [--url URL --db PATH | --model M] [--verdicts 50] [--json]
"""

import argparse
import contextlib
import json
import os
import re
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # the client must not phone home

import httpx  # noqa: E402
from gradio_client import Client  # noqa: E402
from playwright.sync_api import expect, sync_playwright  # noqa: E402

from bench.common import add_app_options, app_to_measure, check_app_options, machine  # noqa: E402

WAYS = ("one by one, gradio_client", "one by one, Chromium", "bulk, gradio_client", "bulk, Chromium")
"""Each way of accepting a set, in the order they run."""
WORDS = ("one", "two", "three", "four")
"""The word in the texts of each way's set (what the filter finds)."""
CURATOR = "curation-bench"
CHROMIUM = "/usr/bin/chromium"


def parse_args(argv=None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_app_options(parser)
    parser.add_argument("--verdicts", type=int, default=50, help="verdicts in each set (%(default)s, at most 64)")
    parser.add_argument("--chromium", default=CHROMIUM, help="the browser Playwright drives (%(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    check_app_options(parser, args, "to read the verdicts from")
    if not 1 <= args.verdicts <= 64:
        parser.error("--verdicts takes 1 to 64 (one request moderates a set)")
    return args


def judged_set(url: str, client: Client, db: Path, word: str, count: int) -> list[int]:
    """``count`` texts with ``word`` moderated through the REST API and judged right through the page: the verdicts'
    ids."""
    texts = [f"curation bench {word} text number {number}" for number in range(count)]
    httpx.post(url + "v1/moderations", json={"input": texts}, timeout=120).raise_for_status()
    deadline = time.monotonic() + 30
    while len(ids := prediction_ids(db, texts)) < count:  # the API's predictions are written moments after
        if time.monotonic() > deadline:
            raise RuntimeError("the API's predictions did not reach the database")
        time.sleep(0.05)
    saved = [client.predict(prediction, "", "bench-reviewer", api_name="/confirm") for prediction in ids]
    return [int(re.match(r"Saved verdict #(\d+)", reply)[1]) for reply in saved]


def prediction_ids(db: Path, texts: list[str]) -> list[int]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
        return [row[0] for row in connection.execute(
            f"select id from predictions where text in ({', '.join('?' * len(texts))}) order by id", texts)]


def statuses(db: Path, ids: list[int]) -> set[str]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
        return {row[0] for row in connection.execute(
            f"select status from verdicts where id in ({', '.join('?' * len(ids))})", ids)}


def one_by_one(client: Client, ids: list[int]) -> int:
    """Each verdict accepted by its own /accept (a row selected, then Accept): the actions it takes by hand."""
    for verdict in ids:
        reply = client.predict(verdict, "", CURATOR, api_name="/accept")
        if not reply.endswith(" is now accepted."):
            raise RuntimeError(f"unexpected reply: {reply!r}")
    return 2 * len(ids)


def one_by_one_in_chromium(page, word: str, ids: list[int]) -> int:
    """The filter (pending texts with ``word``), then for each verdict: a click on its row, then on Accept."""
    choose(page, "Status", "pending")
    page.get_by_label("Search texts", exact=True).fill(f"curation bench {word}")
    table, result = page.locator("#review-table"), page.get_by_label("Result", exact=True)
    for left in range(len(ids), 0, -1):
        expect(table.get_by_role("grid")).to_have_attribute("aria-rowcount", str(left + 1))
        first = table.get_by_role("row").nth(1)
        verdict = first.get_by_role("gridcell").nth(1).inner_text()
        first.get_by_role("gridcell").nth(2).click()
        expect(page.locator("#review-details")).to_contain_text(f"Verdict #{verdict} ")
        page.get_by_role("button", name="Accept", exact=True).click()
        expect(result).to_have_value(re.compile(rf"^Verdict #{verdict} .* is now accepted\.$"))
    choose(page, "Status", "any")
    return 2 + 2 * len(ids)


def choose(page, dropdown: str, option: str) -> None:
    page.get_by_label(dropdown, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()


def bulk_calls(client: Client, word: str, count: int) -> int:
    """The filter, Select all matching and the confirmation, as the page's events called by gradio_client."""
    filters = ("pending", "any", False, f"curation bench {word}")
    client.predict(*filters, api_name="/review")
    client.predict(*filters, api_name="/select_all")
    reply, *_ = client.predict(CURATOR, api_name="/bulk_accept")
    if f": {count} verdicts now accepted" not in reply:
        raise RuntimeError(f"unexpected reply: {reply!r}")
    return 3


def bulk_in_chromium(page, word: str, count: int) -> int:
    """The three actions in the page: type the filter, Select all matching, confirm."""
    page.get_by_label("Search texts", exact=True).fill(f"curation bench {word}")
    expect(page.locator("#review-table").get_by_role("grid")).to_have_attribute("aria-rowcount", str(count + 1))
    page.get_by_role("button", name="Select all matching").click()
    page.get_by_role("button", name=f"Accept {count} verdicts").click()
    expect(page.get_by_label("Result", exact=True)).to_have_value(
        re.compile(rf"^Batch #\d+: {count} verdicts now accepted"), timeout=60_000)
    return 3


def measure(url: str, db: Path, args) -> dict:
    """Each set judged, then accepted one way; the seconds and actions of each way."""
    client = Client(url, verbose=False)
    sets = {way: judged_set(url, client, db, word, args.verdicts) for way, word in zip(WAYS, WORDS)}
    figures = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(url)
        page.get_by_label("Reviewer", exact=True).fill(CURATOR)
        page.get_by_role("tab", name="Review").click()
        for way, run in zip(WAYS, (lambda: one_by_one(client, sets[WAYS[0]]),
                                   lambda: one_by_one_in_chromium(page, WORDS[1], sets[WAYS[1]]),
                                   lambda: bulk_calls(client, WORDS[2], args.verdicts),
                                   lambda: bulk_in_chromium(page, WORDS[3], args.verdicts))):
            start = time.perf_counter()
            actions = run()
            figures[way] = {"seconds": time.perf_counter() - start, "actions": actions}
            if statuses(db, sets[way]) != {"accepted"}:
                raise RuntimeError(f"{way}: not every verdict was accepted")
        browser.close()
    client.close()
    return figures


def main(argv=None) -> int:
    """Judge the sets, accept each one way, and print the figures."""
    args = parse_args(argv)
    load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="moderation-curation-") as scratch:
        db = Path(args.db) if args.db else Path(scratch) / "feedback.db"
        app = app_to_measure(args, db, Path(scratch) / "app.log")
        with app as (url, _):
            figures = measure(url, db, args)
    if args.json:
        print(json.dumps({"verdicts": args.verdicts, "ways": figures, "machine": machine(load_at_start)}))
    else:
        print(f"Accepting {args.verdicts} verdicts through the page:")
        for way, row in figures.items():
            print(f"  {way:28} {row['seconds']:6.2f} s  {row['actions']:4} actions by hand")
    return 0


if __name__ == "__main__":
    sys.exit(main())
