"""The playground's one service: everything the page and the REST API do, as plain Python.

It validates and normalises texts once, at its edge; labels them through a micro-batcher (requests that
arrive together share forward passes); records what it showed; takes reviewers' verdicts and curation;
exports them; holds the server's default :class:`~moderation.settings.Settings`, which a change
replaces whole, after saving it; and retrains the model on the accepted verdicts of the train split, in a process of
its own, serving a trained version once the gate allows it (or a reviewer overrides it), shadowing one, or rolling
back, through :mod:`playground.serving`.
"""

import asyncio
import json
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from feedback.connection import cannot_write
from feedback.export import export_lines, write_export
from feedback.ids import row_id
from feedback.retention import DailySweep
from feedback.serving import OVERRIDE, PROMOTIONS, SERVE
from feedback.stats import summary
from feedback.store import FeedbackStore, prediction_fields, stored_result
from feedback.writer import PredictionWriter
from moderation import evaluate as evaluation
from moderation.atomic_writes import written_atomically
from moderation.batch_files import MAX_CHARS, BatchRun, label_file, output_format
from moderation.engine import Moderator
from moderation.errors import Conflict, InvalidInput, NotFound, Unavailable
from moderation.evaluate.gate import GateRefused, GateRules, gate, gate_runs, gate_summary
from moderation.evaluate.leaderboard import leaderboard, timed_run
from moderation.models import ServedModel
from moderation.policy import Policy
from moderation.prompt import NormalizedText, is_blank, normalize_text
from moderation.results import ROLES, ModerationResult, TurnResult
from moderation.settings import Settings
from moderation.templates import PromptTemplate, template_for
from moderation.versions import ModelVersion

from .batcher import MicroBatcher
from .jobs import Job, JobRunner, version_report
from .prometheus import Metrics
from .scratch import ScratchFolder
from .serving import BASE, Serving
from .shadow import Shadow

ANONYMOUS = "anonymous"
"""The reviewer a verdict is from when no name is given (and nobody is logged in)."""
SHOWN_CHARS = 64
"""The longest ``updated`` time a curation action may carry (a stored time has 32 characters)."""


@dataclass(frozen=True)
class Limits:
    """How much one request may ask for, and how many requests may wait at once."""

    max_inputs: int = 64
    max_chars: int = MAX_CHARS
    max_waiting: int = 128
    max_note: int = 2_000
    max_name: int = 100


@dataclass(frozen=True)
class Answer:
    """What a REST request is answered with: the response's id, the results, and the intervention message of the
    settings that decided them (a chat turn's reply when it intervenes)."""

    id: str
    results: list[ModerationResult]
    intervention: str


@dataclass(frozen=True)
class Prediction:
    """A result as shown: the model's result and its id in the feedback store (None when not recorded)."""

    result: ModerationResult
    id: int | None


@dataclass(frozen=True)
class Compared:
    """One served model's predictions on the texts compared (in its prompt ``format``), and how long it took to give
    them."""

    model: str
    format: str
    predictions: list[Prediction]
    seconds: float


