"""The feedback database: every prediction shown, reviewers' verdicts on them, and curation."""

import contextlib
import datetime
import json
import numbers
import os
import pathlib
import sqlite3
import threading
import unicodedata
from collections import Counter

import sqlite_utils
from sqlite_utils.db import NotFoundError

from moderation.errors import Conflict, InvalidInput, Unavailable
from moderation.labels import LABELS, check_label
from moderation.prompt import is_blank
from moderation.results import MODES, ROLES, ModerationResult

from .erasure import Erasure
from .evaluations import Evaluations
from .ids import row_id
from .migrations import migrations, prediction_margins, request_hash

VERDICTS = ("right", "wrong")
MAX_KEY = 200
"""Characters an idempotency key may have."""
KEY_HOURS = 24.0
"""How long an idempotency key is kept by default: a retry within that time gets the first answer again, a request
made with the key later is a new one."""
STATUSES = ("pending", "accepted", "discarded")
WRITE_CHECK_BYTES = 64 * 1024
"""What :meth:`FeedbackStore.check_writable` writes (and removes): room for a batch of predictions."""

_JOINED = """
select verdicts.id, verdicts.created, verdicts.updated, verdicts.reviewer, verdicts.status,
  verdicts.verdict, verdicts.label, predictions.label as model_label, verdicts.note,
  verdicts.prediction_id, predictions.text, predictions.scores, predictions.model,
  predictions.mode, predictions.generated, predictions.role, predictions.template, predictions.prompt,
  predictions.created as prediction_created
from verdicts join predictions on predictions.id = verdicts.prediction_id
"""

_PREDICTION_COLUMNS = ("created", "text", "label", "scores", "prompt", "model", "template", "mode", "generated",
                       "role", "margin", "intervene_margin")
_INSERT_PREDICTION = (f"insert into predictions ({', '.join(_PREDICTION_COLUMNS)}) "
                      f"values ({', '.join(':' + column for column in _PREDICTION_COLUMNS)})")

QUEUE_ORDERS = {
    "most uncertain": "predictions.margin, predictions.id",
    "nearest the threshold": "coalesce(predictions.intervene_margin, 2), predictions.margin, predictions.id",
    "reviewers disagree": "(select count(distinct verdicts.label) from predictions as judged join verdicts on "
                          "verdicts.prediction_id = judged.id where judged.text = predictions.text) desc, "
                          "predictions.margin, predictions.id",
    "newest": "predictions.id desc",
}
"""The review queue's orders: the smallest gap between the two most probable labels first; the intervention
decision nearest to flipping first; texts with the most different labels from reviewers first; the latest first."""

_AWAITING = """predictions.margin is not null and not exists (select 1 from predictions as judged
  join verdicts on verdicts.prediction_id = judged.id
  where judged.text = predictions.text and (?1 is null or verdicts.reviewer = ?1))"""

_CURATED = """
select predictions.text, coalesce(final_labels.label, min(verdicts.label)) as label, count(*) as verdicts,
  min(verdicts.id) as first
from verdicts join predictions on predictions.id = verdicts.prediction_id
  left join final_labels on final_labels.text = predictions.text
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

_LATEST_ON_TEXT = """
with latest as (select text, reviewer, label, created from (select predictions.text, verdicts.reviewer,
  verdicts.label, verdicts.created, row_number() over (partition by predictions.text, verdicts.reviewer
  order by verdicts.created desc, verdicts.id desc) as newest
  from verdicts join predictions on predictions.id = verdicts.prediction_id) where newest = 1)
"""
"""Each reviewer's latest verdict on each text, as the queue and curation count texts: ``latest (text, reviewer,
label, created)``."""

_UPSERT_VERDICT = """
insert into verdicts (prediction_id, verdict, label, note, reviewer, created, status, updated)
values (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?6)
on conflict (prediction_id, reviewer) do update set verdict = excluded.verdict, label = excluded.label,
  note = excluded.note, created = excluded.created, status = 'pending', updated = excluded.updated
