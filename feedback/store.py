"""The feedback database: every prediction shown, reviewers' verdicts on them, and, through its parts, the review
queue (``queue``), curation (``curation``), idempotency keys (``keys``), evaluation runs (``evaluations``),
erasure (``erasure``), what is served (``serving``) and the shadow's predictions (``shadows``), all on one connection
(``connection``)."""

import json
import numbers

from moderation.errors import Conflict, InvalidInput
from moderation.policy import Policy
from moderation.prompt import is_blank
from moderation.results import MODES, ROLES, ModerationResult
from moderation.templates import PromptTemplate

from .connection import Connection
from .curation import Curation
from .erasure import Erasure
from .evaluations import Evaluations
from .idempotency import KEY_HOURS, IdempotencyKeys
from .queue import Queue, prediction_margins
from .rows import VERDICTS, choice, decode, now, prediction, verdict
from .serving import ServingLog
from .shadows import Shadows
from .splits import TEST_SHARE
from .templates import Templates, checked_label

_PREDICTION_COLUMNS = ("created", "text", "label", "scores", "prompt", "model", "template", "mode", "generated",
                       "role", "margin", "intervene_margin")
_INSERT_PREDICTION = (f"insert into predictions ({', '.join(_PREDICTION_COLUMNS)}) "
                      f"values ({', '.join(':' + column for column in _PREDICTION_COLUMNS)})")

_UPSERT_VERDICT = """
insert into verdicts (prediction_id, verdict, label, note, reviewer, created, status, updated)
values (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?6)
on conflict (prediction_id, reviewer) do update set verdict = excluded.verdict, label = excluded.label,
  note = excluded.note, created = excluded.created, status = 'pending', updated = excluded.updated
"""


