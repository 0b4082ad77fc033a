"""The figures of a feedback database, computed once for the Dashboard tab, ``GET /v1/feedback/stats`` and
``python -m feedback stats``: counts, the model's labels against the reviewers' (the label mix counts each judged
prediction's model label once, and each verdict's label), agreement between reviewers, the flag rate by day,
verdicts per reviewer, the queue, and how the latest shadow agrees with the serving model.

The figures count the labels of a policy (the one published, least severe first) and any other label the database
holds (predictions and verdicts made in another policy), after them.

Agreement is computed by libraries, per text (as the queue and curation count them: each reviewer's latest
verdict on a text, whichever of its predictions it judged): Cohen's kappa for each pair of reviewers on the texts
both judged (scikit-learn), and Krippendorff's alpha (at the ordinal level over that order for an ordinal policy,
else nominal) for all reviewers on the texts several judged (the ``krippendorff`` package). Either is None where
it is undefined (no shared text, or a single label used throughout).
"""

import warnings
from itertools import groupby

import krippendorff
import numpy as np
from sklearn.metrics import cohen_kappa_score

from moderation.policy import CARD, Policy

from .rows import STATUSES

_LATEST_ON_TEXT = """
with latest as (select text, reviewer, label, created from (select predictions.text, verdicts.reviewer,
  verdicts.label, verdicts.created, row_number() over (partition by predictions.text, verdicts.reviewer
  order by verdicts.created desc, verdicts.id desc) as newest
  from verdicts join predictions on predictions.id = verdicts.prediction_id) where newest = 1)
"""
"""Each reviewer's latest verdict on each text, as the queue and curation count texts: ``latest (text, reviewer,
label, created)``."""


def summary(store, policy: Policy = CARD) -> dict:
    """Every figure of ``store`` (a FeedbackStore), as plain JSON-ready values, with ``labels``: ``policy``'s labels
    and any other the database holds, in the order the figures count them, and whether ``policy`` is ``ordinal``."""
    with store.connection.lock:
        counted = Counts(store.connection, policy)
        labels, level = counted.labels, "ordinal" if policy.ordinal else "nominal"
        confusion = counted.confusion()
        shared = counted.shared_items()
        figures = {
            "labels": list(labels),
            "ordinal": policy.ordinal,
            **counted.totals(),
            "label_mix": {
                "model": counted.judged_model_labels(),
                "reviewers": {label: sum(row[label] for row in confusion.values()) for label in labels},
            },
            "confusion": confusion,
            "agreement": {
                "pairs": kappa_pairs(counted.paired_labels(), labels),
                "krippendorff_alpha": agreement_alpha(shared, labels, level),
                "items": len({text for _, text, _, _ in shared}),
            },
            "by_day": by_day(counted.verdicts_by_day(), shared, labels, level),
            "by_reviewer": counted.verdicts_by_reviewer(),
        }
    return {**figures, "queue": store.queue.size(), "shadow": store.shadows.figures()}


