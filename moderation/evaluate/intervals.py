"""How sure the headline figures are: 95% bootstrap intervals (scipy) of accuracy, macro-F1 and quadratic kappa over
the texts of one run, and, for two runs on the same texts, of each figure and of their difference (the texts resampled
in pairs); and McNemar's exact test (statsmodels) of the texts one run gets right and the other wrong.

The figures read the labels as severities from least to most severe (a policy's order); quadratic kappa means
something for an ordinal policy alone, and a report shows it only for one (:func:`figures_of`).

The bootstrap is seeded, so a report says the same each time it is made, and computes its figures for all the
resamples at once from their confusion counts: the same figures scikit-learn gives (:mod:`.metrics`; the tests
compare them), thousands of times in milliseconds.
"""

import warnings
from functools import partial

import numpy as np
from scipy.stats import bootstrap
from statsmodels.stats.contingency_tables import mcnemar

from ..policy import CARD
from .metrics import NO_LABEL

FIGURES = ("accuracy", "macro_f1", "kappa_quadratic")
"""The figures that get intervals (quadratic kappa for an ordinal policy alone)."""
RESAMPLES = 2000
CONFIDENCE = 0.95
SEED = 0


def figures_of(metrics: dict) -> tuple[str, ...]:
    """The figures of :data:`FIGURES` that a run's ``metrics`` hold: all three for an ordinal policy, no kappa for
    another."""
    return tuple(figure for figure in FIGURES if figure in metrics)


def severity_of(run: dict) -> tuple[str, ...]:
    """A stored run's labels from least to most severe (its policy's, as its figures list them)."""
    return tuple(run["metrics"]["per_label"])


def codes(labels, severity: tuple[str, ...] = CARD.labels) -> np.ndarray:
    """Labels as their severity (0 for the least severe label of ``severity``, and so on), ``len(severity)`` for no
    label."""
    code = {label: index for index, label in enumerate([*severity, NO_LABEL])}
    return np.array([code[label or NO_LABEL] for label in labels])


def headline(truth: np.ndarray, shown: np.ndarray, axis: int = -1, *, size: int = len(CARD.labels)) -> np.ndarray:
    """Accuracy, macro-F1 (over the ``size`` labels, zero where undefined) and quadratic kappa (no label acting as
    the least severe; NaN where undefined) of the codes along ``axis``, for every row at once: shape ``(3, *rows)``."""
    kinds = size + 1
    truth, shown = np.moveaxis(truth, axis, -1), np.moveaxis(shown, axis, -1)
    rows, n = truth.shape[:-1], truth.shape[-1]
    flat = (np.arange(int(np.prod(rows)))[:, None] * size * kinds + (truth * kinds + shown).reshape(-1, n)).ravel()
    counts = np.bincount(flat, minlength=int(np.prod(rows)) * size * kinds).reshape(-1, size, kinds).astype(float)
    right = np.trace(counts[:, :, :size], axis1=1, axis2=2)
    hits = np.diagonal(counts[:, :, :size], axis1=1, axis2=2)
    given, true = counts.sum(axis=1)[:, :size], counts.sum(axis=2)
    weights = np.subtract.outer(np.arange(size), np.arange(size)) ** 2.0  # kappa's disagreement weights
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(given + true > 0, 2 * hits / (given + true), 0.0)
        acting = counts[:, :, :size].copy()
        acting[:, :, 0] += counts[:, :, size]  # no label acts as the least severe
        expected = acting.sum(axis=2)[:, :, None] * acting.sum(axis=1)[:, None, :] / n
        kappa = 1 - (weights * acting).sum(axis=(1, 2)) / (weights * expected).sum(axis=(1, 2))
    return np.stack([right / n, f1.mean(axis=1), kappa]).reshape(3, *rows)


def run_intervals(gold, predicted, severity: tuple[str, ...] = CARD.labels) -> dict[str, list[float] | None]:
    """Each figure's 95% interval over these texts (gold and predicted labels of ``severity``, in pairs); None where
    undefined."""
    truth, shown = codes(gold, severity), codes(predicted, severity)
    low, high = _bootstrap((truth, shown), partial(headline, size=len(severity)))
    return {figure: _interval(low[n], high[n]) for n, figure in enumerate(FIGURES)}


def paired(gold, a, b, severity: tuple[str, ...] = CARD.labels) -> dict:
    """Run ``b`` against run ``a`` on the same texts (gold labels and each run's labels of ``severity``, in order):
    ``n``, each figure's 95% interval for both runs and for ``b - a`` (``intervals``: ``{figure: {"a", "b",
    "delta"}}``), and McNemar's exact test (``mcnemar``: how many texts only ``a`` gets right, only ``b``, and the
    p-value)."""
    truth, first, second = (codes(labels, severity) for labels in (gold, a, b))

    def both(truth, first, second, axis=-1):
        before, after = (headline(truth, shown, axis, size=len(severity)) for shown in (first, second))
        return np.concatenate([before, after, after - before])

    low, high = _bootstrap((truth, first, second), both)
    intervals = {figure: {side: _interval(low[k * len(FIGURES) + n], high[k * len(FIGURES) + n])
                          for k, side in enumerate(("a", "b", "delta"))} for n, figure in enumerate(FIGURES)}
    return {"n": len(truth), "intervals": intervals, "mcnemar": mcnemar_test(truth == first, truth == second)}


def mcnemar_test(a_right: np.ndarray, b_right: np.ndarray) -> dict:
    """McNemar's exact test of two runs' right and wrong on the same texts: ``{"a_only", "b_only", "p"}``."""
    a_only, b_only = int(np.sum(a_right & ~b_right)), int(np.sum(~a_right & b_right))
    table = [[int(np.sum(a_right & b_right)), a_only], [b_only, int(np.sum(~a_right & ~b_right))]]
    return {"a_only": a_only, "b_only": b_only, "p": float(mcnemar(table, exact=True).pvalue)}


def _bootstrap(data: tuple, statistic) -> tuple[np.ndarray, np.ndarray]:
    """The percentile interval of ``statistic`` over :data:`RESAMPLES` paired resamples of the texts (seeded); NaN
    for a single text, which cannot be resampled."""
    if len(data[0]) < 2:
        undefined = np.full(len(statistic(*(sample[None] for sample in data))), np.nan)
        return undefined, undefined
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an undefined kappa in a resample: its interval is None
        result = bootstrap(data, statistic, paired=True, vectorized=True, n_resamples=RESAMPLES,
                           confidence_level=CONFIDENCE, method="percentile", rng=np.random.default_rng(SEED))
    return np.atleast_1d(result.confidence_interval.low), np.atleast_1d(result.confidence_interval.high)


def _interval(low: float, high: float) -> list[float] | None:
    return None if np.isnan(low) or np.isnan(high) else [float(low), float(high)]