class PlaygroundService:
    """One FeedbackStore behind the page and the API, and the models that serve: ``moderator``, the default one
    (which retraining, the gate, versions and the shadow are about), and ``others`` beside it, each in its own format
    and policy (chosen by name: REST's ``model``, the page's model choice). Files to download (and the page's uploads)
    go in the ``scratch`` folder, which it removes when it closes. A version is judged on the test split and
    ``held_out`` (by default the shipped held-out set) by the gate's ``rules``; ``served_folder`` is the folder of the
    version ``moderator`` is, if it is one."""

    def __init__(
        self,
        moderator: Moderator,
        store: FeedbackStore,
        scratch: ScratchFolder,
        *,
        settings: Settings = Settings(),
        limits: Limits = Limits(),
        max_batch_size: int = 32,
        max_wait: float = 0.005,
        versions_dir: Path | None = None,
        keep_days: int | None = None,
        rules: GateRules = GateRules(),
        held_out: evaluation.GoldSet | None = None,
        served_folder: Path | None = None,
        others: Sequence[ServedModel] = (),
    ):
        self.store = store
        self.scratch = scratch
        self.limits = limits
        self.rules = rules
        self.held_out = held_out or evaluation.heldout_gold()
        self.jobs = JobRunner(Path(versions_dir) if versions_dir else scratch.folder / "versions")
        self.serving = Serving(moderator, store, served_folder)
        self.batcher = MicroBatcher(self._label, max_batch_size=max_batch_size, max_wait=max_wait)
        self.writer = PredictionWriter(store)
        self.sweep = DailySweep(store, keep_days)
        self.metrics = Metrics()
        self._settings = self.prepare(settings)
        self.others = {model.name: replace(model, settings=self.prepare(model.settings, model.moderator))
                       for model in others}
        self.metrics.watch(self)

    def close(self) -> None:
        """Stop the retraining job that runs, if any (nothing of it is kept), and the shadow; commit the predictions
        still queued for the database, stop its daily sweep, then close it; remove the scratch folder."""
        self.jobs.close()
        self.serving.close()
        self.writer.close()
        self.sweep.close()
        self.store.close()
        self.scratch.close()

    @property
    def moderator(self) -> Moderator:
        """The Moderator that serves now (a served version replaces it whole)."""
        return self.serving.moderator

    # Settings

    @property
    def settings(self) -> Settings:
        """The server's default settings: what the API and every page without a draft use."""
        return self._settings

    def prepare(self, settings: Settings, moderator: Moderator | None = None) -> Settings:
        """``settings`` once checked against ``moderator`` (default: the default model) and its template saved: ready
        to be used."""
        (moderator or self.moderator).check_settings(settings)
        self.store.save_template(settings.template.id, settings.template.to_json())
        return settings

    # The served models

    def served_models(self) -> list[ServedModel]:
        """The models that serve, the default first in the server's default settings (its name changes when a version
        is served), then each served beside it in its own."""
        moderator = self.moderator
        return [ServedModel(moderator.name, moderator, self._settings), *self.others.values()]

    @property
    def model_names(self) -> list[str]:
        """The names of the models that serve, the default first."""
        return [model.name for model in self.served_models()]

    def served(self, model: str | None = None, settings: Settings | None = None) -> tuple[Moderator, Settings]:
        """The Moderator named ``model`` (None: the default) and the settings it labels with: for the default,
        ``settings`` (a session's draft) or the server's default; another model's own. NotFound listing the served
        models for any other name."""
        if model is None or model == self.moderator.name:
            return self.moderator, settings or self._settings
        if isinstance(model, str) and model in self.others:
            return self.others[model].moderator, self.others[model].settings
        raise NotFound(f"The model {model!r} is not served here: choose one of {', '.join(self.model_names)} (GET "
                       "/v1/models lists them), or leave it out for the default.", "model")

    def draft(self, examples: list[dict], threshold: str, policy: Policy | None = None) -> Settings:
        """Prepared settings in the default's prompt format with ``policy`` (default: the default's), these few-shot
        examples (the card format's: another format asks without examples) and threshold, and the default's
        intervention."""
        policy = policy or self._settings.policy
        if self._settings.template.format == "card":
            policy = PromptTemplate.from_examples(examples, policy).policy
        return self.in_format(policy, threshold)

    def in_format(self, policy: Policy, threshold: str | None = None) -> Settings:
        """Prepared settings with ``policy`` (its examples, and ``threshold``, by default its own) in the default's
        prompt format, and the default's intervention: a policy file loaded as a draft."""
        template = template_for(self._settings.template.format, policy)
        return self.prepare(Settings(template, threshold, self._settings.intervention))

    def publish(self, settings: Settings, *, confirmed: bool = True) -> Settings:
        """Make ``settings`` the server's default: prepared first, then swapped in by one assignment. A policy whose
        labels differ from the default's needs ``confirmed`` (InvalidInput saying so otherwise)."""
        published = self._settings.policy
        if not confirmed and settings.policy.labels != published.labels:
            raise InvalidInput(f"The draft's labels ({', '.join(settings.policy.labels)}) are not those of the "
                               f"published policy {published.name!r} ({', '.join(published.labels)}): confirm the "
                               "change of labels, then publish again. Verdicts on older predictions keep their own "
                               "policy.", "confirm")
        self._settings = self.prepare(settings)
        return settings

    # Moderation

    def clean(self, texts: list, fields: list[str]) -> list[NormalizedText]:
        """The texts, each checked and normalised (InvalidInput naming its field otherwise)."""
        if not texts:
            raise InvalidInput("No text: give at least one text.", "input")
        if len(texts) > self.limits.max_inputs:
            raise InvalidInput(f"{len(texts)} texts; send at most {self.limits.max_inputs} at once.", "input")
        cleaned = []
        for text, field in zip(texts, fields, strict=True):
            if isinstance(text, str) and len(text) > self.limits.max_chars:
                raise InvalidInput(f"{field} has {len(text)} characters; the limit is {self.limits.max_chars}.",
                                   field)
            try:
                cleaned.append(normalize_text(text))
            except InvalidInput as error:
                raise InvalidInput(f"{field}: {error}", field) from None
        return cleaned

    def moderate(
        self,
        texts: list,
        *,
        fields: list[str] | None = None,
        settings: Settings | None = None,
        mode: str = "score",
        roles: list[str | None] | None = None,
        record: bool = True,
        model: str | None = None,
    ) -> list[Prediction]:
        """Label the texts with the served ``model`` (see :meth:`served`: the default in ``settings``, else the
        server's default settings), and record what was shown.

        ``fields`` name the texts in errors (``text``, or ``text 1``, ``text 2``...); ``roles`` give
        each text's side of a chat turn (a bot's reply is shown to a guard format with the user's message before it).
        """
        fields = fields or (["text"] if len(texts) == 1 else [f"text {n}" for n in range(1, len(texts) + 1)])
        cleaned = self.clean(texts, fields)
        moderator, settings = self.served(model, settings)
        if mode == "score":
            results = self.batcher.submit(in_turn(cleaned, roles), (moderator, settings))
        else:
            results = self._counted(moderator.moderate(cleaned, settings, mode=mode))
        ids = self.store.save_results(results, roles) if record else [None] * len(results)
        if record:
            self._offer(results, (moderator, settings))
        return [Prediction(result, prediction_id) for result, prediction_id in zip(results, ids)]

    def side_by_side(self, texts: list, *, fields: list[str] | None = None, roles: list[str | None] | None = None,
                     settings: Settings | None = None) -> list[Compared]:
        """The texts (one, or a chat turn's two with ``roles``) through every served model, the default first (in
        ``settings``, a session's draft), each recorded and timed."""
        compared = []
        for number, served in enumerate(self.served_models()):
            used = (settings or served.settings) if number == 0 else served.settings
            start = time.perf_counter()
            predictions = self.moderate(texts, fields=fields, roles=roles, model=served.name if number else None,
                                        settings=used)
            compared.append(Compared(served.name, used.template.format, predictions, time.perf_counter() - start))
        return compared

    def check_turn(
        self, user: str, bot: str, *, fields: tuple[str, str] = ("user", "bot"), settings: Settings | None = None,
        record: bool = True, model: str | None = None,
    ) -> tuple[TurnResult, Prediction, Prediction]:
        """Check a user's message and the bot's reply with the served ``model`` (see :meth:`served`); the reply is
        replaced when either side intervenes."""
        settings = self.served(model, settings)[1]
        shown = self.moderate([user, bot], fields=list(fields), settings=settings, roles=list(ROLES), record=record,
                              model=model)
        turn = TurnResult.of(shown[0].result, shown[1].result, bot, settings.intervention)
        return turn, shown[0], shown[1]

    # The REST API's path: labelled by the batcher while the caller's event loop goes on; predictions are
    # recorded by the writer thread, on disk once their batch commits (moments after the answer). While the
    # database is known to fail, a request that would record is refused instead of answered and then lost.

    async def label_soon(self, texts: list, *, fields: list[str], roles: list[str] | None = None,
                         record: bool = True, served: tuple[Moderator, Settings] | None = None,
                         ) -> list[ModerationResult]:
        """The results for ``texts`` from the ``served`` model and settings (default: the default model in the
        server's default settings), checked at once: InvalidInput naming the field; Unavailable when they should be
        recorded and the database is failing."""
        cleaned = self.clean(texts, fields)
        if record and self.store.failure is not None:
            raise Unavailable(cannot_write(self.store.failure))
        served = served or self.served()
        future = self.batcher.enqueue(in_turn(cleaned, roles), served)
        if record:  # handed to the writer before the answer is released: a flush or a clean stop after it has it
            future.add_done_callback(lambda done: self._record_later(done, roles or [None] * len(cleaned), served))
        return await asyncio.wrap_future(future)

    async def answer(self, texts: list, *, fields: list[str], roles: list[str] | None = None, record: bool = True,
                     response_id: str, model: str | None = None) -> "Answer":
        """:meth:`label_soon` with the served ``model`` (the default when None) in its settings, read once (a publish
        in between cannot mix two settings in one answer)."""
        served = self.served(model)
        results = await self.label_soon(texts, fields=fields, roles=roles, record=record, served=served)
        return Answer(response_id, results, served[1].intervention)

    async def answer_once(self, idempotency_key: str, request: str, texts: list, *, fields: list[str],
                          roles: list[str] | None = None, record: bool = True, response_id: str,
                          model: str | None = None) -> "Answer":
        """The answer to ``request`` (``texts`` in it) made with ``idempotency_key``. A new key is answered as
        :meth:`answer` answers, its predictions (with ``record``) committed with the key before it returns; the key
        keeps a hash of the request and the answer's ids, never a text. A key seen before gets its first answer
        again, and nothing is written: rebuilt from its predictions, or, when none were recorded, labelled again if
        the same model and settings serve (the same labels; InvalidInput otherwise)."""
        first = await asyncio.to_thread(self.store.recall, idempotency_key, request)
        if first is None:
            served = self.served(model)
            results = await self.label_soon(texts, fields=fields, roles=roles, record=False, served=served)
            predictions = [prediction_fields(result, role)
                           for result, role in zip(results, roles or [None] * len(results))] if record else None
            first = await asyncio.to_thread(self.store.save_once, idempotency_key, request, response_id, predictions,
                                            answered_by(*served))
            if first["response_id"] == response_id:
                if record:
                    self._offer(results, served)
                return Answer(response_id, results, served[1].intervention)
        results = await self._results_again(first, texts, fields, roles, model)
        return Answer(first["response_id"], results, first["settings"]["intervention"])

    async def _results_again(self, first: dict, texts: list, fields: list[str], roles: list[str] | None,
                             model: str | None) -> list[ModerationResult]:
        if first["predictions"] is not None:
            rows = await asyncio.to_thread(self.store.predictions, first["predictions"])
            return [stored_result(row, first["settings"]["threshold"], self.store.template(row["template"]).policy)
                    for row in rows]
        served = self.served(model)
        if answered_by(*served) != first["settings"]:
            raise InvalidInput("This idempotency key's answer was not recorded (--no-record-api), and the model or "
                               "its settings changed since: send the request again with a new key.", "idempotency_key")
        return await self.label_soon(texts, fields=fields, roles=roles, record=False, served=served)

    def _record_later(self, done: Future, roles: list[str | None], served: tuple[Moderator, Settings]) -> None:
        if done.exception() is None:
            self.writer.add([prediction_fields(result, role) for result, role in zip(done.result(), roles)])
            self._offer(done.result(), served)

    def _offer(self, results: list[ModerationResult], served: tuple[Moderator, Settings]) -> None:
        """Hand the default model's results to the shadow (another model's are not the shadow's to compare)."""
        moderator, settings = served
        if moderator is self.moderator:
            self.serving.offer(results, settings)

    # Verdicts and curation

    def confirm(self, prediction_id, *, note: str = "", reviewer: str, idempotency_key: str | None = None) -> dict:
        """Record that the model's label is right; returns the stored verdict once it is on disk (a retry with
        the same ``idempotency_key`` returns the first call's verdict and writes nothing)."""
        return self._verdict(prediction_id, "right", None, note, reviewer, idempotency_key)

    def flag(self, prediction_id, label, *, note: str = "", reviewer: str, idempotency_key: str | None = None) -> dict:
        """Record that the model's label is wrong and ``label`` is right; returns the stored verdict once on disk
        (a retry with the same ``idempotency_key`` returns the first call's verdict and writes nothing)."""
        if not label:
            raise InvalidInput("Choose the correct label before saving a correction.", "label")
        return self._verdict(prediction_id, "wrong", label, note, reviewer, idempotency_key)

    def verdicts(self, *, status=None, label=None, disagree=False, search=None) -> list[dict]:
        """The verdicts matching the filters, newest first."""
        search = self._field(search, "search", self.limits.max_chars)
        return self.store.curation.verdicts(status=status, label=label, disagree=bool(disagree), search=search or None)

    def verdict(self, verdict_id) -> dict:
        """A verdict as a curator sees it once it is selected, with every verdict on its text (``on_text``)."""
        return self.store.curation.record(row_id(verdict_id, "verdict", "Select a verdict in the table first."))

    def set_status(self, verdict_id, status: str, *, shown=None, curator=None) -> dict:
        """Accept or discard a verdict (or make it pending again), unless it changed since it was ``shown`` (the
        ``updated`` time the curator saw; blank: as it is now)."""
        return self.store.curation.set_status(row_id(verdict_id, "verdict", "Select a verdict in the table first."),
                                              status, shown=self._shown(shown), curator=self.reviewer_name(curator))

    def relabel(self, verdict_id, label, *, shown=None, curator=None) -> dict:
        """Give a verdict another correct label, unless it changed since it was ``shown``."""
        if not label:
            raise InvalidInput("Choose the new label first.", "label")
        return self.store.curation.relabel(row_id(verdict_id, "verdict", "Select a verdict in the table first."),
                                           label, shown=self._shown(shown), curator=self.reviewer_name(curator))

    def matching(self, *, status=None, label=None, disagree=False, search=None) -> dict[int, str]:
        """Every verdict matching the filters, as it is now (``{id: updated}``): what "all matching" acts on."""
        search = self._field(search, "search", self.limits.max_chars)
        return self.store.curation.matching(status=status, label=label, disagree=bool(disagree), search=search or None)

    def change(self, shown: dict, *, status=None, label=None, curator=None) -> dict:
        """Change the status and/or label of the verdicts ``shown`` (``{id: updated time seen, or None}``) in one
        transaction and one batch; refused when any changed since it was shown."""
        return self.store.curation.change({verdict_id: self._shown(seen) for verdict_id, seen in shown.items()},
                                          status=status, label=label, curator=self.reviewer_name(curator))

    def undo(self, batch_id, *, curator=None) -> dict:
        """Take a batch of changes back, unless one of its verdicts changed since."""
        return self.store.curation.undo(row_id(batch_id, "batch", "No batch to undo: change some verdicts first."),
                                        self.reviewer_name(curator))

    def export_lines(self, *, format: str = "oig", status=None, since=None, split=None) -> Iterator[str]:
        """The verdicts as jsonl lines, streamed (arguments are checked before the first line)."""
        return export_lines(self.store, format=format, status=status, since=since or None, split=split)

    def export(self, *, format: str = "oig", status=None, since=None) -> tuple[Path, int]:
        """Write the verdicts as a jsonl file in the export folder (removed within the hour); returns its path and
        how many it holds."""
        path = self.scratch.new_export(f"feedback-{format}")
        return path, write_export(self.store, path, format=format, status=status, since=since or None)

    # The reviewer's workbench: names, the review queue, disagreements, batch files and the figures

    def reviewer_name(self, typed) -> str:
        """Who a verdict is from: the name given (within its limit), or ``anonymous`` when it is blank."""
        name = self._field(typed, "reviewer", self.limits.max_name).strip()
        return ANONYMOUS if is_blank(name) else name

    def next_in_queue(self, reviewer, *, order: str = "most uncertain") -> dict | None:
        """The recorded prediction this reviewer should judge next (see ``Queue.next``)."""
        return self.store.queue.next(self.reviewer_name(reviewer), order=order)

    def queue_size(self, reviewer) -> int:
        """How many recorded predictions wait for this reviewer's verdict."""
        return self.store.queue.size(self.reviewer_name(reviewer))

    def skip(self, prediction_id, *, reviewer) -> None:
        """Leave a prediction's text out of this reviewer's queue until they clear their skips."""
        self.store.queue.skip(self.reviewer_name(reviewer),
                              row_id(prediction_id, "prediction", "Nothing to skip: the queue has no text left."))

    def skipped(self, reviewer) -> int:
        """How many texts this reviewer skipped."""
        return self.store.queue.skipped(self.reviewer_name(reviewer))

    def clear_skips(self, reviewer) -> int:
        """Bring back the texts this reviewer skipped; how many."""
        return self.store.queue.clear_skips(self.reviewer_name(reviewer))

    def prediction(self, prediction_id) -> dict:
        """A recorded prediction (to show it again once a verdict on it is taken back)."""
        return self.store.prediction(row_id(prediction_id, "prediction", "Pick a prediction first."))

    def policy_of(self, prediction: dict) -> Policy:
        """The policy a recorded prediction was made in (its template's)."""
        return self.store.policy(prediction["template"])

    def verdict_policy(self, verdict_id) -> Policy:
        """The policy of a verdict's prediction (the default's when none is chosen, or it is gone): its labels are
        what a relabel may give it."""
        try:
            return self.policy_of(self.verdict(verdict_id)) if verdict_id is not None else self._settings.policy
        except NotFound:
            return self._settings.policy

    def text_policy(self, text) -> Policy:
        """The policy a judged text's verdicts are in (the default's for a text not judged in one policy): what its
        final label may be."""
        try:
            return self.store.curation.policy_of_text(text) if isinstance(text, str) else self._settings.policy
        except InvalidInput:
            return self._settings.policy

    def label_of_number(self, prediction_id, number: int | None) -> str | None:
        """The label of severity ``number`` (1 the least severe) in the policy of prediction ``prediction_id``; None
        for None (the model's own label)."""
        if number is None:
            return None
        prediction_id = row_id(prediction_id, "prediction", "Nothing to judge: the queue has no text left.")
        labels = self.policy_of(self.store.prediction(prediction_id)).labels
        if not isinstance(number, int) or not 1 <= number <= len(labels):
            raise InvalidInput(f"No label number {number!r}: this text's policy has labels 1 to {len(labels)}.",
                               "label")
        return labels[number - 1]

    def judge(self, prediction_id, label=None, *, reviewer) -> dict:
        """A verdict given by picking the correct label: "right" when it is None or the model's own label, else a
        correction to ``label``; returns the stored verdict once it is on disk."""
        prediction_id = row_id(prediction_id, "prediction", "Nothing to judge: the queue has no text left.")
        if label is None or label == self.store.prediction(prediction_id)["label"]:
            return self.confirm(prediction_id, reviewer=reviewer)
        return self.flag(prediction_id, label, reviewer=reviewer)

    def judge_all(self, prediction_ids: list, label, *, reviewer) -> list[dict]:
        """One judgement for the predictions of one text by several models (the Compare tab): ``label`` is the
        correct one, so each prediction is "right" where its model gave it and a correction elsewhere; all saved in
        one transaction once each is checked (none when one is refused)."""
        if not prediction_ids:
            raise InvalidInput("Compare a text first, then give one verdict for every model.", "prediction")
        if not label:
            raise InvalidInput("Choose the correct label first: one verdict with it is saved for every model.",
                               "label")
        ids = [row_id(prediction_id, "prediction", "Compare a text first, then judge it.")
               for prediction_id in prediction_ids]
        verdicts = [(prediction_id, "right" if label == self.store.prediction(prediction_id)["label"] else "wrong",
                     label) for prediction_id in ids]
        return self.store.add_verdicts(verdicts, reviewer=self.reviewer_name(reviewer))

    def take_back(self, verdict_id, *, reviewer) -> dict:
        """Delete this reviewer's own pending verdict (an undo); returns it as it was."""
        return self.store.withdraw_verdict(row_id(verdict_id, "verdict", "No verdict of yours to take back."),
                                           self.reviewer_name(reviewer))

    def disagreements(self) -> list[dict]:
        """Texts whose reviewers give different labels, unsettled ones first."""
        return self.store.curation.disagreements()

    def settle(self, text, label, *, curator) -> dict:
        """Set the final label of a text reviewers disagree on: the one the export uses."""
        if not isinstance(text, str) or is_blank(text):
            raise InvalidInput("Select a text in the table of disagreements first.", "text")
        if not label:
            raise InvalidInput("Choose the final label first.", "label")
        return self.store.curation.set_final_label(text, label, self.reviewer_name(curator))

    def moderate_file(self, path, *, format: str | None = None, settings: Settings | None = None, record: bool = True,
                      progress=None, first: int = 0, model: str | None = None) -> tuple[Path, BatchRun]:
        """Label a batch file (CSV, jsonl or txt) with the served ``model`` (see :meth:`served`) into a file in the
        export folder, one row per input row; ``record`` keeps the predictions, where they join the review queue; the
        run keeps its ``first`` rows to show. A bad file labels nothing."""
        if not path:
            raise InvalidInput("Upload a file first: CSV with a text column, jsonl with a text field, or txt.", "file")
        served = self.served(model, settings)
        format = output_format("", format or "jsonl")
        out = self.scratch.new_export("batch", format)
        run = label_file(path, out, lambda texts: self.batcher.submit(in_turn(texts), served), format=format,
                         max_chars=self.limits.max_chars, chunk_size=self.batcher.max_batch_size,
                         record=self._recorder(served) if record else None, progress=progress, first=first,
                         policy=served[1].policy)
        return out, run

    def stats(self) -> dict:
        """Every figure of the feedback: counts, label mix, confusion, agreement, daily figures, the queue."""
        return summary(self.store, self._settings.policy)
    # Evaluation

    def gold_set(self, source: str, path: str | Path | None = None, policy: Policy | None = None
                 ) -> evaluation.GoldSet:
        """The gold set of ``source`` (one of ``GOLD_SOURCES``: the held-out set, accepted verdicts, or the
        labelled file at ``path``) in ``policy`` (default: the default settings'): the accepted verdicts made in
        it; the held-out set only in the card's labels."""
        policy = policy or self._settings.policy
        if source == evaluation.ACCEPTED_NAME:
            return evaluation.gold_from_verdicts(self.store.evaluations.accepted_labels(policy), policy)
        if source == evaluation.HELDOUT_NAME:
            held_out = evaluation.heldout_gold()
            if held_out.policy.labels != policy.labels:
                raise InvalidInput(f"The {held_out.name} is labelled in the card's policy, not in {policy.name!r}: "
                                   "evaluate on accepted verdicts or on a gold file in that policy.", "gold")
            return held_out
        if source != evaluation.FILE_SOURCE:
            raise InvalidInput(f"Unknown gold set {source!r}: choose one of {', '.join(evaluation.GOLD_SOURCES)}.",
                               "gold")
        if not path:
            raise InvalidInput("Upload a gold file first: jsonl of {\"text\", \"label\"} lines.", "gold")
        return evaluation.read_gold(path, policy)

    def evaluate(self, gold: evaluation.GoldSet, *, settings: Settings | None = None, mode: str = "score",
                 progress: evaluation.Progress | None = None, model: str | None = None) -> dict:
        """Label ``gold`` with the served ``model`` (see :meth:`served`: the default in ``settings``, else in the
        server's default settings), and store the run; returns it as stored."""
        moderator, settings = self.served(model, settings)
        settings = self.prepare(settings, moderator)
        return self.store.evaluations.save(evaluation.evaluate(moderator, gold, settings, mode, progress))

    def leaderboard(self, gold: evaluation.GoldSet, *, progress: evaluation.Progress | None = None) -> dict:
        """Every served model on ``gold``, each in its own settings (the gold set's labels must be its policy's),
        timed, each run stored: the models ranked (:func:`~moderation.evaluate.leaderboard.leaderboard`). A model
        whose policy is not the gold set's is refused before any model runs."""
        models, entries = self.served_models(), []
        for model in models:
            evaluation.check_policy(gold, model.settings, f"the model {model.name!r}")
        for number, model in enumerate(models):
            share = progress and part_of(progress, number, len(models))
            run, speed = timed_run(model.moderator, gold, model.settings, progress=share)
            entries.append((model.name, self.store.evaluations.save(run), speed))
        return leaderboard(entries)

    def runs(self, limit: int = 50) -> list[dict]:
        """The latest stored evaluation runs, newest first, without their items."""
        return self.store.evaluations.recent(limit)

    def compare(self, run_a, run_b) -> dict:
        """Stored run ``run_b`` against ``run_a``: the figures side by side and the texts whose label flipped."""
        ids = [row_id(run, "run", "Pick two runs to compare.") for run in (run_a, run_b)]
        return evaluation.compare(*map(self.store.evaluations.get, ids))

    def try_settings(self, settings: Settings, gold: evaluation.GoldSet, *, mode: str = "score",
                     progress: evaluation.Progress | None = None) -> dict:
        """``settings`` (a draft) against the server's default on ``gold``: both runs stored, then compared, so the
        comparison says what the draft fixes and what it breaks."""
        default = self.evaluate(gold, mode=mode, progress=progress and part_of(progress, 0, 2))
        tried = self.evaluate(gold, settings=settings, mode=mode, progress=progress and part_of(progress, 1, 2))
        return evaluation.compare(default, tried)

    # Retraining and versions

    def gate_set(self) -> evaluation.GoldSet:
        """The texts a version is judged on, in the published policy: the accepted verdicts of the test split (and of
        the texts a shadow disagreed on) made in it, and the held-out set (``eval_data``, by default the shipped one)
        when it is in that policy's labels (else those verdicts alone; InvalidInput when there are none)."""
        policy = self._settings.policy
        judging = self.store.evaluations.judging_labels(policy)
        if self.held_out.policy.labels == policy.labels:
            return evaluation.gate_gold(judging, self.held_out)
        if not judging:
            raise InvalidInput(f"No accepted verdicts of the test split in the policy {policy.name!r} to judge a "
                               f"version on: the {self.held_out.name} is in another policy's labels, so a version in "
                               f"{policy.name!r} is judged on its accepted test-split verdicts alone. Accept more "
                               "verdicts in the Review tab (a share of the texts goes to the test split).", "gate")
        return evaluation.gold_from_verdicts(judging, policy)

    def retrain(self, *, reviewer=None) -> Job:
        """Start fine-tuning the base model on the accepted verdicts of the train split (with LoRA, the seed set
        replayed), judged on the gate set, in a process of its own; InvalidInput when it cannot start."""
        source = self.moderator.source
        if source is None:
            raise InvalidInput("The model runs on a vLLM server, not here: retrain it with python -m "
                               "moderation.training on a GPU machine, and serve the version with --adapter.")
        self.jobs.check_idle()
        name = "retrain-" + datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        self.jobs.folder.mkdir(parents=True, exist_ok=True)
        data, judged = (self.jobs.folder / f"{name}{suffix}.jsonl" for suffix in ("", "-gate-set"))
        policy_file = self.jobs.folder / f"{name}-policy.toml"
        gate_set = self.gate_set()
        policy = self._settings.policy
        if not write_export(self.store, data, format="oig", status="accepted", split="train", policy=policy):
            data.unlink(missing_ok=True)
            raise InvalidInput("No accepted verdicts in the train split to train on: accept more in the Review tab, on "
                               f"predictions in the published policy {policy.name!r} (a share of the texts goes to "
                               "the test split, which judges the version).")
        with written_atomically(judged) as out:
            out.writelines(json.dumps({"text": text, "label": label}) + "\n" for text, label in gate_set.items)
        with written_atomically(policy_file) as out:
            out.write(policy.to_toml())
        return self.jobs.start(name, ["--model", source, "--data", str(data), "--eval-data", str(judged), "--lora",
                                      "--policy", str(policy_file), "--format", self._settings.template.format,
                                      "--started-by", self.reviewer_name(reviewer)])

    def training(self) -> Job | None:
        """The latest retraining job as it stands (None before the first)."""
        return self.jobs.status()

    def stop_training(self) -> Job:
        """Stop the running retraining job; nothing it wrote is served or kept."""
        return self.jobs.stop()

    def versions(self) -> list[dict]:
        """The versions trained here, newest first: each one's ``folder`` (its name), ``name``, ``kind``, ``base``,
        ``created``, ``started_by``, how many ``trained_texts``, the ``policy`` it was trained in (and serves with), and
        its ``report``'s figures on the gate set (:func:`~playground.jobs.version_report`)."""
        return [{"folder": path.name, "name": version.name, "kind": version.kind, "base": version.base_name,
                 "created": version.created, "started_by": version.started_by, "policy": version.trained_policy,
                 "trained_texts": len(version.trained_texts), "report": version_report(path)}
                for path, version in self.jobs.versions()]

    def check_gate(self, name: str) -> dict:
        """The gate's decision on the version trained here in folder ``name`` against the serving model, on the gate
        set (both runs are stored)."""
        folder, _ = self._trained(name)
        with self.serving.lock:
            return self._gate(self.serving.load(folder))

    def serve_version(self, name: str, *, reviewer=None, reason: str | None = None) -> dict:
        """Serve the version trained here in folder ``name`` once the gate allows it against the serving model (else
        GateRefused, which names the figures and the texts), or, given a ``reason``, even though the gate refuses it
        (an override: the reason, who gave it and the refused figures are kept). It is loaded and checked first,
        then swapped in by one assignment; the Moderator it replaces stays loaded for a roll back. Returns the
        serving event (what serves, who, why, the gate's figures)."""
        folder, _ = self._trained(name)
        reviewer = self.reviewer_name(reviewer)
        reason = self._field(reason, "reason", self.limits.max_note).strip() or None
        with self.serving.lock:
            candidate = self.serving.load(folder)
            candidate.check_settings(self._settings)
            decision = self._gate(candidate)
            if not decision["allowed"] and reason is None:
                raise GateRefused(decision)
            action = SERVE if decision["allowed"] else OVERRIDE
            return self.serving.promote(candidate, folder, action, reviewer=reviewer, reason=reason,
                                        gate=gate_summary(decision))

    def rollback(self, to: str | None = None, *, reviewer=None) -> dict:
        """Serve again a version served before (``to``, a folder from :meth:`rollback_choices`; :data:`BASE` is the
        model without a trained version; None, the one served before the last change); returns the event."""
        reviewer = self.reviewer_name(reviewer)
        if to is None:
            return self.serving.roll_back_previous(reviewer=reviewer)
        return self.serving.roll_back(self._served_before(to), reviewer=reviewer)

    def rollback_choices(self) -> list[tuple[str, str]]:
        """What can serve again, each (what it is, its folder): the model without a trained version (:data:`BASE`),
        and every version served before whose folder is still there, the latest first; the one serving left out."""
        choices = {BASE: f"{self.moderator.source or self.moderator.name} (no trained version)"}
        for event in self.store.serving.history(limit=1000):
            folder = event["folder"]
            if event["action"] in PROMOTIONS and folder and folder not in choices and Path(folder).is_dir():
                choices[folder] = f"{event['version']} ({Path(folder).name})"
        current = str(self.serving.folder) if self.serving.folder else BASE
        return [(shown, folder) for folder, shown in choices.items() if folder != current]

    def serving_history(self, limit: int = 100) -> list[dict]:
        """What was served, shadowed and rolled back, newest first: who, when, why and the gate's figures."""
        return self.store.serving.history(limit)

    def shadow_version(self, name: str, *, reviewer=None) -> Shadow:
        """Run the version trained here in folder ``name`` beside the serving model on live traffic: it labels what
        the serving model answered (and recorded), off the request path."""
        folder, _ = self._trained(name)
        with self.serving.lock:
            candidate = self.serving.load(folder)
            candidate.check_settings(self._settings)
            return self.serving.start_shadow(candidate, folder, reviewer=self.reviewer_name(reviewer))

    def stop_shadow(self, *, reviewer=None) -> Shadow:
        """Stop the shadow (Conflict when none runs)."""
        return self.serving.stop_shadow(reviewer=self.reviewer_name(reviewer))

    def promote_shadow(self, *, reviewer=None) -> dict:
        """Serve the shadow's version, once the gate allows it (GateRefused otherwise: an override goes through
        :meth:`serve_version` with a reason), and stop the shadow; returns the serving event."""
        with self.serving.lock:
            shadow = self.serving.shadow
            if shadow is None:
                raise Conflict("No shadow runs: shadow a version first.")
            served = self.serve_version(shadow.folder.name, reviewer=reviewer)
            self.stop_shadow(reviewer=reviewer)
            return served

    def _trained(self, name) -> tuple[Path, ModelVersion]:
        """The folder and version of the version trained here named ``name`` (its folder's name, or its own)."""
        found = next(((path, version) for path, version in self.jobs.versions() if name in (path.name, version.name)),
                     None)
        if not isinstance(name, str) or found is None:
            raise NotFound(f"No trained version {name!r}: choose one from the list (GET /v1/models).", "version")
        return found

    def _served_before(self, folder: str) -> Path | None:
        """The folder of a roll-back choice (None for :data:`BASE`); InvalidInput for anything else."""
        if folder not in dict((value, shown) for shown, value in self.rollback_choices()):
            raise InvalidInput(f"{folder!r} is not a version served before: choose one from the list.", "version")
        return None if folder == BASE else Path(folder)

    def _gate(self, candidate: Moderator) -> dict:
        """The gate's decision on ``candidate`` against the serving model on the gate set (both runs stored)."""
        settings = self.prepare(self._settings)
        runs = gate_runs(self.moderator, candidate, self.gate_set(), settings)
        return gate(*(self.store.evaluations.save(run) for run in runs), self.rules)

    def _recorder(self, served: tuple[Moderator, Settings]):
        """What records a batch file's results (from the ``served`` model and settings): the store, then the
        shadow."""

        def record(results: list[ModerationResult]) -> list[int]:
            ids = self.store.save_results(results)
            self._offer(results, served)
            return ids

        return record

    def _label(self, items: list[tuple[NormalizedText, str | None]], served: tuple[Moderator, Settings]
               ) -> list[ModerationResult]:
        """The micro-batcher's batch: texts with the message each answers (or None), for one model in one settings."""
        moderator, settings = served
        self.metrics.batch_size.observe(len(items))
        texts, contexts = zip(*items)
        return self._counted(moderator.moderate(list(texts), settings, contexts=list(contexts)))

    def _counted(self, results: list[ModerationResult]) -> list[ModerationResult]:
        for result in results:
            self.metrics.labels.labels(result.label or "none").inc()
        return results

    def _verdict(self, prediction_id, verdict: str, label, note, reviewer, idempotency_key) -> dict:
        prediction_id = row_id(prediction_id, "prediction",
                                     "Moderate a text first, then give your verdict on its label.")
        return self.store.add_verdict(prediction_id, verdict=verdict, label=label,
                                      note=self._field(note, "note", self.limits.max_note),
                                      reviewer=self.reviewer_name(reviewer),
                                      idempotency_key=idempotency_key or None)

    def _shown(self, shown) -> str | None:
        """The ``updated`` time a curator was shown (None when blank: act on the verdict as it is)."""
        return self._field(shown, "shown time", SHOWN_CHARS).strip() or None

    @staticmethod
    def _field(value, name: str, limit: int) -> str:
        """A free-text field (note, name, search) within its limit, without unpaired surrogates (which no
        file can store); InvalidInput otherwise."""
        if value is None:
            return ""
        if not isinstance(value, str):
            raise InvalidInput(f"The {name} must be text, not {type(value).__name__}.", name)
        if len(value) > limit:
            raise InvalidInput(f"The {name} has {len(value)} characters; the limit is {limit}.", name)
        return "".join(ch for ch in value if not "\ud800" <= ch <= "\udfff")


def in_turn(texts: list[NormalizedText], roles: list[str | None] | None = None
            ) -> list[tuple[NormalizedText, str | None]]:
    """Each text with the message it answers: the user's for a chat turn's bot reply, else None."""
    if roles is not None and list(roles) == list(ROLES):
        return [(texts[0], None), (texts[1], texts[0])]
    return [(text, None) for text in texts]


def answered_by(moderator: Moderator, settings: Settings) -> dict:
    """What decides an answer besides its texts: the model that gave it and its settings (kept with a key)."""
    return {"model": moderator.name, "template": settings.template.id, "threshold": settings.threshold,
            "intervention": settings.intervention}


def part_of(progress: evaluation.Progress, number: int, parts: int) -> evaluation.Progress:
    """``progress`` for the part ``number`` (from 0) of ``parts`` equal runs, told as a share of them all."""
    return lambda done, total: progress(number * total + done, parts * total)
