"""Load test: N concurrent clients moderate and flag through the real HTTP API; no acknowledged verdict is lost.

Each client (its own gradio_client ``Client``) loops until the time is up: moderate a seed text through
``/moderate``, flag it through ``/flag`` with a label other than the model's (reviewer ``load-<client>``),
and label it again through REST ``POST /v1/moderations``. The bench prints requests per second and p50/p95
latency by kind, the errors, and how many acknowledged verdicts the SQLite file lacks (lost) or holds
with other fields (wrong). ``--burst N`` then fires N REST requests at once and counts the 200s and the
503 "busy, retry" answers.

    .venv/bin/python bench/load.py [--url URL --db PATH | --model M] [--clients 16] [--seconds 30] \\
        [--burst N] [--json]

Without ``--url`` it starts ``app.py`` itself (demo model by default) on a free port with a temporary
database, and stops it at the end. It only talks to 127.0.0.1 / localhost. Exit status 1 when a
verdict is lost or wrong, or a request failed.
"""

import argparse
import json
import os
import re
import shlex
import sqlite3
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # the client must not phone home

from gradio_client import Client  # noqa: E402

from bench.common import add_app_options, app_to_measure, check_app_options, machine  # noqa: E402
from moderation.demo.recipe import split_seed  # noqa: E402
from moderation.labels import LABELS  # noqa: E402

KINDS = ("moderate", "flag", "rest")
MAX_ROUNDS = 100_000  # per client, on top of the time limit
MAX_BURST = 256
REQUEST_TIMEOUT_S = 60
ERRORS_KEPT = 5
SAVED = re.compile(r"Saved verdict #(\d+) on prediction #(\d+): wrong, (.+)\.")