"""


class FeedbackStore:
    """A SQLite file of predictions and verdicts, safe to share between threads; a new file (and its WAL) is
    readable and writable by its owner alone.

    A write that SQLite cannot make (a full disk, an I/O error) raises :class:`Unavailable` with a message that
    says what to do, and leaves ``failure`` set to SQLite's reason until a later write commits.
    """

    def __init__(self, path, *, key_hours: float = KEY_HOURS):
        self.path = pathlib.Path(path)
        self.key_hours = key_hours
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # a new file is made readable by its owner alone before SQLite opens it: SQLite gives its WAL the same mode
        os.close(os.open(self.path, os.O_RDONLY | os.O_CREAT, 0o600))
        self.db = sqlite_utils.Database(sqlite3.connect(self.path, check_same_thread=False))
        try:
            # secure_delete: a deleted row (a text erased or swept) is overwritten with zeros in the file
            for pragma in ("busy_timeout=5000", "journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON",
                           "secure_delete=ON"):
                self.db.execute(f"PRAGMA {pragma}")
            migrations.apply(self.db)
        except sqlite3.DatabaseError as error:
            self.db.close()
            raise InvalidInput(f"Cannot open the feedback database {self.path} ({error}): give the app's database "
                               "file, or the name of a new one.") from None
        self._lock = threading.Lock()
        self.failure: str | None = None
        """Why the last write failed (SQLite's words, such as "database or disk is full"); None once one commits."""
        self._by_status = Counter(self._counts("select status, count(*) from verdicts group by status"))
        self.evaluations = Evaluations(self.db, self._lock, self._transaction, now)
        self.erasure = Erasure(self.db, self._lock, self._transaction, self._keys_since)

    def close(self):
        """Close the database connection."""
        with self._lock:
            self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def verdicts_by_status(self) -> dict[str, int]:
        """How many verdicts have each status: counted once at start, then kept as each write commits (read without
        the lock, and without a query). Another program's writes to the file are not seen."""
        return {status: self._by_status[status] for status in STATUSES}

    def check_writable(self) -> bool:
        """Write (and remove) :data:`WRITE_CHECK_BYTES` in one transaction, to learn whether writes succeed again;
        clears or sets ``failure`` as any write does."""
        with self._lock:
            try:
                with self._transaction():
                    self.db.execute("insert into write_checks (filler) values (zeroblob(?))", [WRITE_CHECK_BYTES])
                    self.db.execute("delete from write_checks")
            except Unavailable:
                return False
        return True

    def save_template(self, template_id: str, text: str) -> None:
        """Store a prompt template under ``template_id``; saving the same id again does nothing."""
        if not template_id:
            raise ValueError("Empty template id: pass the template's short hash.")
        with self._lock, self._transaction():
            self.db["templates"].insert(
                {"id": template_id, "text": text, "created": now()}, ignore=True
            )

    def save_prediction(
        self, *, text, label, scores, prompt, model, template=None, mode="score", generated=None, role=None,
        threshold=None,
    ) -> int:
        """Record a prediction shown to a reviewer and return its id.

        Score mode gives a label and the five probabilities; generate mode gives the ``generated``
        text, the label it names (or None), and no scores. ``role`` is "user" or "bot" for the two
        sides of a chat turn; ``threshold`` is the intervention threshold it was judged at (what the
        review queue's "nearest the intervention threshold" order measures from).
        """
        (prediction_id,) = self.save_predictions([dict(
            text=text, label=label, scores=scores, prompt=prompt, model=model, template=template, mode=mode,
            generated=generated, role=role, threshold=threshold)])
        return prediction_id

    def save_predictions(self, predictions: list[dict]) -> list[int]:
        """Record many predictions (each with :meth:`save_prediction`'s fields) in one transaction; their ids."""
        rows = [_prediction_row(**prediction) for prediction in predictions]
        with self._lock, self._transaction():
            return self._insert_predictions(rows)

    def add_verdict(self, prediction_id: int, *, verdict, label=None, note="", reviewer, idempotency_key=None) -> dict:
        """Record a reviewer's verdict on a prediction and return the stored verdict row.

        ``"right"`` keeps the model's label; ``"wrong"`` needs the correct ``label``. A reviewer has one
        verdict per prediction: a second one replaces the first (same id, pending again). A retry with the
        same ``idempotency_key`` returns the verdict the first call stored, and writes nothing.
        """
        _choice(verdict, VERDICTS, "verdict")
        reviewer = (reviewer or "").strip()
        if is_blank(reviewer):
            raise InvalidInput("Enter your name as reviewer, so your verdicts can be told apart.")
        request = json.dumps(["verdict", prediction_id, verdict, label, note or "", reviewer])
        with self._lock:
            first = self._recall(idempotency_key, request)
            if first is not None:
                return self._keyed_verdict(idempotency_key, first["verdict_id"])
            model_label = self._model_label(prediction_id)
            if verdict == "right":
                if model_label is None:
                    raise InvalidInput("The model gave no label: choose the correct label and save a correction.")
                if label not in (None, model_label):
                    raise InvalidInput(
                        f"The model said {model_label!r}: choose 'Label is wrong' to give {label!r}."
                    )
                label = model_label
            else:
                if label is None:
                    raise InvalidInput(f"Choose the correct label: one of {', '.join(LABELS)}.")
                check_label(label)
                if label == model_label:
                    raise InvalidInput(
                        f"{label!r} is the model's own label: use 'Label is right' instead."
                    )
            created = now()
            replaced = self.db.execute("select status from verdicts where prediction_id = ? and reviewer = ?",
                                       [prediction_id, reviewer]).fetchone()
            with self._transaction() as moved:
                self.db.execute(_UPSERT_VERDICT, [prediction_id, verdict, label, note or "", reviewer, created])
                moved["pending"] += 1
                if replaced:
                    moved[replaced[0]] -= 1
                stored = self._reviewers_verdict(prediction_id, reviewer)
                self._remember(idempotency_key, request, verdict_id=stored["id"])
            return stored

    def recall(self, idempotency_key: str, request: str) -> dict | None:
        """What the first request made with ``idempotency_key`` was answered with, as :meth:`save_once` stored
        it; None for a new key (or one older than ``key_hours``); Conflict when the key was used for another
        request."""
        with self._lock:
            return self._recall(idempotency_key, request)

    def save_once(self, idempotency_key: str, request: str, response_id: str, predictions: list[dict] | None,
                    settings: dict) -> dict:
        """Record ``predictions`` (None: keep none) and the answer's ids under ``idempotency_key`` in one
        transaction: ``{"response_id", "predictions": [their ids] or None, "settings"}`` (the settings that decided
        it), which it returns. When the key is already stored (a concurrent retry won), it writes nothing and
        returns what is stored. The request itself is kept as a hash."""
        rows = None if predictions is None else [_prediction_row(**prediction) for prediction in predictions]
        with self._lock:
            first = self._recall(idempotency_key, request)
            if first is not None:
                return first
            with self._transaction():
                ids = None if rows is None else self._insert_predictions(rows)
                self._remember(idempotency_key, request, response_id=response_id,
                               predictions=None if ids is None else json.dumps(ids), settings=json.dumps(settings))
            return {"response_id": response_id, "predictions": ids, "settings": settings}

    def predictions(self, ids: list[int]) -> list[dict]:
        """The recorded predictions with these ids, in their order, scores decoded; InvalidInput naming the first
        one that is no longer stored."""
        with self._lock:
            rows = {row["id"]: row for row in self.db.query(
                "select * from predictions where id in (select value from json_each(?))", [json.dumps(ids)])}
        missing = next((prediction_id for prediction_id in ids if prediction_id not in rows), None)
        if missing is not None:
            raise InvalidInput(f"Prediction #{missing} was erased since: send the request again with a new key.",
                               "idempotency_key")
        return [_decode(rows[prediction_id]) for prediction_id in ids]

    def set_status(self, verdict_id: int, status: str) -> dict:
        """Set a verdict's curation status (pending, accepted or discarded); return the row."""
        _choice(status, STATUSES, "status")
        with self._lock:
            moved = Counter({status: 1})
            moved[self._verdict(verdict_id)["status"]] -= 1
            return self._update_verdict(verdict_id, moved, status=status)

    def relabel(self, verdict_id: int, label: str) -> dict:
        """Give a verdict another correct label; it becomes "right" when that is the model's label."""
        check_label(label)
        with self._lock:
            model_label = self._model_label(self._verdict(verdict_id)["prediction_id"])
            verdict = "right" if label == model_label else "wrong"
            return self._update_verdict(verdict_id, Counter(), label=label, verdict=verdict)

    def verdicts(self, *, status=None, label=None, disagree=False, search=None, limit=200) -> list[dict]:
        """Verdicts joined with their predictions, newest first.

        ``label`` filters on the reviewer's label, ``disagree`` keeps verdicts whose label differs
        from the model's, ``search`` finds a phrase in the text.
        """
        if not isinstance(limit, int) or limit < 1:
            raise ValueError(f"Bad limit {limit!r}: pass a positive number of rows.")
        clauses, params = _filters(status=status, label=label, disagree=disagree, search=search)
        sql = _JOINED + _where(clauses) + " order by verdicts.id desc limit ?"
        with self._lock:
            return [_decode(row) for row in self.db.query(sql, params + [limit])]

    def stats(self) -> dict:
        """Counts of predictions and verdicts by label and status, and the share of verdicts that find the
        model's label right (``model_agreement``)."""
        with self._lock:
            predictions_by_label = self._counts("select label, count(*) from predictions group by label")
            verdicts_by_label = self._counts("select label, count(*) from verdicts group by label")
            by_status = self._counts("select status, count(*) from verdicts group by status")
            agreed = self.db.execute(
                "select count(*) from verdicts where verdict = 'right'"
            ).fetchone()[0]
        verdicts = sum(by_status.values())
        return {
            "predictions": sum(predictions_by_label.values()),
            "predictions_by_label": {label: predictions_by_label.get(label, 0) for label in LABELS},
            "verdicts": verdicts,
            "verdicts_by_label": {label: verdicts_by_label.get(label, 0) for label in LABELS},
            "verdicts_by_status": {status: by_status.get(status, 0) for status in STATUSES},
            "model_agreement": agreed / verdicts if verdicts else None,
        }

    def iter_export_rows(self, *, status=None, since=None, batch_size=1000):
        """Stream verdicts joined with their predictions in id order, ``batch_size`` rows at a time.

        ``since`` (a date or ISO datetime, UTC unless it says otherwise) keeps verdicts given at or
        after it. Arguments are checked on the call, before any row is read.
        """
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"Bad batch_size {batch_size!r}: pass a positive number of rows.")
        clauses, params = _filters(status=status, since=since)
        sql = _JOINED + _where(clauses + ["verdicts.id > ?"]) + " order by verdicts.id limit ?"
        return self._batches(sql, params, batch_size)

    def _batches(self, sql, params, batch_size, *, key="id", decode=None):
        """The rows of ``sql`` (which ends ``... > ? order by <key> limit ?``), a batch at a time."""
        last = 0
        while True:
            with self._lock:
                batch = list(self.db.query(sql, params + [last, batch_size]))
            yield from map(decode or _decode, batch)
            if len(batch) < batch_size:
                return
            last = batch[-1][key]
            del batch  # free this batch before fetching the next one

    def _model_label(self, prediction_id):
        prediction_id = row_id(prediction_id, "prediction", "Name the prediction to give a verdict on.")
        row = self.db.execute("select label from predictions where id = ?", [prediction_id]).fetchone()
        if row is None:
            raise InvalidInput(
                f"No prediction {prediction_id}: moderate the text first, then give your verdict on it."
            )
        return row[0]

    def _verdict(self, verdict_id):
        verdict_id = row_id(verdict_id, "verdict", "Pick a verdict from the list of verdicts.")
        try:
            return self.db["verdicts"].get(verdict_id)
        except NotFoundError:
            raise InvalidInput(f"No verdict {verdict_id}: pick one from the list of verdicts.") from None

    def _update_verdict(self, verdict_id, moved: Counter, **changes):
        with self._transaction() as counted:
            self.db["verdicts"].update(verdict_id, {**changes, "updated": now()})
            counted.update(moved)
        return self.db["verdicts"].get(verdict_id)

    def _counts(self, sql):
        return dict(self.db.execute(sql).fetchall())

    # Batches of results, the review queue, taking a verdict back, final labels, and the figures of agreement

    def save_results(self, results, roles=None) -> list[int]:
        """Record moderation results (and each one's chat role, if any) in one transaction; their ids."""
        roles = roles or [None] * len(results)
        return self.save_predictions([prediction_fields(result, role)
                                        for result, role in zip(results, roles, strict=True)])

    def prediction(self, prediction_id) -> dict:
        """A recorded prediction, its scores decoded; InvalidInput when there is none."""
        with self._lock:
            self._model_label(prediction_id)
            return _decode(self.db["predictions"].get(prediction_id))

    def next_in_queue(self, reviewer: str, *, order: str = "most uncertain", skip=()) -> dict | None:
        """The scored prediction ``reviewer`` should judge next in ``order`` (one of :data:`QUEUE_ORDERS`), leaving
        out the ids in ``skip``; None when none is left. A text the reviewer judged once is judged: its other
        predictions wait no more."""
        _choice(order, QUEUE_ORDERS, "order")
        sql = (f"select * from predictions where {_AWAITING} and predictions.id not in (select value from "
               f"json_each(?2)) order by {QUEUE_ORDERS[order]} limit 1")
        with self._lock:
            cursor = self.db.execute(sql, [reviewer, json.dumps([int(i) for i in skip])])
            row = cursor.fetchone()
        return _decode(dict(zip([column[0] for column in cursor.description], row))) if row else None

    def queue_size(self, reviewer: str | None = None) -> int:
        """How many scored predictions await ``reviewer``'s verdict, or anyone's first one when None."""
        with self._lock:
            return self.db.execute(f"select count(*) from predictions where {_AWAITING}", [reviewer]).fetchone()[0]

    def withdraw_verdict(self, verdict_id, reviewer: str) -> dict:
        """Take back (delete) a reviewer's own pending verdict; returns it as it was."""
        with self._lock:
            row = self._verdict(verdict_id)
            if row["reviewer"] != reviewer:
                raise InvalidInput(f"Verdict #{verdict_id} is {row['reviewer']}'s: only they can take it back.")
            if row["status"] != "pending":
                raise Conflict(f"Verdict #{verdict_id} is already {row['status']}: a curator decides on it now "
                                   "(Review tab).")
            with self._transaction() as moved:
                self.db["verdicts"].delete(verdict_id)
                moved["pending"] -= 1
            return row

    def set_final_label(self, text: str, label: str, curator: str) -> dict:
        """Settle the label of a judged ``text`` (reviewers disagree on it, say): the export uses it from now on,
        and the text's pending verdicts become accepted. Returns the ``final_labels`` row."""
        check_label(label)
        if not isinstance(curator, str) or is_blank(curator):
            raise InvalidInput("Enter the curator's name, so the final label says who set it.")
        with self._lock:
            judged = self.db.execute("select count(*) from verdicts join predictions on predictions.id = "
                                     "verdicts.prediction_id where predictions.text = ?", [text]).fetchone()[0]
            if not judged:
                raise InvalidInput("No verdict on this text: pick a text from the list of disagreements.")
            row = {"text": text, "label": label, "curator": curator.strip(), "created": now()}
            with self._transaction() as moved:
                self.db["final_labels"].upsert(row, pk="text")
                accepted = self.db.execute("update verdicts set status = 'accepted', updated = ? where status = "
                                           "'pending' and prediction_id in (select id from predictions where text = ?)",
                                           [row["created"], text]).rowcount
                moved.update(pending=-accepted, accepted=accepted)
            return row

    def curated_labels(self, *, status=None, since=None, batch_size=1000):
        """The curated label of each judged text, streamed, one row per text in the order of its first verdict:
        ``{"text", "label", "verdicts"}``.

        This is the one definition of a text's curated label: the final label a curator set for it, else the
        label that all its verdicts give (those matching ``status`` and ``since``, as in
        :meth:`iter_export_rows`). A text whose verdicts disagree and that has no final label has no curated
        label yet: it is left out (it waits in :meth:`disagreements`).
        """
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"Bad batch_size {batch_size!r}: pass a positive number of rows.")
        clauses, params = _filters(status=status, since=since)
        sql = _CURATED.format(where=_where(clauses))
        return self._batches(sql, params, batch_size, key="first",
                             decode=lambda row: {key: row[key] for key in ("text", "label", "verdicts")})

    def disagreements(self, *, limit: int = 200) -> list[dict]:
        """Texts whose (not discarded) verdicts give different labels, unsettled ones first, then the latest:
        ``{"text", "model_labels", "verdicts": [{"reviewer", "label"}], "final_label"}``."""
        with self._lock:
            rows = list(self.db.query(_DISAGREEMENTS, [limit]))
        return [{**row, "model_labels": json.loads(row["model_labels"]), "verdicts": json.loads(row["verdicts"])}
                for row in rows]

    def confusion(self) -> dict[str, dict[str, int]]:
        """How many verdicts give each label (inner keys) to predictions of each model label (outer keys)."""
        counts = {model: {label: 0 for label in LABELS} for model in LABELS}
        with self._lock:
            for model, label, count in self.db.execute(
                    "select predictions.label, verdicts.label, count(*) from verdicts join predictions on "
                    "predictions.id = verdicts.prediction_id where predictions.label is not null group by 1, 2"):
                counts[model][label] = count
        return counts

    def judged_model_labels(self) -> dict[str, int]:
        """How many judged predictions (one verdict or more) the model gave each label, each prediction once."""
        with self._lock:
            counts = self._counts("select label, count(*) from predictions where label is not null and exists "
                                  "(select 1 from verdicts where verdicts.prediction_id = predictions.id) group by 1")
        return {label: counts.get(label, 0) for label in LABELS}

    def verdicts_by_day(self) -> list[dict]:
        """Each day's verdicts (UTC): ``{"day", "verdicts", "wrong"}``, oldest first."""
        with self._lock:
            return list(self.db.query("select substr(created, 1, 10) as day, count(*) as verdicts, "
                                      "sum(verdict = 'wrong') as wrong from verdicts group by day order by day"))

    def verdicts_by_reviewer(self) -> dict[str, int]:
        """How many verdicts each reviewer gave, by name."""
        with self._lock:
            return self._counts("select reviewer, count(*) from verdicts group by reviewer order by reviewer")

    def paired_labels(self) -> list[tuple]:
        """For each pair of reviewers (``a`` before ``b``) and pair of labels they gave one text (each reviewer's
        latest verdict on it, whichever prediction of the text it judged), how often:
        ``(a, b, label of a, label of b, count)``."""
        with self._lock:
            return self.db.execute(
                f"{_LATEST_ON_TEXT} select a.reviewer, b.reviewer, a.label, b.label, count(*) from latest a join "
                "latest b on a.text = b.text and a.reviewer < b.reviewer group by 1, 2, 3, 4 order by 1, 2"
            ).fetchall()

    def shared_items(self) -> list[tuple]:
        """Texts judged by several reviewers, on each one's latest verdict: ``(day of the latest verdict, text,
        label, count)``, by day."""
        with self._lock:
            return self.db.execute(
                f"{_LATEST_ON_TEXT}, shared as (select text, substr(max(created), 1, 10) as day from latest "
                "group by text having count(*) > 1) select shared.day, text, label, count(*) "
                "from shared join latest using (text) group by 1, 2, 3 order by 1, 2").fetchall()

    def _insert_predictions(self, rows: list[dict]) -> list[int]:
        """Insert checked prediction rows (under the lock, in a transaction); their ids."""
        for template in {row["template"] for row in rows} - {None}:
            if self.db.execute("select 1 from templates where id = ?", [template]).fetchone() is None:
                raise ValueError(f"Unknown template {template!r}: save it with save_template() first.")
        return [self.db.execute(_INSERT_PREDICTION, row).lastrowid for row in rows]

    @contextlib.contextmanager
    def _transaction(self):
        """A write transaction (under the lock, which the caller holds): :class:`Unavailable` when SQLite cannot
        write, and ``failure`` set until a later one commits. It yields a Counter in which the caller moves
        verdicts between statuses (+1 for each verdict that gets one, -1 for each that leaves it): they count once
        the transaction commits."""
        moved = Counter()
        try:
            with self.db.atomic():
                yield moved
        except sqlite3.OperationalError as error:
            self.failure = str(error)
            raise Unavailable(cannot_write(self.failure)) from error
        self.failure = None
        self._by_status.update(moved)

    def _recall(self, key, request) -> dict | None:
        if key is None:
            return None
        _check_key(key)
        found = self.db.execute("select request_hash, verdict_id, response_id, predictions, settings from "
                                "idempotency_keys where key = ? and created >= ?", [key, self._keys_since()]).fetchone()
        if found is None:
            return None
        hashed, *answer = found
        row = dict(zip(("verdict_id", "response_id", "predictions", "settings"), answer))
        if hashed != request_hash(request):
            raise Conflict(f"The idempotency key {key!r} was used for another request: send a new key with a "
                           "new request.", "idempotency_key")
        return {**row, **{name: json.loads(row[name]) for name in ("predictions", "settings") if row[name]}}

    def _remember(self, key, request, **answer):
        """Keep ``key`` with the hash of ``request`` and the answer's ids (replacing an expired row of the key)."""
        if key is not None:
            row = {"key": key, "request_hash": request_hash(request), "created": now(), **answer}
            self.db["idempotency_keys"].insert(row, replace=True)

    def _keys_since(self) -> str:
        """When the oldest key still kept was made."""
        return _iso(datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=self.key_hours))

    def _keyed_verdict(self, key, verdict_id) -> dict:
        try:
            return self.db["verdicts"].get(verdict_id)
        except NotFoundError:
            raise InvalidInput(f"The idempotency key {key!r} names verdict #{verdict_id}, which was taken back: "
                               "give the verdict again with a new key.", "idempotency_key") from None

    def _reviewers_verdict(self, prediction_id, reviewer):
        return next(self.db["verdicts"].rows_where("prediction_id = ? and reviewer = ?", [prediction_id, reviewer]))


