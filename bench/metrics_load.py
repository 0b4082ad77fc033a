"""/metrics under load: the time to save a verdict alone, and while clients scrape /metrics as fast as they can.

It fills the database with ``--predictions`` predictions (as a busy server's is), starts ``app.py`` on it (or uses
``--url``), then in alternating rounds saves ``--verdicts`` verdicts one after another through the page's
``/confirm``: alone, then while ``--scrapers`` clients GET /metrics on keep-alive connections without pause. It
prints the median and p95 save time of each, the ratio of the medians (target: at most 1.2, /metrics slows verdicts
by 20% at most) and how many scrapes were answered.

    .venv/bin/python bench/metrics_load.py [--url URL --db PATH | --model M] [--predictions 200000] \\
        [--verdicts 30] [--rounds 3] [--scrapers 8] [--json]
"""

import argparse
import http.client
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # the client must not phone home

from gradio_client import Client  # noqa: E402

from bench.common import add_app_options, app_to_measure, check_app_options, machine  # noqa: E402
from bench.load import percentile  # noqa: E402
from feedback.store import FeedbackStore  # noqa: E402
from moderation.labels import LABELS  # noqa: E402

SCORES = {label: 0.2 for label in LABELS}
FILL_BATCH = 5_000
REVIEWER = "metrics-bench"


def parse_args(argv=None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_app_options(parser)
    parser.add_argument("--predictions", type=int, default=200_000, help="predictions to add first (%(default)s)")
    parser.add_argument("--verdicts", type=int, default=30, help="verdicts saved in each round (%(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each alone then scraped (%(default)s)")
    parser.add_argument("--scrapers", type=int, default=8, help="clients scraping /metrics (%(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    check_app_options(parser, args, "to add predictions to")
    if min(args.verdicts, args.rounds, args.scrapers) < 1 or args.predictions < 2 * args.verdicts * args.rounds:
        parser.error("need at least one verdict, round and scraper, and a prediction for each verdict saved")
    return args


def fill(db: Path, count: int) -> list[int]:
    """Add ``count`` predictions to ``db`` in large transactions; their ids."""
    ids = []
    with FeedbackStore(db) as store:
        for start in range(0, count, FILL_BATCH):
            ids += store.save_predictions([
                dict(text=f"metrics bench text {number}", label="casual", scores=SCORES,
                     prompt=f"Input: metrics bench text {number}\nOutput:", model="bench")
                for number in range(start, min(count, start + FILL_BATCH))])
    return ids


class Scrapers:
    """Clients that GET /metrics without pause on keep-alive connections while the block runs: threads of a process
    of their own (as a scraper elsewhere would be), so that they never hold this process's interpreter."""

    def __init__(self, url: str, count: int):
        parts = urllib.parse.urlsplit(url)
        self.address, self.count = (parts.hostname, parts.port), count
        self.answered = 0

    def __enter__(self):
        context = multiprocessing.get_context("spawn")
        self._stop, self._answered = context.Event(), context.Value("q", 0)
        self._process = context.Process(target=scrape, args=(self.address, self.count, self._stop, self._answered))
        self._process.start()
        while not self._answered.value:  # scraping before the first verdict is timed
            time.sleep(0.01)
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._process.join(timeout=60)
        self.answered = self._answered.value


def scrape(address: tuple[str, int], count: int, stop, answered) -> None:
    """``count`` threads that GET /metrics until ``stop`` is set, adding each answer to ``answered``."""

    def client():
        connection = http.client.HTTPConnection(*address, timeout=60)
        while not stop.is_set():
            connection.request("GET", "/metrics")
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"/metrics answered {response.status}")
            with answered.get_lock():
                answered.value += 1
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def save_verdicts(client: Client, prediction_ids: list[int]) -> list[float]:
    """Confirm each prediction through /confirm, one after another; the seconds each took."""
    times = []
    for prediction_id in prediction_ids:
        start = time.perf_counter()
        reply = client.predict(prediction_id, "", REVIEWER, api_name="/confirm")
        times.append(time.perf_counter() - start)
        if not reply.startswith("Saved verdict #"):
            raise RuntimeError(f"unexpected reply: {reply!r}")
    return times


def measure(url: str, ids: list[int], args) -> dict:
    """Alternating rounds of verdicts saved alone and while /metrics is scraped."""
    client = Client(url, verbose=False)
    alone, scraped, scrapes, scraping_seconds = [], [], 0, 0.0
    ids = iter(ids)
    try:
        for _ in range(args.rounds):
            alone += save_verdicts(client, [next(ids) for _ in range(args.verdicts)])
            with Scrapers(url, args.scrapers) as scrapers:
                start = time.perf_counter()
                scraped += save_verdicts(client, [next(ids) for _ in range(args.verdicts)])
                scraping_seconds += time.perf_counter() - start
            scrapes += scrapers.answered
    finally:
        client.close()
    figures = {name: {"verdicts": len(times), "p50_ms": 1000 * statistics.median(times),
                      "p95_ms": 1000 * percentile(times, 95)} for name, times in (("alone", alone),
                                                                                  ("scraped", scraped))}
    figures["ratio_p50"] = figures["scraped"]["p50_ms"] / figures["alone"]["p50_ms"]
    figures["scrapes_per_s"] = scrapes / scraping_seconds
    return figures


def main(argv=None) -> int:
    """Fill the database, save verdicts with and without /metrics scraped, and print the figures."""
    args = parse_args(argv)
    load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="moderation-metrics-") as scratch:
        db = Path(args.db) if args.db else Path(scratch) / "feedback.db"
        ids = fill(db, args.predictions)
        app = app_to_measure(args, db, Path(scratch) / "app.log")
        with app as (url, _):
            figures = measure(url, ids, args)
    figures.update(predictions=args.predictions, scrapers=args.scrapers, machine=machine(load_at_start))
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"{args.predictions} predictions, {args.scrapers} clients scraping /metrics "
              f"({figures['scrapes_per_s']:.0f} scrapes/s answered)")
        for name in ("alone", "scraped"):
            row = figures[name]
            print(f"  verdict saved {name:8} {row['verdicts']:4} verdicts  p50 {row['p50_ms']:7.1f} ms  "
                  f"p95 {row['p95_ms']:7.1f} ms")
        print(f"  scraped / alone (p50): {figures['ratio_p50']:.2f}x (target: at most 1.20x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
