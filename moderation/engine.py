"""The Moderator: texts in, labels with probabilities out. It runs on a :class:`~moderation.backends.base.Backend`
and imports no torch: the backend holds the model."""

import math

from .backends.base import MAX_NEW_TOKENS, Backend
from .errors import InvalidInput
from .labels import LABELS, parse_label
from .prompt import OUTPUT, TRUNCATION_MARKER, NormalizedText, normalize_text
from .results import MODES, ModerationResult
from .settings import Settings
from .versions import ModelVersion

MIN_TEXT_TOKENS = 32


class Moderator:
    """Labels texts with a causal language model prompted as :class:`~moderation.settings.Settings` say.

    The model runs in a backend: :class:`~moderation.backends.local.backend.LocalBackend` (transformers, here) or
    :class:`~moderation.backends.remote.RemoteBackend` (a vLLM server); both score the same token ids the same way.
    ``name`` is what results report as their model: the version's name when a trained ``version`` (an
    adapter) serves. ``source`` is what loads the base model again here (None when it runs elsewhere).
    """

    def __init__(self, backend: Backend, name: str, *, batch_size: int = 32, demo: bool = False,
                 version: ModelVersion | None = None, source: str | None = None):
        self.backend = backend
        self.name = name
        self.batch_size = batch_size
        self.demo = demo
        self.load_seconds: float | None = None
        """How long loading the model took, when it was loaded through :func:`~moderation.loader.open_moderator`."""
        self.version = version
        self.source = source
        tokens = backend.tokens
        self._output_length = len(tokens.encode(OUTPUT))
        self._marker_length = len(tokens.encode(TRUNCATION_MARKER))
        self._label_length = max(map(len, tokens.label_ids))

    @property
    def context_length(self) -> int:
        """How many tokens the model attends to."""
        return self.backend.context_length

    def moderate(
        self, texts: list[str], settings: Settings = Settings(), mode: str = "score"
    ) -> list[ModerationResult]:
        """Label each text as ``settings`` say; several texts share each forward pass.

        Raises InvalidInput for an empty text or an unknown mode.
        """
        if mode not in MODES:
            raise InvalidInput(f"Unknown mode {mode!r}: use 'score' or 'generate'.", "mode")
        template = settings.template
        fitted = [self._fit(normalize_text(text), template.prefix, mode) for text in texts]
        results = []
        for start in range(0, len(fitted), self.batch_size):
            batch = fitted[start : start + self.batch_size]
            requests = [template.request(text) for text in batch]
            if mode == "generate":
                outcomes = [(parse_label(text), {}, text) for text in self.backend.generate(template.prefix, requests)]
            else:
                outcomes = [(max(scores, key=scores.get), scores, None)
                            for scores in map(probabilities, self.backend.label_logprobs(template.prefix, requests))]
            for text, request, (label, scores, generated) in zip(batch, requests, outcomes):
                results.append(
                    ModerationResult.decided(
                        text=text,
                        label=label,
                        scores=scores,
                        prompt=template.prefix + request,
                        model=self.name,
                        mode=mode,
                        generated=generated,
                        template=template.id,
                        threshold=settings.threshold,
                    )
                )
        return results

    def check_settings(self, settings: Settings) -> Settings:
        """``settings`` if its examples leave room for a text in the context, else InvalidInput."""
        used = len(self.backend.tokens.prefix(settings.template.prefix)) + self._output_length + MAX_NEW_TOKENS
        if used + MIN_TEXT_TOKENS > self.context_length:
            raise InvalidInput(f"The examples take {used} of the model's {self.context_length} tokens, leaving no "
                               "room for the text: shorten or remove some.", "examples")
        return settings

    def _fit(self, text: NormalizedText, prefix: str, mode: str) -> NormalizedText:
        """``text``, cut with a visible marker when the whole prompt would not fit the context."""
        tokens = self.backend.tokens
        continuation = MAX_NEW_TOKENS if mode == "generate" else self._label_length
        budget = self.context_length - len(tokens.prefix(prefix)) - self._output_length - continuation
        if budget <= self._marker_length:
            raise InvalidInput("The few-shot examples fill the model's context: remove some examples.", "examples")
        ids = tokens.encode(f" {text[: budget * 64]}")
        if len(ids) <= budget and len(text) <= budget * 64:
            return text
        keep = budget - self._marker_length
        while True:
            fitted = tokens.decode(ids[:keep]).strip().rstrip("\ufffd") + TRUNCATION_MARKER
            if len(tokens.encode(f" {fitted}")) <= budget:
                return NormalizedText(fitted)
            keep -= 1


def probabilities(logprobs: list[float]) -> dict[str, float]:
    """Each label's probability: the softmax of the five labels' log-likelihoods."""
    top = max(logprobs)
    weights = [math.exp(value - top) for value in logprobs]
    total = sum(weights)
    return {label: weight / total for label, weight in zip(LABELS, weights)}
