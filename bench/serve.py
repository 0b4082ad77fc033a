"""Serving overhead: the engine's own rate against the app serving the same model over HTTP, in one run.

- engine: ``Moderator.moderate`` in this process (in a thread of its own, as the app's batcher runs it) on
  32 texts at once, batch after batch (labels/s), and on
  one text at a time (p50 latency);
- app: ``python app.py`` on the same model in a process of its own, with a temporary database and
  recording on (unless ``--no-record-api``); 32 concurrent clients each ``POST /v1/moderations`` one text a
  request (labels/s), then one client alone (p50 latency).

The two take turns (``--rounds``), so that load from other work on the machine falls on both alike; the
rate ratio is the median of the rounds' ratios. It prints both, their ratios and whether the targets hold:
at least 0.5x the engine's rate with 32 clients,
and a p50 at one client at most 1.5x the engine's single-text latency. ``--profile FILE`` samples the
server with py-spy during the first 32-client run and writes its stacks (py-spy's ``raw`` format, one collapsed
stack a line with its count), the input for any flame graph tool.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/serve.py [--model demo] [--clients 32] [--seconds 10] \\
        [--rounds 4] [--no-record-api] [--profile stacks.txt] [--json]
"""

import argparse
import asyncio
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from bench.app_process import running_app
from bench.common import machine
from moderation.demo.recipe import split_seed
from moderation.loader import open_moderator

TARGETS = {"rate_ratio": 0.5, "p50_ratio": 1.5}
BATCH = 32
SINGLE_REQUESTS = 400
WARMUP_REQUESTS = 64


