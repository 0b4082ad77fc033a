"""What evaluations need from the feedback database: the accepted verdicts that make a gold set, and the
stored runs (each with every item's gold label, label and five probabilities)."""

import json

from moderation.errors import InvalidInput
from moderation.evaluate.report import describe
from moderation.policy import Policy
from moderation.results import MODES

from .connection import Connection
from .ids import row_id
from .rows import now
from .shadows import DISAGREE
from .templates import Templates

RECENT = 10
"""How many runs an unknown run id's error lists."""

_ACCEPTED = """
select predictions.text, coalesce(final_labels.label, verdicts.label), predictions.template
from verdicts join predictions on predictions.id = verdicts.prediction_id
  left join final_labels on final_labels.text = predictions.text
  left join splits on splits.text = predictions.text
where verdicts.status = 'accepted' and {kept} order by verdicts.updated, verdicts.id
"""
"""Accepted verdicts (those ``kept``), oldest first; a text whose final label a curator settled has that label in
each."""
_JUDGING = (f"(splits.split = 'test' or exists (select 1 from shadow_predictions as shadowed where shadowed.text = "
            f"predictions.text and {DISAGREE}))")
"""The texts that judge versions: those of the test split, and those a shadow and the serving model disagreed on."""
_RUN_COLUMNS = ("model", "version", "template", "threshold", "mode", "gold_name", "gold_hash", "gold_size",
                "trained_left_out", "trained_included")


class Evaluations:
    """Evaluation runs in a :class:`~feedback.store.FeedbackStore`'s database (under its lock), each checked in the
    policy of its template (read through ``templates``)."""

    def __init__(self, connection: Connection, templates: Templates):
        self.db = connection.db
        self.templates = templates
        self._lock = connection.lock
        self._transaction = connection.transaction

    def accepted_labels(self, policy: Policy | None = None) -> list[tuple[str, str]]:
        """(text, label) of every accepted verdict, from the one accepted (or relabelled) first to the latest; the
        curator's final label stands in for the verdicts' labels of a text that has one. With ``policy``, only the
        verdicts on predictions made in a policy with its labels."""
        return self._labels("true", policy)

    def judging_labels(self, policy: Policy | None = None) -> list[tuple[str, str]]:
        """(text, label) of the accepted verdicts that judge a version (:meth:`accepted_labels` of the texts of the
        test split, and of those a shadow and the serving model disagreed on: they go to the gate set, whichever
        split they are in, and an evaluation leaves out those a version trained on); ``policy`` as there."""
        return self._labels(_JUDGING, policy)

    def _labels(self, kept: str, policy: Policy | None) -> list[tuple[str, str]]:
        with self._lock:
            rows = self.db.execute(_ACCEPTED.format(kept=kept)).fetchall()
            return [(text, label) for text, label, template in rows
                    if policy is None or self.templates.policy_held(template).labels == policy.labels]

    def save(self, run: dict) -> dict:
        """Store ``run`` (as :func:`moderation.evaluate.evaluate` makes it) and its items in one transaction;
        returns it as stored, with its ``id`` and ``created``. Its template must be saved already."""
        _check(run, self.templates.policy(run["template"]))
        with self._lock:
            with self._transaction():
                table = self.db["evaluation_runs"].insert(
                    {"created": now(), **{key: run[key] for key in _RUN_COLUMNS},
                     "metrics": json.dumps(run["metrics"])})
                run_id = table.last_pk
                self.db["evaluation_items"].insert_all(
                    {"run_id": run_id, "position": position, "text": item["text"], "gold": item["gold"],
                     "label": item["label"], "scores": json.dumps(item["scores"]), "generated": item["generated"]}
                    for position, item in enumerate(run["items"]))
        return self.get(run_id)

    def get(self, run_id) -> dict:
        """The stored run with its items in order; InvalidInput listing the recent runs if there is none."""
        run_id = row_id(run_id, "run", "Pick a stored run.")
        with self._lock:
            row = next(self.db.query("select * from evaluation_runs where id = ?", [run_id]), None)
            if row is None:
                raise InvalidInput(self._unknown(run_id), "run")
            items = self.db.query("select text, gold, label, scores, generated from evaluation_items where run_id = ? "
                                  "order by position", [run_id])
            return {**_decode(row), "items": [{**item, "scores": json.loads(item["scores"])} for item in items]}

    def recent(self, limit: int = 50) -> list[dict]:
        """The latest runs, newest first, without their items."""
        with self._lock:
            return self._recent(limit)

    def _recent(self, limit: int) -> list[dict]:
        rows = self.db.query("select * from evaluation_runs order by id desc limit ?", [limit])
        return [_decode(row) for row in rows]

    def _unknown(self, run_id) -> str:
        recent = self._recent(RECENT)
        if not recent:
            return f"No evaluation run {run_id}: there are no runs yet; evaluate first."
        return f"No evaluation run {run_id}. The latest runs:\n" + "\n".join(map(describe, recent))


def _check(run: dict, policy: Policy) -> None:
    """InvalidInput unless ``run`` names a known mode and a threshold of ``policy`` and its items carry its labels."""
    if run["mode"] not in MODES:
        raise InvalidInput(f"Unknown mode {run['mode']!r}: use one of {', '.join(MODES)}.")
    policy.check_threshold(run["threshold"])
    if not run["items"] or len(run["items"]) != run["gold_size"]:
        raise InvalidInput(f"A run of {run['gold_size']} texts must hold as many items, not {len(run['items'])}.")
    for item in run["items"]:
        policy.check_label(item["gold"])
        if item["label"] is not None or run["mode"] == "score":
            policy.check_label(item["label"])


def _decode(row: dict) -> dict:
    return {**row, "metrics": json.loads(row["metrics"])}
