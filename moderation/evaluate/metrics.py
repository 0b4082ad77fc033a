"""The figures of an evaluation, from scikit-learn: agreement, per-label scores, the confusion matrix, the
decisions (flagged, intervene and its sweep), ordinal agreement and calibration.

Rows and columns follow the policy's severity order (for the card's: casual < possibly < probably < needs caution
< needs intervention). The ordinal figures (quadratic kappa, mean severity error) are computed for an ordinal policy
alone. In generate mode an output that names no label counts as wrong and gets a column of its own in the confusion
matrix; for the decisions and the ordinal figures it acts as the least severe label does in service: no flag, no
intervention.
"""

import math
import warnings

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    mean_absolute_error,
    precision_recall_fscore_support,
)

from ..policy import Policy

NO_LABEL = "no label"
"""What a generate-mode output that names none of the policy's labels counts as."""
BINS = 10
"""Equal-width confidence bins of the calibration figures."""


def compute_metrics(gold: list[str], predicted: list[str | None], confidences: list[float] | None,
                    threshold: str, policy: Policy) -> dict:
    """Every figure of an evaluation of ``predicted`` labels against ``gold`` labels, all of ``policy``.

    ``confidences`` are the probabilities of the predicted labels (score mode), None in generate mode;
    ``threshold`` is the least severe label that intervenes (or ``"never"``).
    """
    severity = policy.labels
    sweep = severity[1:]  # intervening from the first of them is being flagged
    columns = list(severity) + ([NO_LABEL] if confidences is None else [])
    code = {label: index for index, label in enumerate([*severity, NO_LABEL])}  # the severity, for a label
    truth = np.array([code[label] for label in gold])
    shown = np.array([code[label or NO_LABEL] for label in predicted])
    acting = np.where(shown == code[NO_LABEL], 0, shown)  # no label acts as the least severe label does
    labels = list(range(len(severity)))  # scikit-learn gets severities: checking numbers costs it far less
    precision, recall, f1, support = precision_recall_fscore_support(truth, shown, labels=labels, zero_division=0)
    decisions = intervention_scores(truth, acting, dict.fromkeys([*sweep, threshold]), policy)
    figures = {
        "n": len(gold),
        "accuracy": float(accuracy_score(truth, shown)),
        "macro_f1": float(np.mean(f1)),  # scikit-learn's macro F1: the unweighted mean of its per-label F1
        "per_label": {label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                      for label, p, r, f, s in zip(severity, precision, recall, f1, support)},
        "confusion": {"labels": columns,
                      "matrix": confusion_matrix(truth, shown, labels=list(range(len(columns)))).tolist()},
        "flagged": {key: value for key, value in decisions[sweep[0]].items() if key != "threshold"},
        "intervene": decisions[threshold],
        "sweep": [decisions[level] for level in sweep],
    }
    if policy.ordinal:
        figures["kappa_quadratic"] = _kappa(truth, acting, labels)
        figures["mean_severity_error"] = float(mean_absolute_error(truth, acting))
    if confidences is None:
        figures["no_label"] = float(np.mean(shown == code[NO_LABEL]))
    else:
        figures["calibration"] = calibration_bins(truth == shown, confidences)
        figures["ece"] = sum(b["count"] * abs(b["accuracy"] - b["confidence"])
                             for b in figures["calibration"]) / len(gold)
    return figures


def intervention_scores(truth: np.ndarray, acting: np.ndarray, thresholds, policy: Policy) -> dict[str, dict]:
    """For each threshold (a label or ``"never"``), the precision, recall and F1 of intervening there (zero where
    undefined) and how many gold labels intervene, for labels given as severities: one scikit-learn call, a
    column per threshold."""
    table = np.array([[policy.intervenes(label, threshold) for threshold in thresholds] for label in policy.labels])
    precision, recall, f1, support = precision_recall_fscore_support(table[truth], table[acting], average=None,
                                                                     zero_division=0)
    return {threshold: {"threshold": threshold, "precision": float(p), "recall": float(r), "f1": float(f),
                        "support": int(s)} for threshold, p, r, f, s in zip(thresholds, precision, recall, f1, support)}


def calibration_bins(correct: list[bool], confidences: list[float]) -> list[dict]:
    """The non-empty of :data:`BINS` equal-width bins of the top label's probability: mean confidence, accuracy
    (from scikit-learn's ``calibration_curve``) and how many predictions fall in each."""
    accuracy, confidence = calibration_curve(np.asarray(correct, dtype=int), confidences, n_bins=BINS,
                                             strategy="uniform")
    edges = np.linspace(0.0, 1.0, BINS + 1)
    counts = np.bincount(np.searchsorted(edges[1:-1], confidences), minlength=BINS)  # calibration_curve's binning
    return [{"confidence": float(c), "accuracy": float(a), "count": int(n)}
            for c, a, n in zip(confidence, accuracy, counts[counts > 0])]


def _kappa(truth: np.ndarray, acting: np.ndarray, labels: list[int]) -> float | None:
    """Cohen's kappa with quadratic weights over the severities ``labels``; None where it is undefined."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        kappa = cohen_kappa_score(truth, acting, labels=labels, weights="quadratic")
    return None if math.isnan(kappa) else float(kappa)