def parse_args(argv=None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="demo", help="what app.py --model takes (default: %(default)s)")
    parser.add_argument("--clients", type=int, default=BATCH, help="concurrent clients (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=20,
                        help="how long the engine and the clients each run, in all (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=4, help="turns of engine then app (default: %(default)s)")
    parser.add_argument("--no-record-api", action="store_true", help="start the app with --no-record-api")
    parser.add_argument("--profile", metavar="FILE", help="sample the server with py-spy into FILE (raw stacks)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 256 or not 0 < args.seconds <= 600 or not 1 <= args.rounds <= 20:
        parser.error("need 1-256 clients, 0-600 seconds and 1-20 rounds")
    if args.profile and not py_spy():
        parser.error("--profile needs py-spy: pip install -r requirements-test.txt")
    return args


def py_spy() -> str | None:
    """The py-spy program: on the PATH, or beside this Python (a virtual environment's bin/)."""
    return shutil.which("py-spy") or shutil.which("py-spy", path=os.path.dirname(sys.executable))


def texts() -> list[str]:
    """The seed records' texts, the same for the engine and the clients."""
    records, _ = split_seed()
    return [text for text, _ in records]


class Engine:
    """The model in this process, called as the app's batcher calls it: from a thread of its own."""

    def __init__(self, model: str, corpus: list[str]):
        self.moderator = open_moderator(model, progress=False)
        self.corpus = corpus
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine")
        self.thread.submit(self.moderator.moderate, corpus[:BATCH]).result()  # the prefix cache, built once

    def rate(self, seconds: float) -> float:
        """Labels/s on batches of 32 texts."""
        return self.thread.submit(self._rate, seconds).result()

    def latencies(self, count: int) -> list[float]:
        """Seconds to label one text, ``count`` times."""
        return self.thread.submit(self._latencies, count).result()

    def _rate(self, seconds: float) -> float:
        labelled, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            offset = (labelled // BATCH * BATCH) % (len(self.corpus) - BATCH)
            labelled += len(self.moderator.moderate(self.corpus[offset : offset + BATCH]))
        return labelled / (time.perf_counter() - start)

    def _latencies(self, count: int) -> list[float]:
        latencies = []
        for number in range(count):
            begin = time.perf_counter()
            self.moderator.moderate([self.corpus[number % len(self.corpus)]])
            latencies.append(time.perf_counter() - begin)
        return latencies


async def clients_run(url: str, corpus: list[str], clients: int, *, seconds: float | None = None,
                      requests: int | None = None, pause: float = 0.0) -> dict:
    """``clients`` concurrent clients posting one text a request, for ``seconds`` or ``requests`` each, each waiting
    ``pause`` seconds after an answer before its next request.

    Each client is one keep-alive HTTP/1.1 connection written and read by hand: a client library costs a few
    milliseconds of CPU a request, which on this machine would be taken from the server being measured.
    """
    latencies, errors = [], []
    address = urllib.parse.urlsplit(url)
    start = time.perf_counter()
    deadline = start + (seconds or float("inf"))

    async def client(number: int):
        reader, writer = await asyncio.open_connection(address.hostname, address.port)
        sent = 0
        try:
            while time.perf_counter() < deadline and (requests is None or sent < requests):
                body = json.dumps({"input": corpus[(number * 7919 + sent) % len(corpus)]}).encode()
                begin = time.perf_counter()
                writer.write(b"POST /v1/moderations HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (address.netloc.encode(), len(body), body))
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)[1])
                answer = await reader.readexactly(length)
                if head.startswith(b"HTTP/1.1 200"):
                    latencies.append(time.perf_counter() - begin)
                else:
                    errors.append(f"{head.split(b' ', 2)[1].decode()}: {answer[:200].decode(errors='replace')}")
                sent += 1
                await asyncio.sleep(pause)
        finally:
            writer.close()

    await asyncio.gather(*(client(number) for number in range(clients)))
    elapsed = time.perf_counter() - start
    return {"labels_per_s": len(latencies) / elapsed, "latencies": latencies, "errors": errors}


def recorded_predictions(db: Path) -> int:
    """How many predictions the app's database holds."""
    with sqlite3.connect(db) as connection:
        return connection.execute("select count(*) from predictions").fetchone()[0]


def measure(args, engine: Engine, url: str, corpus: list[str], profile_pid: int | None) -> dict:
    """Engine and app in turns, ``args.rounds`` times, so that other load on the machine hits both alike."""
    rounds, single, errors = [], {"engine": [], "app": []}, []
    slice_s = args.seconds / args.rounds
    for number in range(args.rounds):
        engine_rate = engine.rate(slice_s)
        profiler = None
        if profile_pid and number == 0:
            profiler = subprocess.Popen([py_spy(), "record", "--pid", str(profile_pid), "--format", "raw",
                                         "--output", args.profile, "--duration", str(max(1, int(slice_s))),
                                         "--nonblocking", "--threads"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        many = asyncio.run(clients_run(url, corpus, args.clients, seconds=slice_s))
        if profiler:
            profiler.wait(timeout=120)
        single["engine"] += engine.latencies(SINGLE_REQUESTS // args.rounds)
        one = asyncio.run(clients_run(url, corpus, 1, requests=SINGLE_REQUESTS // args.rounds))
        single["app"] += one["latencies"]
        errors += many["errors"] + one["errors"]
        rounds.append({"engine_labels_per_s": engine_rate, "app_labels_per_s": many["labels_per_s"],
                       "app_p50_s": statistics.median(many["latencies"]) if many["latencies"] else None})
    return {"rounds": rounds, "single": single, "errors": errors}


def main(argv=None) -> int:
    """Run both measurements and print the figures; exit status 1 when a target is missed."""
    args = parse_args(argv)
    load_at_start = os.getloadavg()[0]
    corpus = texts()
    engine = Engine(args.model, corpus)
    folder = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    extra = ["--no-record-api"] if args.no_record_api else []
    try:
        with running_app(args.model, folder / "feedback.db", *extra, log=folder / "app.log") as (url, server):
            asyncio.run(clients_run(url, corpus, args.clients, requests=WARMUP_REQUESTS // args.clients + 1))
            measured = measure(args, engine, url, corpus, server.pid if args.profile else None)
            server.terminate()  # a clean stop commits what is still queued for the database
            server.wait(timeout=60)
        recorded = None if args.no_record_api else recorded_predictions(folder / "feedback.db")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    rounds = measured["rounds"]
    engine_rate = statistics.median(r["engine_labels_per_s"] for r in rounds)
    app_rate = statistics.median(r["app_labels_per_s"] for r in rounds)
    engine_p50, app_p50 = (statistics.median(measured["single"][side]) for side in ("engine", "app"))
    ratios = {"rate_ratio": statistics.median(r["app_labels_per_s"] / r["engine_labels_per_s"] for r in rounds),
              "p50_ratio": app_p50 / engine_p50}
    met = {"rate_ratio": ratios["rate_ratio"] >= TARGETS["rate_ratio"],
           "p50_ratio": ratios["p50_ratio"] <= TARGETS["p50_ratio"]}
    report = {
        "machine": machine(load_at_start),
        "model": engine.moderator.name, "clients": args.clients, "seconds": args.seconds, "rounds": rounds,
        "recording": not args.no_record_api, "recorded": recorded, "errors": measured["errors"][:5],
        "engine": {"labels_per_s": engine_rate, "p50_s": engine_p50},
        "app": {"labels_per_s": app_rate, "p50_one_client_s": app_p50},
        "ratios": ratios, "targets": TARGETS, "met": met,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"model {report['model']}, {os.cpu_count()} CPUs, torch {torch.__version__} "
              f"({torch.get_num_threads()} threads); recording {'on' if report['recording'] else 'off'}; "
              f"{args.rounds} rounds, engine and app in turns")
        for number, r in enumerate(rounds, 1):
            print(f"  round {number}: engine {r['engine_labels_per_s']:.0f} labels/s, app with {args.clients} "
                  f"clients {r['app_labels_per_s']:.0f} labels/s (p50 {r['app_p50_s'] * 1000:.1f} ms)")
        print(f"engine, {BATCH} texts at once: {engine_rate:.0f} labels/s (median); one text: p50 "
              f"{engine_p50 * 1000:.2f} ms")
        print(f"app, {args.clients} clients: {app_rate:.0f} labels/s (median); 1 client: p50 {app_p50 * 1000:.2f} ms; "
              f"{len(measured['errors'])} errors")
        if recorded is not None:
            print(f"predictions recorded: {recorded} (every answered request, warm-up included)")
        print(f"rate {ratios['rate_ratio']:.2f}x the engine's (median of the rounds; target >= "
              f"{TARGETS['rate_ratio']}x): {'met' if met['rate_ratio'] else 'MISSED'}")
        print(f"p50 at 1 client {ratios['p50_ratio']:.2f}x the engine's (target <= {TARGETS['p50_ratio']}x): "
              f"{'met' if met['p50_ratio'] else 'MISSED'}")
    return 0 if all(met.values()) and not measured["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
