"""How sure the headline figures are: 95% bootstrap intervals (scipy) of accuracy, macro-F1 and quadratic kappa over
the texts of one run, and, for two runs on the same texts, of each figure and of their difference (the texts resampled
in pairs); and McNemar's exact test (statsmodels) of the texts one run gets right and the other wrong.

The bootstrap is seeded, so a report says the same each time it is made, and computes its figures for all the
resamples at once from their confusion counts: the same figures scikit-learn gives (:mod:`.metrics`; the tests
compare them), thousands of times in milliseconds.
"""

import warnings

import numpy as np
from scipy.stats import bootstrap
from statsmodels.stats.contingency_tables import mcnemar

from ..labels import SEVERITY
from .metrics import NO_LABEL

FIGURES = ("accuracy", "macro_f1", "kappa_quadratic")
"""The figures that get intervals."""
RESAMPLES = 2000
CONFIDENCE = 0.95
SEED = 0
_CODES = {label: code for code, label in enumerate([*SEVERITY, NO_LABEL])}
_KINDS = len(_CODES)
_WEIGHTS = np.subtract.outer(np.arange(len(SEVERITY)), np.arange(len(SEVERITY))) ** 2.0
"""Quadratic kappa's disagreement weights over the severities."""


def codes(labels) -> np.ndarray:
    """Labels as their severity (0 casual ... 4 needs intervention), 5 for no label."""
    return np.array([_CODES[label or NO_LABEL] for label in labels])


def headline(truth: np.ndarray, shown: np.ndarray, axis: int = -1) -> np.ndarray:
    """Accuracy, macro-F1 (over the five labels, zero where undefined) and quadratic kappa (no label acting as casual;
    NaN where undefined) of the codes along ``axis``, for every row at once: shape ``(3, *rows)``."""
    truth, shown = np.moveaxis(truth, axis, -1), np.moveaxis(shown, axis, -1)
    rows, n = truth.shape[:-1], truth.shape[-1]
    flat = (np.arange(int(np.prod(rows)))[:, None] * len(SEVERITY) * _KINDS
            + (truth * _KINDS + shown).reshape(-1, n)).ravel()
    counts = np.bincount(flat, minlength=int(np.prod(rows)) * len(SEVERITY) * _KINDS).reshape(
        -1, len(SEVERITY), _KINDS).astype(float)
    right = np.trace(counts[:, :, : len(SEVERITY)], axis1=1, axis2=2)
    hits = np.diagonal(counts[:, :, : len(SEVERITY)], axis1=1, axis2=2)
    given, true = counts.sum(axis=1)[:, : len(SEVERITY)], counts.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(given + true > 0, 2 * hits / (given + true), 0.0)
        acting = counts[:, :, : len(SEVERITY)].copy()
        acting[:, :, 0] += counts[:, :, len(SEVERITY)]  # no label acts as casual
        expected = acting.sum(axis=2)[:, :, None] * acting.sum(axis=1)[:, None, :] / n
        kappa = 1 - (_WEIGHTS * acting).sum(axis=(1, 2)) / (_WEIGHTS * expected).sum(axis=(1, 2))
    return np.stack([right / n, f1.mean(axis=1), kappa]).reshape(3, *rows)


def run_intervals(gold, predicted) -> dict[str, list[float] | None]:
    """Each figure's 95% interval over these texts (gold and predicted labels, in pairs); None where undefined."""
    truth, shown = codes(gold), codes(predicted)
    low, high = _bootstrap((truth, shown), headline)
    return {figure: _interval(low[n], high[n]) for n, figure in enumerate(FIGURES)}


def paired(gold, a, b) -> dict:
    """Run ``b`` against run ``a`` on the same texts (gold labels and each run's labels, in order): ``n``, each
    figure's 95% interval for both runs and for ``b - a`` (``intervals``: ``{figure: {"a", "b", "delta"}}``), and
    McNemar's exact test (``mcnemar``: how many texts only ``a`` gets right, only ``b``, and the p-value)."""
    truth, first, second = codes(gold), codes(a), codes(b)

    def both(truth, first, second, axis=-1):
        before, after = headline(truth, first, axis), headline(truth, second, axis)
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
