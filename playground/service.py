"""The playground's one service: everything the page and the REST API do, as plain Python.

It validates and normalises texts once, at its edge; labels them through a micro-batcher (requests that
arrive together share forward passes); records what it showed; takes reviewers' verdicts and curation;
exports them; holds the server's default :class:`~moderation.settings.Settings`, which a change
replaces whole, after saving it; and retrains the model on the accepted verdicts, in a process of its own,
serving a trained version (or rolling back) by replacing the Moderator whole, once it is loaded.
"""

import math
import numbers
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from feedback.export import write_export
from feedback.store import FeedbackStore
from moderation.batcher import MicroBatcher
from moderation.engine import Moderator
from moderation.errors import InvalidInput
from moderation.models import open_moderator
from moderation.prompt import NormalizedText, PromptTemplate, normalize_text
from moderation.records import read_labelled
from moderation.results import ModerationResult, TurnResult
from moderation.settings import Settings
from moderation.training_data import HELD_OUT_FRACTION, stratified_split

from .jobs import Job, JobRunner


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
        versions_dir: Path | None = None,
    ):
        self.moderator = moderator
        self.store = store
        self.export_dir = Path(export_dir)
        self.limits = limits
        self.jobs = JobRunner(Path(versions_dir) if versions_dir else self.export_dir / "versions")
        self._previous: Moderator | None = None
        self.batcher = MicroBatcher(self._label, max_batch_size=max_batch_size, max_wait=max_wait)
        self._settings = self.prepare(settings)

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
            results = self.moderator.moderate(cleaned, settings, mode=mode)
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

    # Verdicts and curation

    def confirm(self, prediction_id, *, note: str = "", reviewer: str) -> dict:
        """Record that the model's label is right; returns the stored verdict once it is on disk."""
        return self._verdict(prediction_id, "right", None, note, reviewer)

    def flag(self, prediction_id, label, *, note: str = "", reviewer: str) -> dict:
        """Record that the model's label is wrong and ``label`` is right; returns the stored verdict once on disk."""
        if not label:
            raise InvalidInput("Choose the correct label before saving a correction.", "label")
        return self._verdict(prediction_id, "wrong", label, note, reviewer)

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
        """Write the verdicts as a jsonl file in the export folder; returns its path and how many it holds."""
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        path = self.export_dir / f"feedback-{format}-{stamp}.jsonl"
        return path, write_export(self.store, path, format=format, status=status, since=since or None)

    # Retraining and versions

    def retrain(self) -> Job:
        """Start fine-tuning the base model on the accepted verdicts (with LoRA, the seed set replayed, a
        label-stratified share held out), in a process of its own; InvalidInput when it cannot start."""
        source = self.moderator.source
        if source is None:
            raise InvalidInput("The model runs on a vLLM server, not here: retrain it with python -m moderation.train "
                               "on a GPU machine, and serve the version with --adapter.")
        self.jobs.check_idle()
        name = "retrain-" + datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        self.jobs.folder.mkdir(parents=True, exist_ok=True)
        data = self.jobs.folder / f"{name}.jsonl"
        try:
            if not write_export(self.store, data, format="oig", status="accepted"):
                raise InvalidInput("No accepted verdicts to train on: accept some in the Review tab first.")
            stratified_split(read_labelled(data), HELD_OUT_FRACTION)
        except InvalidInput:
            data.unlink(missing_ok=True)
            raise
        return self.jobs.start(name, ["--model", source, "--data", str(data), "--lora"])

    def training(self) -> Job | None:
        """The latest retraining job as it stands (None before the first)."""
        return self.jobs.status()

    def stop_training(self) -> Job:
        """Stop the running retraining job; nothing it wrote is served or kept."""
        return self.jobs.stop()

    def versions(self) -> list[tuple[str, str]]:
        """The versions trained here, newest first: (folder name, version name)."""
        return [(path.name, version.name) for path, version in self.jobs.versions()]

    def serve_version(self, name: str) -> Moderator:
        """Serve the version trained here in folder ``name``: loaded and checked first, then swapped in by one
        assignment; the Moderator it replaces is kept for :meth:`rollback`."""
        found = dict(self.jobs.versions())
        folder = next((path for path in found if path.name == name), None)
        if folder is None:
            raise InvalidInput(f"No trained version {name!r}: choose one from the list.", "version")
        if self.moderator.source is None:
            raise InvalidInput("The model runs on a vLLM server: serve a version by starting the app with --adapter.")
        if found[folder].kind == "lora":
            moderator = open_moderator(self.moderator.source, adapter=str(folder), progress=False)
        else:
            moderator = open_moderator(str(folder), progress=False)
        moderator.check_settings(self._settings)
        self._previous, self.moderator = self.moderator, moderator
        return moderator

    def rollback(self) -> Moderator:
        """Serve again what was served before the last :meth:`serve_version`."""
        if self._previous is None:
            raise InvalidInput("Nothing to roll back to: no other version was served since the server started.")
        self.moderator, self._previous = self._previous, None
        return self.moderator

    def _label(self, texts: list[NormalizedText], settings: Settings) -> list[ModerationResult]:
        return self.moderator.moderate(texts, settings)

    def _record(self, result: ModerationResult, role: str | None) -> int:
        return self.store.record_prediction(
            text=result.text, label=result.label, scores=result.scores, prompt=result.prompt, model=result.model,
            template=result.template, mode=result.mode, generated=result.generated, role=role,
        )

    def _verdict(self, prediction_id, verdict: str, label, note, reviewer) -> dict:
        prediction_id = whole_number(prediction_id, "prediction",
                                     "Moderate a text first, then give your verdict on its label.")
        return self.store.add_verdict(prediction_id, verdict=verdict, label=label,
                                      note=self._field(note, "note", self.limits.max_note),
                                      reviewer=self._field(reviewer, "reviewer", self.limits.max_name))

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


def whole_number(value, what: str, missing: str) -> int:
    """``value`` as an id: a whole number (``2`` or ``2.0``), never rounded from ``1.7``; InvalidInput otherwise."""
    if value is None or value == "":
        raise InvalidInput(missing, what)
    whole = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not whole or value != int(value):
        raise InvalidInput(f"No {what} {value!r}: {what} ids are whole numbers.", what)
    return int(value)