def parse_args(argv=None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_app_options(parser)
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=30, help="how long the clients run (default: %(default)s)")
    parser.add_argument("--burst", type=int, default=0,
                        help=f"then fire this many REST requests at once, at most {MAX_BURST} (default: off)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    check_app_options(parser, args, "to check the verdicts")
    if not 1 <= args.clients <= 256 or not 0 < args.seconds <= 3600 or not 0 <= args.burst <= MAX_BURST:
        parser.error(f"need 1-256 clients, 0-3600 seconds and a burst of 0-{MAX_BURST}")
    return args


@dataclass
class ClientLog:
    """What one client saw: latencies by kind, errors, and the verdicts acknowledged to it."""

    latencies: dict = field(default_factory=lambda: {kind: [] for kind in KINDS})
    errors: list = field(default_factory=list)  # (kind, message)
    acked: dict = field(default_factory=dict)  # verdict id -> (prediction id, label, reviewer)

    def timed(self, kind, call):
        """Run ``call()``, keeping its latency, or the error it raised; returns its result or None."""
        start = time.perf_counter()
        try:
            result = call()
        except Exception as error:  # noqa: BLE001 - every failure is counted and reported, none stops the run
            self.errors.append((kind, f"{type(error).__name__}: {error}"[:300]))
            return None
        self.latencies[kind].append(time.perf_counter() - start)
        return result


def post_json(url: str, body: dict, timeout: float = REQUEST_TIMEOUT_S) -> tuple[int, dict]:
    """POST a JSON body; returns (HTTP status, decoded answer), error statuses included."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def rest_moderate(url: str, text: str) -> dict:
    """One text through ``POST /v1/moderations``; anything but a 200 with one result is an error."""
    status, answer = post_json(url + "v1/moderations", {"input": text})
    if status != 200 or len(answer.get("results", [])) != 1:
        raise RuntimeError(f"HTTP {status}: {answer}")
    return answer


def flag(client: Client, prediction_id: int, label: str, reviewer: str, note: str) -> int:
    """Flag a prediction through ``/flag``; returns the verdict id the reply acknowledges."""
    reply = client.predict(prediction_id, label, note, reviewer, api_name="/flag")
    match = SAVED.fullmatch(reply)
    if not match or (int(match[2]), match[3]) != (prediction_id, label):
        raise RuntimeError(f"unexpected reply: {reply!r}")
    return int(match[1])


def run_client(number: int, client: Client, url: str, texts: list[str], end: float) -> ClientLog:
    """Moderate, flag and REST-label seed texts in turn until ``end`` (a time.monotonic() value)."""
    log, reviewer = ClientLog(), f"load-{number}"
    for round_ in range(MAX_ROUNDS):
        text = texts[(number * 97 + round_) % len(texts)]
        if time.monotonic() >= end:
            break
        moderated = log.timed("moderate", lambda: client.predict(text, "score", api_name="/moderate"))
        if moderated is not None and time.monotonic() < end:
            prediction_id, model_label = int(moderated[3]), moderated[0]["label"]
            others = [label for label in LABELS if label != model_label]
            label, note = others[round_ % len(others)], f"load {number}.{round_}"
            verdict_id = log.timed("flag", lambda: flag(client, prediction_id, label, reviewer, note))
            if verdict_id is not None:
                log.acked[verdict_id] = (prediction_id, label, reviewer)
        if time.monotonic() < end:
            log.timed("rest", lambda: rest_moderate(url, text))
    return log


def run_load(url: str, clients: int, seconds: float, texts: list[str]) -> tuple[ClientLog, float]:
    """All clients at once for ``seconds``; returns their merged log and the wall time they took."""
    with ThreadPoolExecutor(clients) as pool:
        connected = list(pool.map(
            lambda _: Client(url, verbose=False, httpx_kwargs={"timeout": REQUEST_TIMEOUT_S}), range(clients)))
        start = time.monotonic()
        logs = list(pool.map(lambda n: run_client(n, connected[n], url, texts, start + seconds), range(clients)))
        duration = time.monotonic() - start
    for client in connected:
        client.close()
    merged = ClientLog()
    for log in logs:
        for kind in KINDS:
            merged.latencies[kind] += log.latencies[kind]
        merged.errors += log.errors
        merged.acked.update(log.acked)
    return merged, duration


def burst(url: str, size: int, texts: list[str]) -> dict:
    """``size`` REST requests released together; counts 200s, 503 "busy, retry" answers and anything else."""
    gate = threading.Barrier(size)

    def one(number):
        gate.wait()
        start = time.perf_counter()
        try:
            status, answer = post_json(url + "v1/moderations", {"input": texts[number % len(texts)]}, timeout=120)
        except OSError as error:
            return f"{type(error).__name__}: {error}", time.perf_counter() - start
        message = answer.get("error", {}).get("message", "")
        busy = status == 503 and "retry" in message
        return ("ok" if status == 200 else "busy" if busy else f"HTTP {status}: {message}"), time.perf_counter() - start

    with ThreadPoolExecutor(size) as pool:
        answers = list(pool.map(one, range(size)))
    outcomes = [outcome for outcome, _ in answers]
    latencies = [latency for _, latency in answers]
    others = [outcome for outcome in outcomes if outcome not in ("ok", "busy")]
    return {
        "requests": size,
        "ok": outcomes.count("ok"),
        "busy": outcomes.count("busy"),
        "other": len(others),
        "other_first": others[:ERRORS_KEPT],
        "p50_s": percentile(latencies, 50),
        "max_s": max(latencies),
    }


def check_verdicts(db: Path, acked: dict) -> dict:
    """Compare the acknowledged verdicts with the rows in the SQLite file: missing ones are lost."""
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = connection.execute(
            "select id, prediction_id, label, reviewer from verdicts where reviewer like 'load-%'").fetchall()
    finally:
        connection.close()
    stored = {row[0]: tuple(row[1:]) for row in rows}
    lost = sorted(set(acked) - set(stored))
    wrong = sorted(verdict_id for verdict_id in set(acked) & set(stored) if stored[verdict_id] != acked[verdict_id])
    return {"acknowledged": len(acked), "lost": len(lost), "wrong": len(wrong), "lost_first": lost[:ERRORS_KEPT],
            "wrong_first": wrong[:ERRORS_KEPT]}


def percentile(values: list[float], pct: float) -> float | None:
    """The nearest-rank percentile of ``values``, None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, round(pct / 100 * len(ordered)) - 1)]


