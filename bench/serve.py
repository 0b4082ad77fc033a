"""Serving overhead: the engine's own rate against the app serving the same model over HTTP, in one run.

1. engine: ``Moderator.moderate`` in this process on 32 texts at once, round after round (labels/s), and on
   one text at a time (p50 latency);
2. app: ``python app.py`` on the same model in a process of its own, with a temporary database and
   recording on (unless ``--no-record-api``); 32 concurrent clients each ``POST /v1/moderations`` one text a
   request for ``--seconds`` (labels/s), then one client alone (p50 latency).

It prints both, their ratios and whether the targets hold: at least 0.5x the engine's rate with 32 clients,
and a p50 at one client at most 1.5x the engine's single-text latency. ``--profile FILE`` samples the
server with py-spy during the 32-client run and writes its stacks (py-spy's ``raw`` format, one collapsed
stack a line with its count), the input for any flame graph tool.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/serve.py [--model demo] [--clients 32] [--seconds 10] \\
        [--no-record-api] [--profile stacks.txt] [--json]
"""

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import httpx
import torch

from moderation.demo import split_seed
from moderation.models import open_moderator

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"rate_ratio": 0.5, "p50_ratio": 1.5}
BATCH = 32
ENGINE_SECONDS = 5.0
SINGLE_REQUESTS = 200
WARMUP_REQUESTS = 64
START_TIMEOUT_S = 300


