"""Curation: the verdicts listed and filtered for a curator; every change of their status or label, on one verdict or
many in one transaction, recorded as a batch that can be undone, and refused for a verdict that changed since it was
shown; the final label of a text that reviewers disagree on; and the one definition of a text's curated label (what
training learns)."""

import json
from collections import Counter

from moderation.errors import Conflict, InvalidInput, NotFound
from moderation.policy import Policy
from moderation.prompt import is_blank

from .connection import Connection
from .ids import row_id
from .rows import JOINED, STATUSES, choice, decode, filters, named, now, where
from .splits import TEST_SHARE, assign_split, check_test_share
from .templates import Templates, checked_label

MAX_CHANGE = 10_000
"""The most verdicts one curation action may change: more would hold the database (and every other write) for long."""
_KEPT = ("status", "label", "verdict")
"""What a batch keeps of each verdict it changes, as it was before: what an undo gives it back."""

_CURATED = """
select predictions.text, coalesce(final_labels.label, min(verdicts.label)) as label, count(*) as verdicts,
  min(verdicts.id) as first, splits.split, min(predictions.template) as template
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

_ON_TEXT = """
select verdicts.id, verdicts.reviewer, verdicts.label, verdicts.verdict, verdicts.status
from verdicts join predictions on predictions.id = verdicts.prediction_id
where predictions.text = ? order by verdicts.id
"""
_POLICIES_OF_TEXT = """
select distinct predictions.template from verdicts join predictions on predictions.id = verdicts.prediction_id
where predictions.text = ? and verdicts.status != 'discarded'
"""
"""The templates (hence the policies) a text's standing verdicts judged it in."""
CURATED_FIELDS = ("text", "label", "verdicts", "split", "template")