def prediction_fields(result, role: str | None = None) -> dict:
    """What the store records of a moderation result that was shown (:meth:`FeedbackStore.save_prediction`'s
    fields), with its chat ``role``, if any."""
    return dict(text=result.text, label=result.label, scores=result.scores, prompt=result.prompt, model=result.model,
                template=result.template, mode=result.mode, generated=result.generated, role=role,
                threshold=result.threshold)


def cannot_write(reason: str) -> str:
    """What a user is told when the database cannot be written for ``reason``: what is wrong and what to do."""
    if "full" in reason:
        remedy = "free disk space where it is kept, then retry"
    elif "locked" in reason:
        remedy = "another program holds it, retry in a moment"
    else:
        remedy = "check the database file and its disk, then retry"
    return f"The feedback database cannot be written ({reason}): {remedy}."


def stored_result(row: dict, threshold: str) -> ModerationResult:
    """A recorded prediction (scores decoded) as the result it was shown as, judged at the intervention
    ``threshold`` it was made at: the inverse of :func:`prediction_fields`."""
    return ModerationResult.decided(text=row["text"], label=row["label"], scores=row["scores"], prompt=row["prompt"],
                                    model=row["model"], mode=row["mode"], generated=row["generated"],
                                    template=row["template"], threshold=threshold)


