"""The figures of a feedback database, computed once for the Dashboard tab, ``GET /v1/feedback/stats`` and
``python -m feedback stats``: counts, the model's labels against the reviewers' (the label mix counts each judged
prediction's model label once, and each verdict's label), agreement between reviewers, the flag rate by day,
verdicts per reviewer and the queue.

Agreement is computed by libraries, per text (as the queue and curation count them: each reviewer's latest
verdict on a text, whichever of its predictions it judged): Cohen's kappa for each pair of reviewers on the texts
both judged (scikit-learn), and Krippendorff's alpha at the ordinal level, over the labels' severity order, for
all reviewers on the texts several judged (the ``krippendorff`` package). Either is None where it is undefined
(no shared text, or a single label used throughout).
"""

import warnings
from itertools import groupby

import krippendorff
import numpy as np
from sklearn.metrics import cohen_kappa_score

from moderation.labels import LABELS, SEVERITY


def summary(store) -> dict:
    """Every figure of ``store`` (a FeedbackStore), as plain JSON-ready values."""
    confusion = store.confusion()
    shared = store.shared_items()
    return {
        **store.stats(),
        "label_mix": {
            "model": store.judged_model_labels(),
            "reviewers": {label: sum(row[label] for row in confusion.values()) for label in LABELS},
        },
        "confusion": confusion,
        "agreement": {
            "pairs": kappa_pairs(store.paired_labels()),
            "krippendorff_alpha": ordinal_alpha(shared),
            "items": len({text for _, text, _, _ in shared}),
        },
        "by_day": by_day(store.verdicts_by_day(), shared),
        "by_reviewer": store.verdicts_by_reviewer(),
        "queue": store.queue_size(),
    }


def by_day(days: list[dict], shared: list[tuple]) -> list[dict]:
    """Each day's verdicts, flag rate (the share that find the model's label wrong) and Krippendorff's alpha
    (on the texts whose latest verdict came that day)."""
    alphas = {day: ordinal_alpha(list(rows)) for day, rows in groupby(shared, lambda row: row[0])}
    return [{"day": row["day"], "verdicts": row["verdicts"], "flag_rate": row["wrong"] / row["verdicts"],
             "krippendorff_alpha": alphas.get(row["day"])} for row in days]


def kappa_pairs(paired: list[tuple]) -> list[dict]:
    """Cohen's kappa of each pair of reviewers from ``(a, b, label of a, label of b, count)`` rows grouped by pair:
    ``[{"a", "b", "n", "cohen_kappa"}]``."""
    pairs = []
    for (a, b), rows in groupby(paired, lambda row: row[:2]):
        _, _, first, second, counts = zip(*rows)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an undefined kappa is reported as None
            kappa = cohen_kappa_score(first, second, labels=list(LABELS), sample_weight=counts,
                                      replace_undefined_by=np.nan)
        pairs.append({"a": a, "b": b, "n": sum(counts), "cohen_kappa": _defined(kappa)})
    return pairs


def ordinal_alpha(shared: list[tuple]) -> float | None:
    """Krippendorff's alpha (ordinal, over the severity order) of ``(day, text, label, count)`` rows."""
    units = {text for _, text, _, _ in shared}
    if not units:
        return None
    row_of = {text: row for row, text in enumerate(sorted(units))}
    value_counts = np.zeros((len(units), len(SEVERITY)))
    for _, text, label, count in shared:
        value_counts[row_of[text], SEVERITY.index(label)] += count
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no expected disagreement (one label throughout): alpha is undefined
        alpha = krippendorff.alpha(value_counts=value_counts, value_domain=range(len(SEVERITY)),
                                   level_of_measurement="ordinal")
    return _defined(alpha)


def _defined(value) -> float | None:
    return None if value is None or np.isnan(value) else float(value)


def as_share(value: float | None) -> str:
    """A share as a percentage, or "-" when there is none."""
    return "-" if value is None else f"{value:.0%}"


def as_figure(value: float | None) -> str:
    """A kappa or alpha to three decimals, or "-" where it is undefined."""
    return "-" if value is None else f"{value:.3f}"
