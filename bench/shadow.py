"""Shadow traffic's cost to the answers: the p50 latency of one client's ``POST /v1/moderations``, with a shadow
labelling beside the serving model and without one.

It starts ``python app.py`` on ``--model`` with a versions folder that holds the shadow (``--adapter DIR``, or an
adapter it trains on the model first: a few steps on the seed set), then in alternating rounds sends ``--requests``
requests one after another, each one text of the seed set, recorded (the shadow labels what is recorded): without a
shadow, then with the version shadowed (through the page's ``/shadow_version`` and ``/stop_shadow``). It prints each
round's p50 and p95, the ratio of the median p50s (target: at most 1.2) and how many texts the shadow labelled and
dropped (from ``/metrics``).

    HF_HUB_OFFLINE=1 .venv/bin/python bench/shadow.py [--model demo] [--adapter DIR] [--requests 300] [--rounds 3] \\
        [--json]
"""

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # the client must not phone home

from gradio_client import Client  # noqa: E402

from bench.app_process import running_app  # noqa: E402
from bench.common import machine  # noqa: E402
from bench.load import percentile  # noqa: E402
from bench.serve import clients_run, texts  # noqa: E402
from moderation.labelled_files import SEED_FILE  # noqa: E402
from moderation.training.__main__ import main as train  # noqa: E402
from moderation.versions import ModelVersion  # noqa: E402

TARGET = 1.2
"""The p50 with a shadow, at most this many times the p50 without."""
WARMUP = 20
SETTLE_S = 30
"""How long the count waits for the shadow to label what waits for it."""
REVIEWER = "shadow-bench"


def parse_args(argv=None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="demo", help="what app.py --model takes (default: %(default)s)")
    parser.add_argument("--adapter", metavar="DIR", help="the version to shadow (default: one trained on the model)")
    parser.add_argument("--requests", type=int, default=300, help="requests in each round and arm (%(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each without then with (%(default)s)")
    parser.add_argument("--pause-ms", type=float, default=10, help="the wait after each answer (%(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if not 1 <= args.requests <= 100_000 or not 1 <= args.rounds <= 20 or not 0 <= args.pause_ms <= 10_000:
        parser.error("need 1-100000 requests, 1-20 rounds and a pause of 0-10000 ms")
    return args


def shadow_version(model: str, adapter: str | None, versions: Path) -> str:
    """The version to shadow, copied into ``versions`` (trained on ``model`` first when no ``adapter``): its
    folder's name."""
    if adapter is None:
        adapter = versions.parent / "trained"
        code = train(["--model", model, "--data", str(SEED_FILE), "--out", str(adapter), "--lora", "--max-steps", "4",
                      "--eval-steps", "2", "--replay-ratio", "0"])
        if code:
            raise SystemExit(code)
    name = ModelVersion.read(adapter).name
    shutil.copytree(adapter, versions / name)
    return name


def shadow_counts(url: str) -> dict[str, float]:
    """How many texts the running shadow labelled and dropped, from /metrics, once nothing waits for it (or after
    :data:`SETTLE_S`)."""
    deadline = time.monotonic() + SETTLE_S
    while True:
        with urllib.request.urlopen(url + "metrics", timeout=30) as answer:
            exposition = answer.read().decode()
        waiting = re.search(r'^moderation_queue_depth\{queue="shadow"\} (\S+)$', exposition, re.MULTILINE)
        if not waiting or float(waiting[1]) == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    return {outcome: float(count) for outcome, count in
            re.findall(r'^moderation_shadow_texts_total\{outcome="(\w+)"\} (\S+)$', exposition, re.MULTILINE)}


def latencies(url: str, corpus: list[str], requests: int, pause: float) -> list[float]:
    """Seconds of each of ``requests`` requests sent one after another, ``pause`` seconds apart (after a
    warm-up)."""
    asyncio.run(clients_run(url, corpus, 1, requests=WARMUP))
    run = asyncio.run(clients_run(url, corpus, 1, requests=requests, pause=pause))
    if run["errors"]:
        raise SystemExit(f"the app refused requests: {run['errors'][:3]}")
    return run["latencies"]


def main(argv=None) -> int:
    """Measure and print; returns the exit code."""
    args = parse_args(argv)
    load_at_start = os.getloadavg()[0]
    corpus = texts()
    with tempfile.TemporaryDirectory(prefix="shadow-bench-") as scratch:
        versions = Path(scratch) / "versions"
        versions.mkdir()
        name = shadow_version(args.model, args.adapter, versions)
        with running_app(args.model, Path(scratch) / "feedback.db", "--versions", versions,
                         log=Path(scratch) / "app.log") as (url, _):
            page = Client(url, verbose=False)
            rounds, counts = [], {}
            for _ in range(args.rounds):
                without = latencies(url, corpus, args.requests, args.pause_ms / 1000)
                page.predict(name, REVIEWER, api_name="/shadow_version")
                shadowed = latencies(url, corpus, args.requests, args.pause_ms / 1000)
                counts = shadow_counts(url)
                page.predict(REVIEWER, api_name="/stop_shadow")
                rounds.append({arm: {"p50_ms": 1000 * percentile(values, 50), "p95_ms": 1000 * percentile(values, 95)}
                               for arm, values in (("without", without), ("with", shadowed))})
            page.close()
    p50 = {arm: statistics.median(one[arm]["p50_ms"] for one in rounds) for arm in ("without", "with")}
    figures = {"model": args.model, "shadow": name, "requests": args.requests, "pause_ms": args.pause_ms,
               "rounds": rounds, "p50_ms": p50,
               "ratio": p50["with"] / p50["without"], "target": TARGET, "last_round_shadow": counts,
               "machine": machine(load_at_start)}
    figures["met"] = figures["ratio"] <= TARGET
    if args.json:
        print(json.dumps(figures))
        return 0
    for number, one in enumerate(rounds, 1):
        print(f"round {number}: " + "; ".join(f"{arm} p50 {one[arm]['p50_ms']:.1f} ms, p95 {one[arm]['p95_ms']:.1f} ms"
                                              for arm in ("without", "with")))
    print(f"p50 with the shadow {p50['with']:.1f} ms against {p50['without']:.1f} ms without: "
          f"{figures['ratio']:.2f}x (target at most {TARGET}x: {'met' if figures['met'] else 'NOT met'}); the shadow "
          f"labelled {counts.get('labelled', 0):.0f} texts and dropped {counts.get('dropped', 0):.0f} in the last "
          "round")
    return 0


if __name__ == "__main__":
    sys.exit(main())
