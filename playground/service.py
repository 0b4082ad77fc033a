"""The playground's one service: everything the page and the REST API do, as plain Python.

It validates and normalises texts once, at its edge; labels them through a micro-batcher (requests that
arrive together share forward passes); records what it showed; takes reviewers' verdicts and curation;
exports them; and holds the server's default :class:`~moderation.settings.Settings`, which a change
replaces whole, after saving it.
"""

import asyncio
import math
import numbers
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from feedback.export import write_export
from feedback.store import FeedbackStore
from feedback.writer import PredictionWriter
from moderation.batcher import MicroBatcher
from moderation.engine import Moderator
from moderation.errors import InvalidInput
from moderation.prompt import NormalizedText, PromptTemplate, normalize_text
from moderation.results import ModerationResult, TurnResult
from moderation.settings import Settings

from .exports import ExportFiles
from .metrics import Metrics


@dataclass(frozen=True)
class Limits:
    """How much one request may ask for, and how many requests may wait at once."""

    max_inputs: int = 64
    max_chars: int = 20_000
    max_waiting: int = 128
    max_note: int = 2_000
    max_name: int = 100


@dataclass(frozen=True)
class Prediction:
    """A result as shown: the model's result and its id in the feedback store (None when not recorded)."""

    result: ModerationResult
    id: int | None


