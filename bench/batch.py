"""Batch files against the engine: the rate of ``moderation.batch_files.label_file`` (read, check, label, write, and
optionally record) as a share of the rate of ``Moderator.moderate`` on the same texts in batches, and the
Python memory the file path holds as the file grows.

In one process, on one model and one list of texts (the seed texts, repeated to ``--rows``), it alternates
``--rounds`` times: the engine alone (``moderate`` on chunks of its batch size, texts in memory); a txt file
labelled into jsonl; and the same with every prediction recorded in a feedback database (as ``--record``
does). Each rate is the median of its rounds. Rates measured apart swing with the machine's other load, so
each file run also times its own calls to ``moderate``: the share of the run spent there is the file path's
rate against the engine's on the very same calls, and that is what the 90% target is checked on.

Memory: the peak of Python allocations (tracemalloc) while a file of ``--rows`` rows, then one of
``4 x --rows``, is labelled by a stand-in labeller that returns a fixed result (the model's own tensors are
not Python allocations; what grows with the file, if anything, is the reading and writing).

    HF_HUB_OFFLINE=1 .venv/bin/python bench/batch.py [--model M] [--rows 1000] [--rounds 3] [--json]

Without ``--model`` the demo model is used (built on first use).
"""

import argparse
import json
import os
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

from feedback.store import FeedbackStore
from moderation.batch_files import label_file
from moderation.engine import Moderator
from moderation.labelled_files import SEED_FILE, read_labelled
from moderation.loader import open_moderator
from moderation.policy import CARD
from moderation.prompt import normalize_text
from moderation.results import ModerationResult
from moderation.settings import Settings

TARGET = 0.9
"""The file path's rate should be at least this share of the engine's."""


def parse_args(argv=None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="folder or Hugging Face id (default: the demo model)")
    parser.add_argument("--rows", type=int, default=1000, help="texts per run (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each path, alternating (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a report")
    return parser.parse_args(argv)


def texts(rows: int) -> list[str]:
    """The seed texts, repeated (each copy numbered, so no two rows are the same) to ``rows``."""
    seed = [text for text, _ in read_labelled(SEED_FILE, CARD)]
    return [f"{seed[n % len(seed)]} ({n // len(seed)})" for n in range(rows)]


def engine_rate(moderator: Moderator, rows: list[str], settings: Settings) -> float:
    """Rows per second of ``moderate`` on chunks of the batch size, the texts already in memory."""
    start = time.perf_counter()
    for first in range(0, len(rows), moderator.batch_size):
        moderator.moderate(rows[first : first + moderator.batch_size], settings)
    return len(rows) / (time.perf_counter() - start)


def file_rate(moderator: Moderator, path: Path, out: Path, settings: Settings, store=None) -> tuple[float, float]:
    """Rows per second of ``label_file`` from ``path`` into ``out`` (recording into ``store`` when given), and the
    share of its time spent in ``moderate``: the file path's rate against the engine's within the same run."""
    in_engine = 0.0

    def label(batch):
        nonlocal in_engine
        start = time.perf_counter()
        results = moderator.moderate(batch, settings)
        in_engine += time.perf_counter() - start
        return results

    record = store.save_results if store else None
    run = label_file(path, out, label, chunk_size=moderator.batch_size, record=record)
    return run.rows / run.seconds, in_engine / run.seconds


def python_peak(path: Path, out: Path, result: ModerationResult) -> int:
    """Peak bytes of Python allocations while ``path`` is labelled by a labeller that returns ``result``."""
    tracemalloc.start()
    try:
        label_file(path, out, lambda batch: [result] * len(batch))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def measure(args) -> dict:
    """Every figure, as a dict."""
    moderator = open_moderator(args.model, progress=False)
    settings = Settings()
    rows = texts(args.rows)
    folder = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    path, out = folder / "rows.txt", folder / "out.jsonl"
    path.write_text("".join(row + "\n" for row in rows), encoding="utf-8")
    store = FeedbackStore(folder / "feedback.db")
    store.save_template(settings.template.id, settings.template.to_json())
    moderator.moderate(rows[: moderator.batch_size], settings)  # warm up
    rates = {"engine": [], "file": [], "file_recorded": []}
    in_run = {"file": [], "file_recorded": []}
    for _ in range(args.rounds):
        rates["engine"].append(engine_rate(moderator, [normalize_text(row) for row in rows], settings))
        for name, recorded in (("file", None), ("file_recorded", store)):
            rate, share = file_rate(moderator, path, out, settings, recorded)
            rates[name].append(rate)
            in_run[name].append(share)
    medians = {name: statistics.median(values) for name, values in rates.items()}
    result = moderator.moderate(rows[:1], settings)[0]
    big = folder / "big.txt"
    big.write_text("".join(row + "\n" for row in texts(4 * args.rows)), encoding="utf-8")
    memory = {"rows": args.rows, "peak_bytes": python_peak(path, out, result),
              "rows_4x": 4 * args.rows, "peak_bytes_4x": python_peak(big, out, result)}
    store.close()
    return {
        "model": moderator.name, "rows": args.rows, "rounds": args.rounds, "batch_size": moderator.batch_size,
        "rates": rates, "median_rows_per_s": medians,
        "share_of_engine": {name: medians[name] / medians["engine"] for name in ("file", "file_recorded")},
        "share_in_run": {name: statistics.median(values) for name, values in in_run.items()},
        "memory": memory, "load_average": os.getloadavg(),
        "target": TARGET,
    }


def report(figures: dict) -> str:
    """The figures as lines of text."""
    medians, shares, memory = figures["median_rows_per_s"], figures["share_of_engine"], figures["memory"]
    lines = [f"Model: {figures['model']}; {figures['rows']:,} rows, batch size {figures['batch_size']}, median of "
             f"{figures['rounds']} alternating rounds (1-minute load average {figures['load_average'][0]:.2f})", ""]
    for name, title in (("engine", "engine (moderate, texts in memory)"), ("file", "file txt -> jsonl"),
                        ("file_recorded", "file, predictions recorded")):
        share = f"{shares[name]:7.1%} of the engine" if name in shares else ""
        rounds = ", ".join(f"{rate:.0f}" for rate in figures["rates"][name])
        lines.append(f"  {title:<36}{medians[name]:>8.1f} rows/s  {share}  (rounds: {rounds})")
    lines += ["", f"Python memory while labelling (stand-in labeller): {memory['peak_bytes'] / 1024:,.0f} KiB peak "
              f"for {memory['rows']:,} rows, {memory['peak_bytes_4x'] / 1024:,.0f} KiB for {memory['rows_4x']:,}", ""]
    lines.append("Within each file run, the share of its time spent in the engine (the file path's rate against "
                 "the engine's on the same calls, which load from other work cannot skew):")
    for name in ("file", "file_recorded"):
        share = figures["share_in_run"][name]
        met = share >= figures["target"]
        lines.append(f"  [{'met' if met else 'NOT met':>7}] {name}: at least {figures['target']:.0%}: {share:.1%}")
    return "\n".join(lines)


def main(argv=None):
    """Measure, then print the report (or the JSON object)."""
    args = parse_args(argv)
    figures = measure(args)
    print(json.dumps(figures, indent=2) if args.json else report(figures))


if __name__ == "__main__":
    main()
