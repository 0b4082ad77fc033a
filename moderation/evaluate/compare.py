"""Two runs side by side: every figure with its change, how sure the change is, and the texts whose label flipped
(the benign regressions among them)."""

from collections import Counter

from .intervals import paired, severity_of

FIXED, BROKEN, STILL_WRONG = "fixed", "broken", "still wrong"


def compare(a: dict, b: dict) -> dict:
    """Run ``b`` against run ``a`` (stored runs, with their items).

    ``metrics`` maps each figure (``accuracy``, ``flagged.f1``, ``per_label.casual.f1``...) to ``a``, ``b`` and
    ``delta`` (b - a, None where either is undefined). ``flipped`` lists every text of both runs whose label
    differs, with its ``gold`` label (``b``'s), the labels ``a`` and ``b``, and ``outcome``: fixed (b is right),
    broken (a was right) or still wrong. ``same_gold`` says whether both ran on the same gold set.

    On the texts both runs labelled (with ``b``'s gold labels), ``paired`` holds how many there are, the 95%
    intervals of accuracy, macro-F1 and quadratic kappa for each run and for ``b - a``, and McNemar's exact test
    (:func:`~moderation.evaluate.intervals.paired`); ``benign_regressions`` lists the flips of texts that ``a``
    labelled with ``benign``, the least severe of the policy's ``labels`` (a text that has it needs nothing done),
    as gold does, and that ``b`` flags. ``given`` counts the texts each run gave each label (what its precision
    stands on).
    """
    severity = severity_of(b)
    benign = severity[0]
    ours, theirs = _figures(a["metrics"]), _figures(b["metrics"])
    metrics = {name: {"a": value, "b": theirs[name], "delta": _delta(value, theirs[name])}
               for name, value in ours.items() if name in theirs}
    before = dict(_keyed(a["items"]))
    pairs = [(before[key], item) for key, item in _keyed(b["items"]) if key in before]
    flipped = [{"text": item["text"], "gold": item["gold"], "a": first["label"], "b": item["label"],
                "outcome": _outcome(item["gold"], first["label"], item["label"])}
               for first, item in pairs if first["label"] != item["label"]]
    return {"a": _summary(a), "b": _summary(b), "same_gold": a["gold_hash"] == b["gold_hash"], "metrics": metrics,
            "flipped": flipped, "fixed": _count(flipped, FIXED), "broken": _count(flipped, BROKEN),
            "paired": paired(*zip(*[(item["gold"], first["label"], item["label"]) for first, item in pairs]),
                             severity=severity) if pairs else None,
            "labels": severity, "benign": benign,
            "benign_regressions": [flip for flip in flipped if flip["gold"] == flip["a"] == benign
                                   and flip["b"] not in (None, benign)],
            "given": {side: dict(Counter(item["label"] for item in run["items"]))
                      for side, run in (("a", a), ("b", b))}}


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
                                          "gold_name", "gold_hash", "gold_size", "trained_left_out",
                                          "trained_included")}