class Counts:
    """The aggregate queries behind the figures (the caller holds the connection's lock), by ``labels``: those of
    ``policy``, then any other label the database holds."""

    def __init__(self, connection, policy: Policy):
        self.connection = connection
        self.db = connection.db
        held = {label for (label,) in self.db.execute(
            "select label from predictions where label is not null union select label from verdicts")}
        self.labels = policy.labels + tuple(sorted(held - set(policy.labels)))

    def totals(self) -> dict:
        """Counts of predictions and verdicts by label and status, and the share of verdicts that find the
        model's label right (``model_agreement``)."""
        predictions_by_label = self.connection.counts("select label, count(*) from predictions group by label")
        verdicts_by_label = self.connection.counts("select label, count(*) from verdicts group by label")
        by_status = self.connection.counts("select status, count(*) from verdicts group by status")
        agreed = self.db.execute("select count(*) from verdicts where verdict = 'right'").fetchone()[0]
        verdicts = sum(by_status.values())
        return {
            "predictions": sum(predictions_by_label.values()),
            "predictions_by_label": {label: predictions_by_label.get(label, 0) for label in self.labels},
            "verdicts": verdicts,
            "verdicts_by_label": {label: verdicts_by_label.get(label, 0) for label in self.labels},
            "verdicts_by_status": {status: by_status.get(status, 0) for status in STATUSES},
            "model_agreement": agreed / verdicts if verdicts else None,
        }

    def confusion(self) -> dict[str, dict[str, int]]:
        """How many verdicts give each label (inner keys) to predictions of each model label (outer keys)."""
        counts = {model: {label: 0 for label in self.labels} for model in self.labels}
        for model, label, count in self.db.execute(
                "select predictions.label, verdicts.label, count(*) from verdicts join predictions on "
                "predictions.id = verdicts.prediction_id where predictions.label is not null group by 1, 2"):
            counts[model][label] = count
        return counts

    def judged_model_labels(self) -> dict[str, int]:
        """How many judged predictions (one verdict or more) the model gave each label, each prediction once."""
        counts = self.connection.counts("select label, count(*) from predictions where label is not null and exists "
                                        "(select 1 from verdicts where verdicts.prediction_id = predictions.id) "
                                        "group by 1")
        return {label: counts.get(label, 0) for label in self.labels}

    def verdicts_by_day(self) -> list[dict]:
        """Each day's verdicts (UTC): ``{"day", "verdicts", "wrong"}``, oldest first."""
        return list(self.db.query("select substr(created, 1, 10) as day, count(*) as verdicts, "
                                  "sum(verdict = 'wrong') as wrong from verdicts group by day order by day"))

    def verdicts_by_reviewer(self) -> dict[str, int]:
        """How many verdicts each reviewer gave, by name."""
        return self.connection.counts("select reviewer, count(*) from verdicts group by reviewer order by reviewer")

    def paired_labels(self) -> list[tuple]:
        """For each pair of reviewers (``a`` before ``b``) and pair of labels they gave one text (each reviewer's
        latest verdict on it, whichever prediction of the text it judged), how often:
        ``(a, b, label of a, label of b, count)``."""
        return self.db.execute(
            f"{_LATEST_ON_TEXT} select a.reviewer, b.reviewer, a.label, b.label, count(*) from latest a join "
            "latest b on a.text = b.text and a.reviewer < b.reviewer group by 1, 2, 3, 4 order by 1, 2"
        ).fetchall()

    def shared_items(self) -> list[tuple]:
        """Texts judged by several reviewers, on each one's latest verdict: ``(day of the latest verdict, text,
        label, count)``, by day."""
        return self.db.execute(
            f"{_LATEST_ON_TEXT}, shared as (select text, substr(max(created), 1, 10) as day from latest "
            "group by text having count(*) > 1) select shared.day, text, label, count(*) "
            "from shared join latest using (text) group by 1, 2, 3 order by 1, 2").fetchall()


def by_day(days: list[dict], shared: list[tuple], labels: tuple[str, ...], level: str) -> list[dict]:
    """Each day's verdicts, flag rate (the share that find the model's label wrong) and Krippendorff's alpha
    (on the texts whose latest verdict came that day)."""
    alphas = {day: agreement_alpha(list(rows), labels, level) for day, rows in groupby(shared, lambda row: row[0])}
    return [{"day": row["day"], "verdicts": row["verdicts"], "flag_rate": row["wrong"] / row["verdicts"],
             "krippendorff_alpha": alphas.get(row["day"])} for row in days]


def kappa_pairs(paired: list[tuple], labels: tuple[str, ...]) -> list[dict]:
    """Cohen's kappa of each pair of reviewers from ``(a, b, label of a, label of b, count)`` rows grouped by pair:
    ``[{"a", "b", "n", "cohen_kappa"}]``."""
    pairs = []
    for (a, b), rows in groupby(paired, lambda row: row[:2]):
        _, _, first, second, counts = zip(*rows)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an undefined kappa is reported as None
            kappa = cohen_kappa_score(first, second, labels=list(labels), sample_weight=counts,
                                      replace_undefined_by=np.nan)
        pairs.append({"a": a, "b": b, "n": sum(counts), "cohen_kappa": _defined(kappa)})
    return pairs


def agreement_alpha(shared: list[tuple], labels: tuple[str, ...], level: str = "ordinal") -> float | None:
    """Krippendorff's alpha of ``(day, text, label, count)`` rows at ``level`` (ordinal: over the order of
    ``labels``, least severe first; or nominal)."""
    units = {text for _, text, _, _ in shared}
    if not units:
        return None
    row_of = {text: row for row, text in enumerate(sorted(units))}
    value_counts = np.zeros((len(units), len(labels)))
    for _, text, label, count in shared:
        value_counts[row_of[text], labels.index(label)] += count
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no expected disagreement (one label throughout): alpha is undefined
        alpha = krippendorff.alpha(value_counts=value_counts, value_domain=range(len(labels)),
                                   level_of_measurement=level)
    return _defined(alpha)


def _defined(value) -> float | None:
    return None if value is None or np.isnan(value) else float(value)


def as_share(value: float | None) -> str:
    """A share as a percentage, or "-" when there is none."""
    return "-" if value is None else f"{value:.0%}"


def as_figure(value: float | None) -> str:
    """A kappa or alpha to three decimals, or "-" where it is undefined."""
    return "-" if value is None else f"{value:.3f}"
