"""Two runs side by side: every figure with its change, and the texts whose label flipped."""

from collections import Counter

FIXED, BROKEN, STILL_WRONG = "fixed", "broken", "still wrong"


def compare(a: dict, b: dict) -> dict:
    """Run ``b`` against run ``a`` (stored runs, with their items).

    ``metrics`` maps each figure (``accuracy``, ``flagged.f1``, ``per_label.casual.f1``...) to ``a``, ``b`` and
    ``delta`` (b - a, None where either is undefined). ``flipped`` lists every text of both runs whose label
    differs, with its ``gold`` label (``b``'s), the labels ``a`` and ``b``, and ``outcome``: fixed (b is right),
    broken (a was right) or still wrong. ``same_gold`` says whether both ran on the same gold set.
    """
    ours, theirs = _figures(a["metrics"]), _figures(b["metrics"])
    metrics = {name: {"a": value, "b": theirs[name], "delta": _delta(value, theirs[name])}
               for name, value in ours.items() if name in theirs}
    before = dict(_keyed(a["items"]))
    flipped = [{"text": item["text"], "gold": item["gold"], "a": before[key]["label"], "b": item["label"],
                "outcome": _outcome(item["gold"], before[key]["label"], item["label"])}
               for key, item in _keyed(b["items"]) if key in before and before[key]["label"] != item["label"]]
    return {"a": _summary(a), "b": _summary(b), "same_gold": a["gold_hash"] == b["gold_hash"], "metrics": metrics,
            "flipped": flipped, "fixed": _count(flipped, FIXED), "broken": _count(flipped, BROKEN)}


def _figures(metrics: dict, prefix: str = "") -> dict:
    """The single figures of ``metrics``, flattened to dotted names (the matrix, bins and sweep left out)."""
    figures = {}
    for name, value in metrics.items():
        if isinstance(value, dict):
            figures.update(_figures(value, f"{prefix}{name}."))
        elif value is None or isinstance(value, int | float):
            figures[prefix + name] = value
    return figures


def _keyed(items: list[dict]):
    """(key, item) pairs; the key is the text and, for a text listed more than once, which time it is."""
    seen: Counter = Counter()
    for item in items:
        seen[item["text"]] += 1
        yield (item["text"], seen[item["text"]]), item


def _outcome(gold: str, a: str | None, b: str | None) -> str:
    return FIXED if b == gold else BROKEN if a == gold else STILL_WRONG


def _delta(a, b):
    return None if a is None or b is None else b - a


def _count(flipped: list[dict], outcome: str) -> int:
    return sum(item["outcome"] == outcome for item in flipped)


def _summary(run: dict) -> dict:
    """What identifies a run (a run not stored has no id or time)."""
    return {key: run.get(key) for key in ("id", "created", "model", "version", "template", "threshold", "mode",
                                          "gold_name", "gold_hash", "gold_size")}