def now() -> str:
    """The current time in UTC, as stored in ``created`` and ``updated``."""
    return _iso(datetime.datetime.now(datetime.timezone.utc))


def parse_since(since: str) -> str:
    """The stored-time form of ``since``, a date or ISO datetime (UTC unless it says otherwise). A time that is
    before year 1 or after year 9999 in UTC (a few hours away, in another time zone) is the first or last moment."""
    try:
        moment = datetime.datetime.fromisoformat(since)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"Bad date {since!r}: use a date like 2026-11-29 or a time like 2026-11-29T14:30."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    try:
        return _iso(moment)
    except OverflowError:
        return _iso((datetime.datetime.min if moment.year == 1 else datetime.datetime.max).replace(
            tzinfo=datetime.timezone.utc))


def _iso(moment):
    return moment.astimezone(datetime.timezone.utc).isoformat(timespec="microseconds")


def _choice(value, choices, what):
    if value not in choices:
        raise InvalidInput(f"Unknown {what} {value!r}: choose one of {', '.join(choices)}.")
    return value


def _prediction_row(*, text, label, scores, prompt, model, template=None, mode="score", generated=None, role=None,
                    threshold=None) -> dict:
    """A predictions row, checked, with the queue's margins when it is scored; ValueError otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("Empty text: enter a text to moderate.")
    _choice(mode, MODES, "mode")
    if role is not None:
        _choice(role, ROLES, "role")
    if mode == "score" or label is not None:
        check_label(label)
    scores = _probabilities(scores) if mode == "score" else {}
    margins = prediction_margins(scores, threshold) if mode == "score" else {"margin": None, "intervene_margin": None}
    return {"created": now(), "text": text, "label": label, "scores": json.dumps(scores), "prompt": prompt,
            "model": model, "template": template, "mode": mode, "generated": generated, "role": role, **margins}


def _check_key(key):
    if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY or not key.isprintable():
        raise InvalidInput(f"Bad idempotency key: use up to {MAX_KEY} printable characters, such as a UUID.",
                           "idempotency_key")


def _probabilities(scores):
    if not isinstance(scores, dict) or set(scores) != set(LABELS):
        raise ValueError(f"Bad scores {scores!r}: give a probability for each of {', '.join(LABELS)}.")
    for label, score in scores.items():
        if isinstance(score, bool) or not isinstance(score, numbers.Real) or not 0 <= score <= 1:
            raise ValueError(f"Bad score {score!r} for {label!r}: give a probability from 0 to 1.")
    return {label: float(scores[label]) for label in LABELS}


def _filters(*, status=None, label=None, disagree=False, search=None, since=None):
    clauses, params = [], []
    if status is not None:
        clauses.append("verdicts.status = ?")
        params.append(_choice(status, STATUSES, "status"))
    if label is not None:
        clauses.append("verdicts.label = ?")
        params.append(check_label(label))
    if disagree:
        clauses.append("verdicts.label is not predictions.label")
    if search is not None and search.strip():
        clauses.append(
            "predictions.id in (select rowid from predictions_fts where predictions_fts match ?)"
        )
        visible = "".join(ch for ch in search if unicodedata.category(ch) != "Cc")
        params.append('"' + visible.replace('"', '""') + '"')
    if since is not None:
        clauses.append("verdicts.created >= ?")
        params.append(parse_since(since))
    return clauses, params


def _where(clauses):
    return " where " + " and ".join(clauses) if clauses else ""


def _decode(row):
    return {**row, "scores": json.loads(row["scores"])}
