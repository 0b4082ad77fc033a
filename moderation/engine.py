"""The Moderator: texts in, labels with probabilities out. It runs on a :class:`~moderation.backends.base.Backend`
and imports no torch: the backend holds the model."""

import math

from .backends.base import MAX_NEW_TOKENS, Backend
from .errors import InvalidInput
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
        template, policy = settings.template, settings.policy
        labels = policy.listed
        continuation = MAX_NEW_TOKENS if mode == "generate" else max(map(len, self.backend.tokens.label_ids(labels)))
        fitted = [self._fit(normalize_text(text), template.prefix, continuation) for text in texts]
        results = []
        for start in range(0, len(fitted), self.batch_size):
            batch = fitted[start : start + self.batch_size]
            requests = [template.request(text) for text in batch]
            if mode == "generate":
                outcomes = [(policy.parse_label(text), {}, text)
                            for text in self.backend.generate(template.prefix, requests)]
            else:
                outcomes = [(max(scores, key=scores.get), scores, None)
                            for scores in (probabilities(logprobs, labels) for logprobs
                                           in self.backend.label_logprobs(template.prefix, requests, labels))]
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
                        policy=policy,
                    )
                )
        return results

    def check_settings(self, settings: Settings) -> Settings:
        """``settings`` if its policy is the one a trained version serves with and its examples leave room for a
        text in the context, else InvalidInput."""
        if self.version is not None and self.version.trained_policy.labels != settings.policy.labels:
            trained = self.version.trained_policy
            raise InvalidInput(f"{self.version.name} was trained in the policy {trained.name!r} "
                               f"({', '.join(trained.labels)}): it serves only with that policy's labels, not with "
                               f"{settings.policy.name!r}'s. Choose that policy, or another version.", "policy")
        used = len(self.backend.tokens.prefix(settings.template.prefix)) + self._output_length + MAX_NEW_TOKENS
        if used + MIN_TEXT_TOKENS > self.context_length:
            raise InvalidInput(f"The examples take {used} of the model's {self.context_length} tokens, leaving no "
                               "room for the text: shorten or remove some.", "examples")
        return settings

    def _fit(self, text: NormalizedText, prefix: str, continuation: int) -> NormalizedText:
        """``text``, cut with a visible marker when the whole prompt (and a ``continuation`` of that many tokens)
        would not fit the context."""
        tokens = self.backend.tokens
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


def probabilities(logprobs: list[float], labels: tuple[str, ...]) -> dict[str, float]:
    """Each label's probability: the softmax of the labels' log-likelihoods (given in the order of ``labels``)."""
    top = max(logprobs)
    weights = [math.exp(value - top) for value in logprobs]
    total = sum(weights)
    return {label: weight / total for label, weight in zip(labels, weights, strict=True)}
