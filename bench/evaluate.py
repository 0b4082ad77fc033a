"""Evaluation's rate against the engine's own batch rate, in one process, on one model and the held-out texts.

Round after round (interleaved, so that load from other work hits every path alike) it times:

- engine: ``Moderator.moderate`` on all held-out texts at once (the engine's own batches);
- evaluate: ``moderation.evaluate.evaluate`` on the held-out set (the same batches one at a time with a
  progress callback, then the figures from scikit-learn);
- evaluate + store: ``PlaygroundService.evaluate``, which also saves the run and its items in SQLite
  (a temporary file, WAL, ``synchronous=FULL``).

It reports texts/s (median over the rounds) and each evaluation path's share of the engine's rate, from the
medians and from the best round of each. On a shared machine the model's time swings with other work, so the
same rounds also time what evaluation adds to the engine's batches on its own (the figures from scikit-learn,
and the store's write of one run), and the target, 90% of the engine's rate, is judged on
engine / (engine + figures + store), each a median of the same rounds.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/evaluate.py [--model M | --size small|medium] [--rounds N] [--json]

Without ``--model`` or ``--size`` the model is the demo model; ``--size`` builds the random GPT-J of
``bench/throughput.py``.
"""

import argparse
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.common import machine, quiet_torch, sync
from bench.throughput import SIZES, build_checkpoint
from feedback.store import FeedbackStore
from moderation.engine import Moderator
from moderation.evaluate import evaluate, heldout_gold
from moderation.evaluate.metrics import compute_metrics
from moderation.loader import open_moderator
from moderation.settings import Settings
from playground.scratch import ScratchFolder
from playground.service import PlaygroundService

TARGET = 0.9
RATES = ("engine", "evaluate", "evaluate + store")
"""The paths that label the held-out set; the two evaluations are held to the target."""
ADDED = ("figures", "store")
"""What evaluation adds to the engine's work, timed alone."""


def parse_args(argv=None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--model", help="folder or Hugging Face id (default: the demo model)")
    choice.add_argument("--size", choices=SIZES, help="a random GPT-J of this size instead")
    parser.add_argument("--rounds", type=int, default=15, help="rounds of the three paths (default: %(default)s)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own, one per core)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    return parser.parse_args(argv)


def timed(run) -> float:
    """Seconds that ``run()`` takes (after the GPU's queued work is done)."""
    start = time.perf_counter()
    run()
    sync()
    return time.perf_counter() - start


def measure(moderator: Moderator, rounds: int, folder: Path) -> dict:
    """Median and least seconds of each path over ``rounds`` interleaved rounds, the model warmed up first."""
    gold, settings = heldout_gold(), Settings()
    service = PlaygroundService(moderator, FeedbackStore(folder / "runs.db"), ScratchFolder(folder, folder / "runs.db"))
    run = evaluate(moderator, gold, settings)
    predicted = [item["label"] for item in run["items"]]
    confidences = [item["scores"][item["label"]] for item in run["items"]]
    paths = {
        "engine": lambda: moderator.moderate(gold.texts, settings),
        "evaluate": lambda: evaluate(moderator, gold, settings, progress=lambda done, total: None),
        "evaluate + store": lambda: service.evaluate(gold, settings=settings, progress=lambda done, total: None),
        "figures": lambda: compute_metrics(gold.labels, predicted, confidences, settings.threshold, settings.policy),
        "store": lambda: service.store.evaluations.save(run),
    }
    seconds = {name: [] for name in paths}
    for _ in range(rounds):
        for name, path in paths.items():
            seconds[name].append(timed(path))
    service.close()
    engine = seconds["engine"]
    return {name: {"median_s": statistics.median(times), "min_s": min(times),
                   "texts_per_s": len(gold.items) / statistics.median(times),
                   "share_of_engine": statistics.median(engine) / statistics.median(times),
                   "share_of_engine_best": min(engine) / min(times)}
            for name, times in seconds.items()}


def target(rows: dict) -> dict:
    """The share of the engine's rate that evaluation keeps, from the engine's time and what evaluation adds."""
    engine = rows["engine"]["median_s"]
    share = engine / (engine + sum(rows[name]["median_s"] for name in ADDED))
    return {"share_of_engine": share, "wanted": TARGET, "met": share >= TARGET}


def main(argv=None):
    """Measure, then print the table (or the JSON object)."""
    args = parse_args(argv)
    quiet_torch(args.threads)
    load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-evaluate-") as folder:
        if args.size:
            build_checkpoint(args.size, folder)
            moderator = open_moderator(folder, name=f"random GPT-J ({args.size})")
        else:
            moderator = open_moderator(args.model or "demo", progress=False)
        rows = measure(moderator, args.rounds, Path(folder))
    figures = {"model": moderator.name, "texts": len(heldout_gold().items), "rounds": args.rounds, "rows": rows,
               "machine": machine(load_at_start), "command": shlex.join([Path(sys.executable).name, *sys.argv]),
               "target": target(rows)}
    print(json.dumps(figures, indent=2) if args.json else report(figures))


def report(figures: dict) -> str:
    """The figures as a readable table."""
    host, rows = figures["machine"], figures["rows"]
    lines = [f"Model: {figures['model']}; {figures['texts']} held-out texts, median of {figures['rounds']} "
             "interleaved rounds", "",
             f"{'path':<18}{'texts/s':>9}{'median s':>10}{'min s':>8}{'of engine':>11}{'best of each':>14}"]
    lines += [f"{name:<18}{row['texts_per_s']:>9.1f}{row['median_s']:>10.3f}{row['min_s']:>8.3f}"
              f"{row['share_of_engine']:>11.1%}{row['share_of_engine_best']:>14.1%}"
              for name, row in ((name, rows[name]) for name in RATES)]
    engine = rows["engine"]["median_s"]
    lines += ["", "Added by evaluation, timed alone: " + ", ".join(
        f"{name} {rows[name]['median_s'] * 1000:.1f} ms ({rows[name]['median_s'] / engine:.1%} of the engine's time)"
        for name in ADDED),
        f"Evaluation keeps {figures['target']['share_of_engine']:.1%} of the engine's rate: engine / (engine + "
        f"{' + '.join(ADDED)})"]
    lines += ["", f"Machine: {host['cpu']} ({host['cores']} cores), torch {host['torch']} ({host['torch_threads']} "
              f"threads), CUDA: {host['cuda'] or 'none'}; 1-minute load average {host['load_average'][0]:.2f} at the "
              f"start, {host['load_average'][1]:.2f} at the end",
              f"Command: {figures['command']}",
              f"Target: evaluation at {TARGET:.0%} of the engine's rate or more: "
              f"{'met' if figures['target']['met'] else 'NOT met'}"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
