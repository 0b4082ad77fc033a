"""Several models on one gold set, ranked: each model's run with its accuracy, macro-F1, AUPRC for flagged-or-not
(the probability of being flagged is one minus that of the policy's least severe label, in every format), its benign
false flags, and its speed; and, text by text, where each model is wrong."""

import statistics
import time

from sklearn.metrics import average_precision_score

from ..engine import Moderator
from ..settings import Settings
from .gold import GoldSet
from .intervals import severity_of
from .runner import Progress, evaluate

LATENCY_TEXTS = 16
"""How many gold texts are labelled one at a time, after the run, for the latency of a single text."""
COLUMNS = ("model", "accuracy", "macro_f1", "auprc_flagged", "benign_flags", "p50_ms", "labels_per_second")
"""The leaderboard's figures, in the order a table shows them."""


def timed_run(moderator: Moderator, gold: GoldSet, settings: Settings, progress: Progress | None = None,
              ) -> tuple[dict, dict]:
    """The run of ``moderator`` on ``gold`` (:func:`~moderation.evaluate.runner.evaluate`) and its speed: labels per
    second over the whole run (in the batches the model makes) and the median milliseconds of one text labelled
    alone (the first :data:`LATENCY_TEXTS` texts)."""
    start = time.perf_counter()
    run = evaluate(moderator, gold, settings, progress=progress)
    seconds = time.perf_counter() - start
    latencies = []
    for text in gold.texts[:LATENCY_TEXTS]:
        start = time.perf_counter()
        moderator.moderate([text], settings)
        latencies.append(time.perf_counter() - start)
    return run, {"labels_per_second": run["gold_size"] / seconds, "p50_ms": statistics.median(latencies) * 1000}


def auprc_flagged(run: dict) -> float | None:
    """The average precision (scikit-learn's) of each text's probability of being flagged against whether gold flags
    it; None when gold gives a single side, or the run kept no scores."""
    harmless = severity_of(run)[0]
    truth = [item["gold"] != harmless for item in run["items"]]
    if len(set(truth)) < 2 or not all(item["scores"] for item in run["items"]):
        return None
    return float(average_precision_score(truth, [1 - item["scores"][harmless] for item in run["items"]]))


def benign_flags(run: dict) -> list[dict]:
    """The texts gold calls benign (the policy's least severe label) that the run flags."""
    harmless = severity_of(run)[0]
    return [item for item in run["items"] if item["gold"] == harmless and item["label"] not in (None, harmless)]


def leaderboard(entries: list[tuple[str, dict, dict]]) -> dict:
    """``entries`` are (model name, run, speed) on one gold set. ``rows``: each model's :data:`COLUMNS` (and its
    stored run's id), best macro-F1 first (accuracy breaks ties); ``wrong``: each text some model labels otherwise
    than gold, with gold's label and each model's (None for a text a model's run left out: one it trained on)."""
    rows = [{"model": name, "run": run.get("id"), "accuracy": run["metrics"]["accuracy"],
             "macro_f1": run["metrics"]["macro_f1"], "auprc_flagged": auprc_flagged(run),
             "benign_flags": len(benign_flags(run)), "p50_ms": speed["p50_ms"],
             "labels_per_second": speed["labels_per_second"]} for name, run, speed in entries]
    rows.sort(key=lambda row: (-row["macro_f1"], -row["accuracy"]))
    labels = {name: {item["text"]: item["label"] for item in run["items"]} for name, run, _ in entries}
    gold = {item["text"]: item["gold"] for _, run, _ in entries for item in run["items"]}
    wrong = [{"text": text, "gold": label, "labels": {name: given.get(text) for name, given in labels.items()}}
             for text, label in gold.items() if any(text in given and given[text] != label
                                                    for given in labels.values())]
    return {"gold": {"name": entries[0][1]["gold_name"], "size": entries[0][1]["gold_size"]}, "rows": rows,
            "wrong": wrong}