class FeedbackStore:
    """A SQLite file of predictions and verdicts, safe to share between threads; a new file (and its WAL) is
    readable and writable by its owner alone. An accepted text goes to the test split with the chance ``test_share``.

    A write that SQLite cannot make (a full disk, an I/O error) raises :class:`~moderation.errors.Unavailable` with a
    message that says what to do, and leaves ``failure`` set to SQLite's reason until a later write commits.
    """

    def __init__(self, path, *, key_hours: float = KEY_HOURS, test_share: float = TEST_SHARE):
        self.connection = Connection(path)
        self.path, self.db = self.connection.path, self.connection.db
        self.keys = IdempotencyKeys(self.connection, key_hours)
        self.templates = Templates(self.connection)
        self.queue = Queue(self.connection)
        self.curation = Curation(self.connection, self.templates, test_share)
        self.evaluations = Evaluations(self.connection, self.templates)
        self.erasure = Erasure(self.connection, self.keys)
        self.serving = ServingLog(self.connection)
        self.shadows = Shadows(self.connection, self.templates)

    def close(self):
        """Close the database connection."""
        self.connection.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def failure(self) -> str | None:
        """Why the last write failed (SQLite's words, such as "database or disk is full"); None once one commits."""
        return self.connection.failure

    def template(self, template_id: str) -> PromptTemplate:
        """The template saved as ``template_id``: its policy is the one its predictions were made in."""
        return self.templates.get(template_id)

    def save_template(self, template_id: str, text: str) -> None:
        """Store a prompt template under ``template_id``; saving the same id again does nothing."""
        self.templates.save(template_id, text)

    def policy(self, template_id: str | None) -> Policy:
        """The policy of the predictions made with ``template_id`` (the card's when it names none)."""
        return self.templates.policy(template_id)

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
        rows = [self._prediction_row(**prediction) for prediction in predictions]
        with self.connection.lock, self.connection.transaction():
            return self._insert_predictions(rows)

    def save_results(self, results, roles=None) -> list[int]:
        """Record moderation results (and each one's chat role, if any) in one transaction; their ids."""
        roles = roles or [None] * len(results)
        return self.save_predictions([prediction_fields(result, role)
                                        for result, role in zip(results, roles, strict=True)])

    def prediction(self, prediction_id) -> dict:
        """A recorded prediction, its scores decoded; InvalidInput when there is none."""
        with self.connection.lock:
            return prediction(self.db, prediction_id)

    def predictions(self, ids: list[int]) -> list[dict]:
        """The recorded predictions with these ids, in their order, scores decoded; InvalidInput naming the first
        one that is no longer stored."""
        with self.connection.lock:
            rows = {row["id"]: row for row in self.db.query(
                "select * from predictions where id in (select value from json_each(?))", [json.dumps(ids)])}
        missing = next((prediction_id for prediction_id in ids if prediction_id not in rows), None)
        if missing is not None:
            raise InvalidInput(f"Prediction #{missing} was erased since: send the request again with a new key.",
                               "idempotency_key")
        return [decode(rows[prediction_id]) for prediction_id in ids]

    def add_verdict(self, prediction_id: int, *, verdict, label=None, note="", reviewer, idempotency_key=None) -> dict:
        """Record a reviewer's verdict on a prediction and return the stored verdict row.

        ``"right"`` keeps the model's label; ``"wrong"`` needs the correct ``label``. A reviewer has one
        verdict per prediction: a second one replaces the first (same id, pending again). A retry with the
        same ``idempotency_key`` returns the verdict the first call stored, and writes nothing.
        """
        choice(verdict, VERDICTS, "verdict")
        reviewer = _reviewer(reviewer)
        request = json.dumps(["verdict", prediction_id, verdict, label, note or "", reviewer])
        with self.connection.lock:
            first = self.keys.find(idempotency_key, request)
            if first is not None:
                return self.keys.verdict(idempotency_key, first["verdict_id"])
            label = self._checked_verdict(prediction_id, verdict, label)
            with self.connection.transaction() as moved:
                stored = self._upsert_verdict(moved, prediction_id, verdict, label, note, reviewer)
                self.keys.remember(idempotency_key, request, verdict_id=stored["id"])
            return stored

    def add_verdicts(self, verdicts: list[tuple[int, str, str | None]], *, reviewer) -> list[dict]:
        """Record several verdicts of one reviewer, each ``(prediction id, verdict, label)`` as :meth:`add_verdict`
        takes them: every one checked first, then all written in one transaction (or none)."""
        reviewer = _reviewer(reviewer)
        with self.connection.lock:
            checked = [(prediction_id, kind, self._checked_verdict(prediction_id, choice(kind, VERDICTS, "verdict"),
                                                                   label))
                       for prediction_id, kind, label in verdicts]
            with self.connection.transaction() as moved:
                return [self._upsert_verdict(moved, prediction_id, kind, label, "", reviewer)
                        for prediction_id, kind, label in checked]

    def _checked_verdict(self, prediction_id: int, verdict: str, label):
        """The label a verdict saves (the model's own for "right"), or InvalidInput saying what to choose instead."""
        judged = prediction(self.db, prediction_id)
        said = judged["label"]
        if verdict == "right":
            if said is None:
                raise InvalidInput("The model gave no label: choose the correct label and save a correction.")
            if label not in (None, said):
                raise InvalidInput(
                    f"The model said {said!r}: choose 'Label is wrong' to give {label!r}."
                )
            return said
        policy = self.templates.policy_held(judged["template"])
        if label is None:
            raise InvalidInput(f"Choose the correct label: one of {', '.join(policy.listed)}.")
        checked_label(policy, label, f"Prediction #{prediction_id}")
        if label == said:
            raise InvalidInput(
                f"{label!r} is the model's own label: use 'Label is right' instead."
            )
        return label

    def _upsert_verdict(self, moved, prediction_id: int, verdict: str, label, note, reviewer: str) -> dict:
        """Write a checked verdict (in the caller's transaction, whose counter ``moved`` it updates); the stored row."""
        replaced = self.db.execute("select status from verdicts where prediction_id = ? and reviewer = ?",
                                   [prediction_id, reviewer]).fetchone()
        self.db.execute(_UPSERT_VERDICT, [prediction_id, verdict, label, note or "", reviewer, now()])
        moved["pending"] += 1
        if replaced:
            moved[replaced[0]] -= 1
        return self._reviewers_verdict(prediction_id, reviewer)

    def withdraw_verdict(self, verdict_id, reviewer: str) -> dict:
        """Take back (delete) a reviewer's own pending verdict; returns it as it was."""
        with self.connection.lock:
            row = verdict(self.db, verdict_id)
            if row["reviewer"] != reviewer:
                raise InvalidInput(f"Verdict #{verdict_id} is {row['reviewer']}'s: only they can take it back.")
            if row["status"] != "pending":
                raise Conflict(f"Verdict #{verdict_id} is already {row['status']}: a curator decides on it now "
                                   "(Review tab).")
            with self.connection.transaction() as moved:
                self.db["verdicts"].delete(verdict_id)
                moved["pending"] -= 1
            return row

    def recall(self, idempotency_key: str, request: str) -> dict | None:
        """What the first request made with ``idempotency_key`` was answered with, as :meth:`save_once` stored
        it; None for a new key (or one older than ``key_hours``); Conflict when the key was used for another
        request."""
        with self.connection.lock:
            return self.keys.find(idempotency_key, request)

    def save_once(self, idempotency_key: str, request: str, response_id: str, predictions: list[dict] | None,
                    settings: dict) -> dict:
        """Record ``predictions`` (None: keep none) and the answer's ids under ``idempotency_key`` in one
        transaction: ``{"response_id", "predictions": [their ids] or None, "settings"}`` (the settings that decided
        it), which it returns. When the key is already stored (a concurrent retry won), it writes nothing and
        returns what is stored. The request itself is kept as a hash."""
        rows = None if predictions is None else [self._prediction_row(**prediction) for prediction in predictions]
        with self.connection.lock:
            first = self.keys.find(idempotency_key, request)
            if first is not None:
                return first
            with self.connection.transaction():
                ids = None if rows is None else self._insert_predictions(rows)
                self.keys.remember(idempotency_key, request, response_id=response_id,
                               predictions=None if ids is None else json.dumps(ids), settings=json.dumps(settings))
            return {"response_id": response_id, "predictions": ids, "settings": settings}

    def _prediction_row(self, **fields) -> dict:
        """A predictions row, checked in the policy of its template (:func:`prediction_row`)."""
        template = fields.get("template")
        try:
            policy = self.templates.policy(template)
        except InvalidInput:
            raise ValueError(f"Unknown template {template!r}: save it with save_template() first.") from None
        return prediction_row(policy, **fields)

    def _insert_predictions(self, rows: list[dict]) -> list[int]:
        """Insert checked prediction rows (under the lock, in a transaction); their ids."""
        return [self.db.execute(_INSERT_PREDICTION, row).lastrowid for row in rows]

    def _reviewers_verdict(self, prediction_id, reviewer):
        return next(self.db["verdicts"].rows_where("prediction_id = ? and reviewer = ?", [prediction_id, reviewer]))