def parse_args(argv=None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="demo", help="what app.py --model takes (default: %(default)s)")
    parser.add_argument("--clients", type=int, default=BATCH, help="concurrent clients (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=10, help="how long the clients run (default: %(default)s)")
    parser.add_argument("--no-record-api", action="store_true", help="start the app with --no-record-api")
    parser.add_argument("--profile", metavar="FILE", help="sample the server with py-spy into FILE (raw stacks)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 256 or not 0 < args.seconds <= 600:
        parser.error("need 1-256 clients and 0-600 seconds")
    if args.profile and not shutil.which("py-spy"):
        parser.error("--profile needs py-spy: pip install py-spy")
    return args


def texts() -> list[str]:
    """The seed records' texts, the same for the engine and the clients."""
    records, _ = split_seed()
    return [text for text, _ in records]


def engine_figures(model: str, corpus: list[str]) -> dict:
    """The engine alone: labels/s on batches of 32 texts, and the p50 latency of one text."""
    moderator = open_moderator(model, progress=False)
    moderator.moderate(corpus[:BATCH])  # the prefix cache is built once, outside the timing
    labelled, start = 0, time.perf_counter()
    while time.perf_counter() - start < ENGINE_SECONDS:
        offset = (labelled // BATCH * BATCH) % (len(corpus) - BATCH)
        labelled += len(moderator.moderate(corpus[offset : offset + BATCH]))
    rate = labelled / (time.perf_counter() - start)
    latencies = []
    for number in range(SINGLE_REQUESTS):
        begin = time.perf_counter()
        moderator.moderate([corpus[number % len(corpus)]])
        latencies.append(time.perf_counter() - begin)
    return {"labels_per_s": rate, "p50_s": statistics.median(latencies), "model": moderator.name}


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_app(model: str, db: Path, log: Path, extra: list[str]) -> tuple[subprocess.Popen, str]:
    """``python app.py`` on a free port; returns (process, url) once /healthz answers."""
    port = free_port()
    command = [sys.executable, str(ROOT / "app.py"), "--model", model, "--db", str(db), "--port", str(port), *extra]
    with open(log, "w") as out:
        server = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            urllib.request.urlopen(url + "healthz", timeout=2).close()
            return server, url
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                sys.exit(f"app.py did not start:\n{log.read_text()}")
            time.sleep(0.3)


async def clients_run(url: str, corpus: list[str], clients: int, *, seconds: float | None = None,
                      requests: int | None = None) -> dict:
    """``clients`` concurrent clients posting one text a request, for ``seconds`` or ``requests`` each."""
    latencies, errors = [], []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as http:
        start = time.perf_counter()
        deadline = start + (seconds or float("inf"))

        async def client(number: int):
            sent = 0
            while time.perf_counter() < deadline and (requests is None or sent < requests):
                text = corpus[(number * 7919 + sent) % len(corpus)]
                begin = time.perf_counter()
                answer = await http.post("v1/moderations", json={"input": text})
                if answer.status_code == 200:
                    latencies.append(time.perf_counter() - begin)
                else:
                    errors.append(f"{answer.status_code}: {answer.text[:200]}")
                sent += 1

        await asyncio.gather(*(client(number) for number in range(clients)))
        elapsed = time.perf_counter() - start
    return {"labels_per_s": len(latencies) / elapsed, "requests": len(latencies), "errors": len(errors),
            "first_errors": errors[:3], "p50_s": statistics.median(latencies) if latencies else None,
            "p95_s": statistics.quantiles(latencies, n=20)[-1] if len(latencies) > 1 else None}


def app_figures(args, corpus: list[str]) -> dict:
    """The app on the same model: labels/s with ``args.clients`` clients, then p50 at one client."""
    folder = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    extra = ["--no-record-api"] if args.no_record_api else []
    server, url = start_app(args.model, folder / "feedback.db", folder / "app.log", extra)
    profiler = None
    try:
        asyncio.run(clients_run(url, corpus, args.clients, requests=WARMUP_REQUESTS // args.clients + 1))
        if args.profile:
            profiler = subprocess.Popen(["py-spy", "record", "--pid", str(server.pid), "--format", "raw",
                                         "--output", args.profile, "--duration", str(int(args.seconds)),
                                         "--nonblocking", "--threads"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        many = asyncio.run(clients_run(url, corpus, args.clients, seconds=args.seconds))
        if profiler:
            profiler.wait(timeout=60)
        one = asyncio.run(clients_run(url, corpus, 1, requests=SINGLE_REQUESTS))
        recorded = None
        if not args.no_record_api:
            server.terminate()  # a clean stop flushes what is still queued for the database
            server.wait(timeout=30)
            with sqlite3.connect(folder / "feedback.db") as db:
                recorded = db.execute("select count(*) from predictions").fetchone()[0]
        return {"many": many, "one": one, "recorded": recorded}
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


def main(argv=None) -> int:
    """Run both measurements and print the figures; exit status 1 when a target is missed."""
    args = parse_args(argv)
    corpus = texts()
    engine = engine_figures(args.model, corpus)
    app = app_figures(args, corpus)
    ratios = {"rate_ratio": app["many"]["labels_per_s"] / engine["labels_per_s"],
              "p50_ratio": app["one"]["p50_s"] / engine["p50_s"]}
    met = {"rate_ratio": ratios["rate_ratio"] >= TARGETS["rate_ratio"],
           "p50_ratio": ratios["p50_ratio"] <= TARGETS["p50_ratio"]}
    report = {
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "torch": torch.__version__, "torch_threads": torch.get_num_threads()},
        "model": engine["model"], "clients": args.clients, "seconds": args.seconds,
        "recording": not args.no_record_api, "engine": engine, "app": app, "ratios": ratios,
        "targets": TARGETS, "met": met,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"model {engine['model']}, {os.cpu_count()} CPUs, torch {torch.__version__} "
              f"({torch.get_num_threads()} threads); recording {'on' if report['recording'] else 'off'}")
        print(f"engine, {BATCH} texts at once: {engine['labels_per_s']:.0f} labels/s; "
              f"one text: p50 {engine['p50_s'] * 1000:.2f} ms")
        many, one = app["many"], app["one"]
        print(f"app, {args.clients} clients: {many['labels_per_s']:.0f} labels/s, p50 {many['p50_s'] * 1000:.1f} ms, "
              f"p95 {many['p95_s'] * 1000:.1f} ms, {many['errors']} errors")
        print(f"app, 1 client: p50 {one['p50_s'] * 1000:.2f} ms, {one['errors']} errors")
        if app["recorded"] is not None:
            print(f"predictions recorded: {app['recorded']} (every answered request, warm-up included)")
        print(f"rate {ratios['rate_ratio']:.2f}x the engine's (target >= {TARGETS['rate_ratio']}x): "
              f"{'met' if met['rate_ratio'] else 'MISSED'}")
        print(f"p50 at 1 client {ratios['p50_ratio']:.2f}x the engine's (target <= {TARGETS['p50_ratio']}x): "
              f"{'met' if met['p50_ratio'] else 'MISSED'}")
    return 0 if all(met.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