class Curation:
    """The curation of a feedback database's verdicts, each label checked in the policy of the verdict's prediction
    (its template's, read through ``templates``); an accepted text goes to the test split with the chance
    ``test_share`` (see :mod:`feedback.splits`)."""

    def __init__(self, connection: Connection, templates: Templates, test_share: float = TEST_SHARE):
        self.connection = connection
        self.db = connection.db
        self.templates = templates
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

    def record(self, verdict_id) -> dict:
        """A verdict as :meth:`verdicts` lists it, with ``on_text``: every verdict on its text, oldest first
        (``{"id", "reviewer", "label", "verdict", "status"}``); NotFound when there is none."""
        verdict_id = row_id(verdict_id, "verdict", "Pick a verdict from the list of verdicts.")
        with self.connection.lock:
            row = self._rows([verdict_id]).get(verdict_id)
            if row is None:
                raise NotFound(f"No verdict {verdict_id}: pick one from the list of verdicts.")
            on_text = list(self.db.query(_ON_TEXT, [row["text"]]))
        return {**row, "on_text": on_text}

    def matching(self, *, status=None, label=None, disagree=False, search=None) -> dict[int, str]:
        """Every verdict that the filters (as :meth:`verdicts` takes them) keep, as it is now: ``{id: updated}``, to
        pass to :meth:`change`. Conflict when more than :data:`MAX_CHANGE` match."""
        clauses, params = filters(status=status, label=label, disagree=disagree, search=search)
        sql = JOINED + where(clauses) + " order by verdicts.id desc limit ?"
        with self.connection.lock:
            found = {row["id"]: row["updated"] for row in self.db.query(sql, params + [MAX_CHANGE + 1])}
        if len(found) > MAX_CHANGE:
            raise Conflict(f"More than {MAX_CHANGE:,} verdicts match: act on at most {MAX_CHANGE:,} at once, narrow "
                           "the filters.")
        return found

    def set_status(self, verdict_id, status: str, *, shown: str | None = None, curator: str | None = None) -> dict:
        """Set a verdict's curation status (pending, accepted or discarded) as :meth:`change` does; return the row."""
        return self._one(verdict_id, shown, curator, status=status)

    def relabel(self, verdict_id, label: str, *, shown: str | None = None, curator: str | None = None) -> dict:
        """Give a verdict another correct label as :meth:`change` does (it becomes "right" when that is the model's
        label); return the row."""
        return self._one(verdict_id, shown, curator, label=label)

    def change(self, shown: dict, *, status: str | None = None, label: str | None = None,
               curator: str | None = None) -> dict:
        """Set the status and/or the label of the verdicts ``shown`` (``{id: the updated time the curator was shown, or
        None to act on it as it is}``) in one transaction, recorded as one batch that :meth:`undo` takes back.

        A relabelled verdict becomes "right" when its label is the model's, else "wrong"; Conflict, and nothing changes,
        when the label is not one of a verdict's policy (its prediction's). When any of them changed
        since it was shown (or is gone), Conflict says which and what changed, and nothing changes. Returns
        ``{"batch": its id (None when nothing needed a change), "changed": [rows as now], "unchanged": [rows]}``.
        """
        if status is None and label is None:
            raise InvalidInput("Choose what to change: a status, or a new label.")
        if status is not None:
            choice(status, STATUSES, "status")
        if len(shown) > MAX_CHANGE:
            raise InvalidInput(f"{len(shown):,} verdicts: act on at most {MAX_CHANGE:,} at once.")
        shown = {row_id(verdict_id, "verdict", "Pick verdicts from the list of verdicts."): seen
                 for verdict_id, seen in shown.items()}
        with self.connection.lock, self.connection.transaction() as moved:
            return self._change(shown, status, label, curator, moved)

    def undo(self, batch_id, curator: str | None = None) -> dict:
        """Take batch ``batch_id`` back: each of its verdicts gets the status, label and verdict it had before, in one
        transaction. Conflict, and nothing changes, when the batch was undone already or any of its verdicts is no
        longer as the batch left it (a later batch that changed it must be undone first). Returns ``{"batch",
        "restored": [rows as now]}``."""
        batch_id = row_id(batch_id, "batch", "Name a batch that the Review tab (or a bulk change) reported.")
        with self.connection.lock:
            batch = self.db.execute("select status, label, undone, undone_by from batches where id = ?",
                                    [batch_id]).fetchone()
            if batch is None:
                raise NotFound(f"No batch {batch_id}: undo a batch that the Review tab (or a bulk change) reported.")
            status, label, undone, undone_by = batch
            if undone is not None:
                raise Conflict(f"Batch #{batch_id} was undone already ({undone_by or 'anonymous'}, "
                               f"{undone[:19].replace('T', ' ')} UTC): nothing to undo.")
            before = {row["verdict_id"]: row for row in self.db.query(
                f"select verdict_id, {', '.join(_KEPT)} from batch_verdicts where batch_id = ?", [batch_id])}
            rows = self._rows(list(before))
            stale = [rows.get(verdict_id, {"id": verdict_id}) for verdict_id, was in before.items()
                     if verdict_id not in rows or (rows[verdict_id]["status"], rows[verdict_id]["label"]) != (
                         status or was["status"], label or was["label"])]
            if stale:
                raise Conflict(f"Batch #{batch_id} cannot be undone: "
                               f"{self._changed_since(stale, len(before), batch_id)}. "
                               "Nothing was undone: set those verdicts by hand in the Review tab.")
            when = now()
            with self.connection.transaction() as moved:
                restored = {verdict_id: {key: row[key] for key in _KEPT}
                            for verdict_id, row in before.items()}
                self._write(restored, rows, when, moved)
                self.db.execute("update batches set undone = ?, undone_by = ? where id = ?", [when, curator, batch_id])
        return {"batch": batch_id, "restored": [{**rows[verdict_id], **restored[verdict_id], "updated": when}
                                                for verdict_id in before]}

    def set_final_label(self, text: str, label: str, curator: str) -> dict:
        """Settle the label of a judged ``text`` (reviewers disagree on it, say): the export uses it from now on,
        and the text's pending verdicts become accepted (one batch). Returns the ``final_labels`` row. The label
        must be one of the policy the text's verdicts judged it in (InvalidInput when they judged it in several)."""
        if not isinstance(curator, str) or is_blank(curator):
            raise InvalidInput("Enter the curator's name, so the final label says who set it.")
        with self.connection.lock:
            judged = self.db.execute("select count(*) from verdicts join predictions on predictions.id = "
                                     "verdicts.prediction_id where predictions.text = ?", [text]).fetchone()[0]
            if not judged:
                raise InvalidInput("No verdict on this text: pick a text from the list of disagreements.")
            checked_label(self._policy_of_text(text), label, "This text")
            row = {"text": text, "label": label, "curator": curator.strip(), "created": now()}
            with self.connection.transaction() as moved:
                self.db["final_labels"].upsert(row, pk="text")
                pending = {verdict["id"]: None for verdict in self.db.query(_ON_TEXT, [text])
                           if verdict["status"] == "pending"}
                if pending:
                    self._change(pending, "accepted", None, row["curator"], moved)
                assign_split(self.db, text, self.test_share)
            return row

    def curated_labels(self, *, status=None, since=None, split=None, batch_size=1000):
        """The curated label of each judged text, streamed, one row per text in the order of its first verdict:
        ``{"text", "label", "verdicts", "split", "template"}`` (the split is None until the text is accepted; ``split``
        keeps the texts of one; the template is that of its predictions, whose policy its label is in).

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

    def policy_of_text(self, text: str) -> Policy:
        """The policy a text's standing verdicts judged it in; InvalidInput when there are several, or none."""
        with self.connection.lock:
            return self._policy_of_text(text)

    def _policy_of_text(self, text: str) -> Policy:
        """:meth:`policy_of_text` (under the lock)."""
        policies = {policy.labels: policy for policy in (self.templates.policy_held(template) for (template,)
                                                         in self.db.execute(_POLICIES_OF_TEXT, [text]))}
        if len(policies) > 1:
            named_policies = "; ".join(f"{policy.name!r} ({', '.join(policy.labels)})" for policy in policies.values())
            raise InvalidInput(f"This text was judged in {len(policies)} policies: {named_policies}. One final label "
                               "cannot serve them all: discard the verdicts of the policy you no longer use (Review "
                               "tab), then set the final label.", "label")
        if not policies:
            raise InvalidInput("Every verdict on this text is discarded: make one pending again (Review tab) first.",
                               "label")
        return next(iter(policies.values()))

    def _one(self, verdict_id, shown, curator, **change) -> dict:
        """One verdict changed as :meth:`change` changes many; the row as it is now."""
        verdict_id = row_id(verdict_id, "verdict", "Pick a verdict from the list of verdicts.")
        done = self.change({verdict_id: shown or None}, curator=curator, **change)
        return (done["changed"] or done["unchanged"])[0]

    def _rows(self, ids: list[int]) -> dict[int, dict]:
        """The verdicts ``ids`` as :data:`JOINED` has them (under the lock), by id; those that are gone are left out."""
        sql = JOINED + " where verdicts.id in (select value from json_each(?))"
        return {row["id"]: decode(row) for row in self.db.query(sql, [json.dumps(ids)])}

    def _change(self, shown: dict[int, str | None], status, label, curator, moved: Counter) -> dict:
        """:meth:`change`, under the lock and in the caller's transaction."""
        rows = self._rows(list(shown))
        unknown = next((verdict_id for verdict_id, seen in shown.items() if verdict_id not in rows and seen is None),
                       None)
        if unknown is not None:
            raise NotFound(f"No verdict {unknown}: pick one from the list of verdicts.")
        stale = [rows.get(verdict_id, {"id": verdict_id}) for verdict_id, seen in shown.items()
                 if seen is not None and rows.get(verdict_id, {}).get("updated") != seen]
        if stale:
            raise Conflict(f"{self._changed_since(stale, len(shown))}. Nothing was changed: look again, then act.")
        changes = {}
        for verdict_id, row in rows.items():
            if label is not None:
                checked_label(self.templates.policy_held(row["template"]), label, f"The {named(row)}", Conflict)
            new = {"status": status} if status not in (None, row["status"]) else {}
            if label not in (None, row["label"]):
                new.update(label=label, verdict="right" if label == row["model_label"] else "wrong")
            if new:
                changes[verdict_id] = new
        if not changes:
            return {"batch": None, "changed": [], "unchanged": list(rows.values())}
        when = now()
        batch = self.db["batches"].insert({"created": when, "curator": curator, "status": status,
                                           "label": label}).last_pk
        self.db["batch_verdicts"].insert_all(
            {"batch_id": batch, "verdict_id": verdict_id, **{key: rows[verdict_id][key] for key in _KEPT}}
            for verdict_id in changes)
        self._write(changes, rows, when, moved)
        return {"batch": batch, "changed": [{**rows[verdict_id], **new, "updated": when}
                                            for verdict_id, new in changes.items()],
                "unchanged": [row for verdict_id, row in rows.items() if verdict_id not in changes]}

    def _write(self, changes: dict[int, dict], rows: dict[int, dict], when: str, moved: Counter) -> None:
        """The one place where a verdict's status or label is written (a change of one verdict or many, an undo, the
        acceptance that a final label brings, a verdict becoming accepted among them): ``changes`` ({id: {"status"?,
        "label"?, "verdict"?}}) to the verdicts ``rows`` (as they were), all updated at ``when``; the status counts
        move with them, and a text whose verdict becomes accepted gets its split."""
        self.db.conn.executemany(
            "update verdicts set status = coalesce(:status, status), label = coalesce(:label, label), "
            "verdict = coalesce(:verdict, verdict), updated = :updated where id = :id",
            [{"status": None, "label": None, "verdict": None, **new, "updated": when, "id": verdict_id}
             for verdict_id, new in changes.items()])
        for verdict_id, new in changes.items():
            if "status" in new:
                moved[new["status"]] += 1
                moved[rows[verdict_id]["status"]] -= 1
            if new.get("status") == "accepted":
                assign_split(self.db, rows[verdict_id]["text"], self.test_share)

    def _changed_since(self, stale: list[dict], asked: int, batch: int | None = None) -> str:
        """What changed in the ``stale`` verdicts (as they are now; one that is gone has only its id) of the ``asked``
        ones since they were shown (or since ``batch``), naming each (the first three)."""
        since = f"batch #{batch}" if batch is not None else "it was shown" if asked == 1 else "they were shown"
        if asked == 1:
            name, how = self._what_changed(stale[0])
            return f"{name[0].upper()}{name[1:]} changed since {since}: {how}"
        told = "; ".join(f"{name}: {how}" for name, how in map(self._what_changed, stale[:3]))
        more = f"; and {len(stale) - 3} more" if len(stale) > 3 else ""
        return f"{len(stale)} of the {asked} verdicts changed since {since}: {told}{more}"

    def _what_changed(self, row: dict) -> tuple[str, str]:
        """A verdict that changed: its name, and who changed it, how and when, and what it is now."""
        if "text" not in row:
            return f"verdict #{row['id']}", "it is gone (its reviewer took it back, or its text was erased)"
        by = self.db.execute(
            "select batches.id, batches.curator, batches.status, batches.label, batches.created = :updated from "
            "batch_verdicts join batches on batches.id = batch_verdicts.batch_id where batch_verdicts.verdict_id = :id "
            "and (batches.created = :updated or batches.undone = :updated) order by batches.id desc limit 1",
            {"id": row["id"], "updated": row["updated"]}).fetchone()
        if by is None:
            how = "its reviewer gave their verdict again"
        elif by[4]:
            done = " and ".join(f"{what} {value}" for what, value in (("set it to", by[2]), ("relabelled it", by[3]))
                                if value is not None)
            how = f"{by[1] or 'anonymous'} {done} (batch #{by[0]})"
        else:
            how = f"batch #{by[0]} was undone"
        at = row["updated"][:19].replace("T", " ")
        return named(row), f"{how} at {at} UTC; it is now {row['status']}, labelled {row['label']}"
