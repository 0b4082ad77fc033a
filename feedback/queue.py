"""The review queue: the recorded predictions a reviewer has not judged, in the order they choose, leaving out the
texts the reviewer skipped until they clear their skips; and the uncertainty it sorts by (kept with each scored
prediction when it is saved)."""

from moderation.policy import NEVER, Policy

from .connection import Connection
from .rows import choice, decode, now, prediction
from .shadows import DISAGREE

SHADOW_DISAGREES = "serving and shadow disagree"

QUEUE_ORDERS = {
    "most uncertain": "predictions.margin, predictions.id",
    "nearest the threshold": "coalesce(predictions.intervene_margin, 2), predictions.margin, predictions.id",
    "reviewers disagree": "(select count(distinct verdicts.label) from predictions as judged join verdicts on "
                          "verdicts.prediction_id = judged.id where judged.text = predictions.text) desc, "
                          "predictions.margin, predictions.id",
    "newest": "predictions.id desc",
    SHADOW_DISAGREES: "predictions.margin, predictions.id",
}
"""The review queue's orders: the smallest gap between the two most probable labels first; the intervention
decision nearest to flipping first; texts with the most different labels from reviewers first; the latest first;
only the texts a shadow labelled otherwise than the serving model, the most uncertain first."""
QUEUE_FILTERS = {
    SHADOW_DISAGREES: f"exists (select 1 from shadow_predictions as shadowed where shadowed.text = predictions.text "
                      f"and {DISAGREE})",
}
"""The orders that list only some texts, and which."""

_AWAITING = """predictions.margin is not null and not exists (select 1 from predictions as judged
  join verdicts on verdicts.prediction_id = judged.id
  where judged.text = predictions.text and (?1 is null or verdicts.reviewer = ?1))"""
_NOT_SKIPPED = """not exists (select 1 from skips join predictions as skipped on skipped.id = skips.prediction_id
  where skips.reviewer = ?1 and skipped.text = predictions.text)"""


class Queue:
    """The review queue of a feedback database."""

    def __init__(self, connection: Connection):
        self.connection = connection

    def next(self, reviewer: str, *, order: str = "most uncertain") -> dict | None:
        """The scored prediction ``reviewer`` should judge next in ``order`` (one of :data:`QUEUE_ORDERS`), leaving
        out the texts they skipped; None when none is left. A text the reviewer judged once is judged: its other
        predictions wait no more."""
        choice(order, QUEUE_ORDERS, "order")
        sql = (f"select * from predictions where {_AWAITING} and {_NOT_SKIPPED} and {QUEUE_FILTERS.get(order, 'true')} "
               f"order by {QUEUE_ORDERS[order]} limit 1")
        with self.connection.lock:
            cursor = self.connection.db.execute(sql, [reviewer])
            row = cursor.fetchone()
        return decode(dict(zip([column[0] for column in cursor.description], row))) if row else None

    def skip(self, reviewer: str, prediction_id) -> None:
        """Leave the text of prediction ``prediction_id`` out of ``reviewer``'s queue (all its predictions) until they
        clear their skips; InvalidInput when there is no such prediction."""
        with self.connection.lock:
            skipped = prediction(self.connection.db, prediction_id)["id"]
            with self.connection.transaction():
                self.connection.db.execute("insert or ignore into skips (reviewer, prediction_id, created) values "
                                           "(?, ?, ?)", [reviewer, skipped, now()])

    def skipped(self, reviewer: str) -> int:
        """How many texts ``reviewer`` skipped (and has not cleared)."""
        with self.connection.lock:
            return self.connection.db.execute("select count(*) from skips where reviewer = ?", [reviewer]).fetchone()[0]

    def clear_skips(self, reviewer: str) -> int:
        """Bring back every text ``reviewer`` skipped; how many there were."""
        with self.connection.lock, self.connection.transaction():
            return self.connection.db.execute("delete from skips where reviewer = ?", [reviewer]).rowcount

    def size(self, reviewer: str | None = None) -> int:
        """How many scored predictions await ``reviewer``'s verdict, or anyone's first one when None."""
        with self.connection.lock:
            return self.connection.db.execute(f"select count(*) from predictions where {_AWAITING}",
                                              [reviewer]).fetchone()[0]


def margin(scores: dict[str, float]) -> float:
    """The gap between the two most probable labels: 0 when the model cannot choose, near 1 when it is sure."""
    first, second = sorted(scores.values(), reverse=True)[:2]
    return first - second


def intervene_margin(scores: dict[str, float], threshold: str, policy: Policy) -> float | None:
    """How near the intervention decision is to flipping: the gap between the most probable label of ``policy`` that
    reaches ``threshold`` and the most probable one that does not. None when no label can change the decision
    (``never``, or the least severe label, which every label reaches)."""
    labels = policy.labels
    rank = policy.severity(policy.check_threshold(threshold)) if threshold != NEVER else len(labels)
    below, reaching = labels[:rank], labels[rank:]
    if not below or not reaching:
        return None
    return abs(max(scores[label] for label in reaching) - max(scores[label] for label in below))


def prediction_margins(scores: dict[str, float], threshold: str | None, policy: Policy) -> dict:
    """The queue's columns of a scored prediction made in ``policy`` at the intervention ``threshold``."""
    return {"margin": margin(scores),
            "intervene_margin": intervene_margin(scores, threshold, policy) if threshold is not None else None}
