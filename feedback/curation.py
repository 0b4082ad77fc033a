"""Curation: the verdicts listed and filtered for a curator, each accepted, discarded or relabelled, the final label
of a text that reviewers disagree on, and the one definition of a text's curated label (what training learns)."""

import json
from collections import Counter

from moderation.errors import InvalidInput
from moderation.labels import check_label
from moderation.prompt import is_blank

from .connection import Connection
from .rows import JOINED, STATUSES, choice, decode, filters, model_label, now, verdict, where
from .splits import TEST_SHARE, assign_split, check_test_share

_CURATED = """
select predictions.text, coalesce(final_labels.label, min(verdicts.label)) as label, count(*) as verdicts,
  min(verdicts.id) as first, splits.split
from verdicts join predictions on predictions.id = verdicts.prediction_id
  left join final_labels on final_labels.text = predictions.text
  left join splits on splits.text = predictions.text
{where}
group by predictions.text
having first > ? and (final_labels.label is not null or count(distinct verdicts.label) = 1)
order by first limit ?
"""

_DISAGREEMENTS = """
select predictions.text, json_group_array(distinct predictions.label) as model_labels,
  json_group_array(json_object('reviewer', verdicts.reviewer, 'label', verdicts.label)) as verdicts,
  final_labels.label as final_label
from verdicts join predictions on predictions.id = verdicts.prediction_id
  left join final_labels on final_labels.text = predictions.text
where verdicts.status != 'discarded'
group by predictions.text having count(distinct verdicts.label) > 1
order by final_labels.label is not null, max(verdicts.id) desc limit ?
"""

CURATED_FIELDS = ("text", "label", "verdicts", "split")


class Curation:
    """The curation of a feedback database's verdicts; an accepted text goes to the test split with the chance
    ``test_share`` (see :mod:`feedback.splits`)."""

    def __init__(self, connection: Connection, test_share: float = TEST_SHARE):
        self.connection = connection
        self.db = connection.db
        self.test_share = check_test_share(test_share)

    def verdicts(self, *, status=None, label=None, disagree=False, search=None, limit=200) -> list[dict]:
        """Verdicts joined with their predictions, newest first.

        ``label`` filters on the reviewer's label, ``disagree`` keeps verdicts whose label differs
        from the model's, ``search`` finds a phrase in the text.
        """
        if not isinstance(limit, int) or limit < 1:
            raise ValueError(f"Bad limit {limit!r}: pass a positive number of rows.")
        clauses, params = filters(status=status, label=label, disagree=disagree, search=search)
        sql = JOINED + where(clauses) + " order by verdicts.id desc limit ?"
        with self.connection.lock:
            return [decode(row) for row in self.db.query(sql, params + [limit])]

    def set_status(self, verdict_id: int, status: str) -> dict:
        """Set a verdict's curation status (pending, accepted or discarded); return the row."""
        choice(status, STATUSES, "status")
        with self.connection.lock:
            moved = Counter({status: 1})
            moved[verdict(self.db, verdict_id)["status"]] -= 1
            return self._update(verdict_id, moved, status=status)

    def relabel(self, verdict_id: int, label: str) -> dict:
        """Give a verdict another correct label; it becomes "right" when that is the model's label."""
        check_label(label)
        with self.connection.lock:
            said = model_label(self.db, verdict(self.db, verdict_id)["prediction_id"])
            return self._update(verdict_id, Counter(), label=label, verdict="right" if label == said else "wrong")

    def set_final_label(self, text: str, label: str, curator: str) -> dict:
        """Settle the label of a judged ``text`` (reviewers disagree on it, say): the export uses it from now on,
        and the text's pending verdicts become accepted. Returns the ``final_labels`` row."""
        check_label(label)
        if not isinstance(curator, str) or is_blank(curator):
            raise InvalidInput("Enter the curator's name, so the final label says who set it.")
        with self.connection.lock:
            judged = self.db.execute("select count(*) from verdicts join predictions on predictions.id = "
                                     "verdicts.prediction_id where predictions.text = ?", [text]).fetchone()[0]
            if not judged:
                raise InvalidInput("No verdict on this text: pick a text from the list of disagreements.")
            row = {"text": text, "label": label, "curator": curator.strip(), "created": now()}
            with self.connection.transaction() as moved:
                self.db["final_labels"].upsert(row, pk="text")
                accepted = self.db.execute("update verdicts set status = 'accepted', updated = ? where status = "
                                           "'pending' and prediction_id in (select id from predictions where text = ?)",
                                           [row["created"], text]).rowcount
                moved.update(pending=-accepted, accepted=accepted)
                assign_split(self.db, text, self.test_share)
            return row

    def curated_labels(self, *, status=None, since=None, split=None, batch_size=1000):
        """The curated label of each judged text, streamed, one row per text in the order of its first verdict:
        ``{"text", "label", "verdicts", "split"}`` (the split is None until the text is accepted; ``split`` keeps
        the texts of one).

        This is the one definition of a text's curated label: the final label a curator set for it, else the
        label that all its verdicts give (those matching ``status`` and ``since``, as the ``full`` export filters
        them). A text whose verdicts disagree and that has no final label has no curated label yet: it is left out
        (it waits in :meth:`disagreements`).
        """
        clauses, params = filters(status=status, since=since, split=split)
        return self.connection.batches(_CURATED.format(where=where(clauses)), params, batch_size, key="first",
                                       decode=lambda row: {key: row[key] for key in CURATED_FIELDS})

    def disagreements(self, *, limit: int = 200) -> list[dict]:
        """Texts whose (not discarded) verdicts give different labels, unsettled ones first, then the latest:
        ``{"text", "model_labels", "verdicts": [{"reviewer", "label"}], "final_label"}``."""
        with self.connection.lock:
            rows = list(self.db.query(_DISAGREEMENTS, [limit]))
        return [{**row, "model_labels": json.loads(row["model_labels"]), "verdicts": json.loads(row["verdicts"])}
                for row in rows]

    def _update(self, verdict_id, moved: Counter, **changes) -> dict:
        """Change a verdict (under the lock); where it becomes accepted, its text gets its split."""
        with self.connection.transaction() as counted:
            self.db["verdicts"].update(verdict_id, {**changes, "updated": now()})
            counted.update(moved)
            if changes.get("status") == "accepted":
                text = self.db.execute("select text from predictions where id = (select prediction_id from verdicts "
                                       "where id = ?)", [verdict_id]).fetchone()[0]
                assign_split(self.db, text, self.test_share)
        return self.db["verdicts"].get(verdict_id)