class PlaygroundService:
    """One Moderator and one FeedbackStore behind the page and the API."""

    def __init__(
        self,
        moderator: Moderator,
        store: FeedbackStore,
        export_dir: Path,
        *,
        settings: Settings = Settings(),
        limits: Limits = Limits(),
        max_batch_size: int = 32,
        max_wait: float = 0.005,
    ):
        self.moderator = moderator
        self.store = store
        self.export_dir = Path(export_dir)
        self.exports = ExportFiles(self.export_dir)
        self.limits = limits
        self.batcher = MicroBatcher(self._label, max_batch_size=max_batch_size, max_wait=max_wait)
        self.writer = PredictionWriter(store)
        self.metrics = Metrics()
        self._settings = self.prepare(settings)
        self.metrics.watch(self)

    def close(self) -> None:
        """Commit the predictions still queued for the database, then close it; remove the export files."""
        self.writer.close()
        self.store.close()
        self.exports.close()

    # Settings

    @property
    def settings(self) -> Settings:
        """The server's default settings: what the API and every page without a draft use."""
        return self._settings

    def prepare(self, settings: Settings) -> Settings:
        """``settings`` once checked against the model's context and its template saved: ready to be used."""
        self.moderator.check_settings(settings)
        self.store.save_template(settings.template.id, settings.template.to_json())
        return settings

    def draft(self, examples: list[dict], threshold: str) -> Settings:
        """Prepared settings with these few-shot examples and threshold (and the default's intervention)."""
        template = PromptTemplate.from_examples(examples)
        return self.prepare(Settings(template, threshold, self._settings.intervention))

    def publish(self, settings: Settings) -> Settings:
        """Make ``settings`` the server's default: prepared first, then swapped in by one assignment."""
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
    ) -> list[Prediction]:
        """Label the texts as ``settings`` (the default's when None) say, and record what was shown.

        ``fields`` name the texts in errors (``text``, or ``text 1``, ``text 2``...); ``roles`` give
        each text's side of a chat turn.
        """
        fields = fields or (["text"] if len(texts) == 1 else [f"text {n}" for n in range(1, len(texts) + 1)])
        cleaned = self.clean(texts, fields)
        settings = settings or self._settings
        if mode == "score":
            results = self.batcher.submit(cleaned, settings)
        else:
            results = self._counted(self.moderator.moderate(cleaned, settings, mode=mode))
        roles = roles or [None] * len(results)
        return [Prediction(result, self._record(result, role) if record else None)
                for result, role in zip(results, roles)]

    def check_turn(
        self, user: str, bot: str, *, fields: tuple[str, str] = ("user", "bot"), settings: Settings | None = None,
        record: bool = True,
    ) -> tuple[TurnResult, Prediction, Prediction]:
        """Check a user's message and the bot's reply; the reply is replaced when either side intervenes."""
        settings = settings or self._settings
        shown = self.moderate([user, bot], fields=list(fields), settings=settings, roles=["user", "bot"],
                              record=record)
        turn = TurnResult.of(shown[0].result, shown[1].result, bot, settings.intervention)
        return turn, shown[0], shown[1]

    # The REST API's path: labelled by the batcher while the caller's event loop goes on; predictions are
    # recorded by the writer thread, on disk once their batch commits (moments after the answer).

    async def label_soon(self, texts: list, *, fields: list[str], roles: list[str] | None = None,
                         record: bool = True) -> list[ModerationResult]:
        """The default settings' results for ``texts`` (checked at once: InvalidInput naming the field)."""
        cleaned = self.clean(texts, fields)
        future = self.batcher.enqueue(cleaned, self._settings)
        if record:
            future.add_done_callback(lambda done: self._record_later(done, roles or [None] * len(cleaned)))
        return await asyncio.wrap_future(future)

    async def check_turn_soon(self, user: str, bot: str, *, record: bool = True) -> TurnResult:
        """:meth:`check_turn` on the REST API's path."""
        intervention = self._settings.intervention
        user_result, bot_result = await self.label_soon([user, bot], fields=["user", "bot"], roles=["user", "bot"],
                                                        record=record)
        return TurnResult.of(user_result, bot_result, bot, intervention)

    async def answer_once(self, idempotency_key: str, request: str, answer, *, record: bool = True) -> str:
        """The response to ``request`` made with ``idempotency_key``: the one stored first when the key was
        seen before (nothing is written then), else ``await answer()`` -> (response, results, roles), whose
        predictions (with ``record``) and response are committed together before it is returned."""
        first = await asyncio.to_thread(self.store.recall, idempotency_key, request)
        if first is not None:
            return first
        response, results, roles = await answer()
        predictions = [_prediction(result, role) for result, role in zip(results, roles)] if record else []
        return await asyncio.to_thread(self.store.record_once, idempotency_key, request, response, predictions)

    def _record_later(self, done: Future, roles: list[str | None]) -> None:
        if done.exception() is None:
            self.writer.add([_prediction(result, role) for result, role in zip(done.result(), roles)])

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
        return self.store.verdicts(status=status, label=label, disagree=bool(disagree), search=search or None)

    def set_status(self, verdict_id, status: str) -> dict:
        """Accept or discard a verdict (or make it pending again)."""
        return self.store.set_status(whole_number(verdict_id, "verdict", "Select a verdict in the table first."),
                                     status)

    def relabel(self, verdict_id, label) -> dict:
        """Give a verdict another correct label."""
        if not label:
            raise InvalidInput("Choose the new label first.", "label")
        return self.store.relabel(whole_number(verdict_id, "verdict", "Select a verdict in the table first."), label)

    def export(self, *, format: str = "oig", status=None, since=None) -> tuple[Path, int]:
        """Write the verdicts as a jsonl file in the export folder (removed within the hour); returns its path and
        how many it holds."""
        path = self.exports.new_path(format)
        return path, write_export(self.store, path, format=format, status=status, since=since or None)

    def _label(self, texts: list[NormalizedText], settings: Settings) -> list[ModerationResult]:
        self.metrics.batch_size.observe(len(texts))
        return self._counted(self.moderator.moderate(texts, settings))

    def _counted(self, results: list[ModerationResult]) -> list[ModerationResult]:
        for result in results:
            self.metrics.labels.labels(result.label or "none").inc()
        return results

    def _record(self, result: ModerationResult, role: str | None) -> int:
        return self.store.record_prediction(**_prediction(result, role))

    def _verdict(self, prediction_id, verdict: str, label, note, reviewer, idempotency_key) -> dict:
        prediction_id = whole_number(prediction_id, "prediction",
                                     "Moderate a text first, then give your verdict on its label.")
        return self.store.add_verdict(prediction_id, verdict=verdict, label=label,
                                      note=self._field(note, "note", self.limits.max_note),
                                      reviewer=self._field(reviewer, "reviewer", self.limits.max_name),
                                      idempotency_key=idempotency_key or None)

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


def _prediction(result: ModerationResult, role: str | None) -> dict:
    """The fields the feedback store records of a result shown."""
    return dict(text=result.text, label=result.label, scores=result.scores, prompt=result.prompt, model=result.model,
                template=result.template, mode=result.mode, generated=result.generated, role=role)


def whole_number(value, what: str, missing: str) -> int:
    """``value`` as an id: a whole number (``2`` or ``2.0``), never rounded from ``1.7``; InvalidInput otherwise."""
    if value is None or value == "":
        raise InvalidInput(missing, what)
    whole = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not whole or value != int(value):
        raise InvalidInput(f"No {what} {value!r}: {what} ids are whole numbers.", what)
    return int(value)