def prediction_fields(result, role: str | None = None) -> dict:
    """What the store records of a moderation result that was shown (:meth:`FeedbackStore.save_prediction`'s
    fields), with its chat ``role``, if any."""
    return dict(text=result.text, label=result.label, scores=result.scores, prompt=result.prompt, model=result.model,
                template=result.template, mode=result.mode, generated=result.generated, role=role,
                threshold=result.threshold)


def stored_result(row: dict, threshold: str, policy: Policy) -> ModerationResult:
    """A recorded prediction (scores decoded) as the result it was shown as, judged in ``policy`` at the
    intervention ``threshold`` it was made at: the inverse of :func:`prediction_fields`."""
    return ModerationResult.decided(text=row["text"], label=row["label"], scores=row["scores"], prompt=row["prompt"],
                                    model=row["model"], mode=row["mode"], generated=row["generated"],
                                    template=row["template"], threshold=threshold, policy=policy)


def prediction_row(policy: Policy, *, text, label, scores, prompt, model, template=None, mode="score", generated=None,
                   role=None, threshold=None) -> dict:
    """A predictions row, checked in ``policy``, with the queue's margins when it is scored; ValueError otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("Empty text: enter a text to moderate.")
    choice(mode, MODES, "mode")
    if role is not None:
        choice(role, ROLES, "role")
    if mode == "score" or label is not None:
        policy.check_label(label)
    scores = _probabilities(scores, policy.listed) if mode == "score" else {}
    margins = (prediction_margins(scores, threshold, policy) if mode == "score"
               else {"margin": None, "intervene_margin": None})
    return {"created": now(), "text": text, "label": label, "scores": json.dumps(scores), "prompt": prompt,
            "model": model, "template": template, "mode": mode, "generated": generated, "role": role, **margins}

def _probabilities(scores, labels: tuple[str, ...]):
    if not isinstance(scores, dict) or set(scores) != set(labels):
        raise ValueError(f"Bad scores {scores!r}: give a probability for each of {', '.join(labels)}.")
    for label, score in scores.items():
        if isinstance(score, bool) or not isinstance(score, numbers.Real) or not 0 <= score <= 1:
            raise ValueError(f"Bad score {score!r} for {label!r}: give a probability from 0 to 1.")
    return {label: float(scores[label]) for label in labels}


def _reviewer(name) -> str:
    """A verdict's reviewer, stripped; InvalidInput when blank."""
    name = (name or "").strip()
    if is_blank(name):
        raise InvalidInput("Enter your name as reviewer, so your verdicts can be told apart.")
    return name