def served_model(url: str) -> str:
    """The model id the server answers with."""
    with urllib.request.urlopen(url + "v1/models", timeout=10) as response:
        return json.loads(response.read())["data"][0]["id"]


def report(args, url, model, load, duration, verdicts, bursts, host) -> dict:
    """Every figure of the run as one dictionary."""
    kinds = {kind: {"requests": len(load.latencies[kind]),
                    "per_s": len(load.latencies[kind]) / duration,
                    "p50_s": percentile(load.latencies[kind], 50),
                    "p95_s": percentile(load.latencies[kind], 95),
                    "errors": sum(1 for error_kind, _ in load.errors if error_kind == kind)} for kind in KINDS}
    total = sum(kind["requests"] for kind in kinds.values())
    return {
        "url": url, "model": model, "clients": args.clients, "seconds": args.seconds, "duration_s": duration,
        "kinds": kinds, "requests": total, "requests_per_s": total / duration,
        "errors": len(load.errors),
        "errors_first": [f"{kind}: {message}" for kind, message in load.errors[:ERRORS_KEPT]],
        "verdicts": verdicts, "burst": bursts, "machine": host,
        "command": shlex.join([os.path.relpath(sys.executable), *sys.argv]),
    }


def print_report(figures: dict) -> None:
    """The figures as a short table."""
    def ms(seconds):
        return "-" if seconds is None else f"{seconds * 1000:.0f}"

    print(f"{figures['clients']} clients for {figures['duration_s']:.1f} s on {figures['url']} "
          f"(model {figures['model']})")
    print(f"{'kind':<10}{'requests':>9}{'req/s':>8}{'p50 ms':>8}{'p95 ms':>8}{'errors':>8}")
    for name, kind in figures["kinds"].items():
        print(f"{name:<10}{kind['requests']:>9}{kind['per_s']:>8.2f}{ms(kind['p50_s']):>8}{ms(kind['p95_s']):>8}"
              f"{kind['errors']:>8}")
    print(f"{'total':<10}{figures['requests']:>9}{figures['requests_per_s']:>8.2f}{'':>16}{figures['errors']:>8}")
    for error in figures["errors_first"]:
        print(f"  error: {error}")
    verdicts = figures["verdicts"]
    print(f"verdicts: {verdicts['acknowledged']} acknowledged, {verdicts['lost']} lost {verdicts['lost_first']}, "
          f"{verdicts['wrong']} wrong {verdicts['wrong_first']}")
    if figures["burst"]:
        b = figures["burst"]
        print(f"burst: {b['requests']} REST requests at once: {b['ok']} ok (200), {b['busy']} busy (503, retry), "
              f"{b['other']} other {b['other_first']}; p50 {ms(b['p50_s'])} ms, max {ms(b['max_s'])} ms")
    host = figures["machine"]
    print(f"machine: {host['cpu']}, {host['cpus']} CPUs, {host['platform']}, Python {host['python']}, "
          f"load average {host['load_start']:.2f} -> {host['load_end']:.2f}")
    print(f"command: {figures['command']}")


def main(argv=None) -> int:
    """Run the load, the optional burst, and the database check; print the figures."""
    args = parse_args(argv)
    load_at_start = os.getloadavg()[0]
    train, held_out = split_seed()
    texts = [text for text, _ in train + held_out]
    with tempfile.TemporaryDirectory(prefix="moderation-load-") as scratch:
        db = Path(args.db) if args.db else Path(scratch) / "feedback.db"
        app = app_to_measure(args, db, Path(scratch) / "app.log")
        with app as (url, _):
            model = served_model(url)
            load, duration = run_load(url, args.clients, args.seconds, texts)
            bursts = burst(url, args.burst, texts) if args.burst else None
            verdicts = check_verdicts(db, load.acked)
    figures = report(args, url, model, load, duration, verdicts, bursts, machine(load_at_start))
    if args.json:
        print(json.dumps(figures))
    else:
        print_report(figures)
    return 1 if verdicts["lost"] or verdicts["wrong"] or load.errors else 0


if __name__ == "__main__":
    sys.exit(main())
