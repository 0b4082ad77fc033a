"""The Moderator: texts in, labels with probabilities out. It runs on a :class:`~moderation.backends.base.Backend`
and imports no torch: the backend holds the model."""


from .backends.base import MAX_NEW_TOKENS, Backend
from .errors import InvalidInput
from .prompt import TRUNCATION_MARKER, NormalizedText, normalize_text
from .results import MODES, ModerationResult
from .settings import Settings
from .templates.base import Query
from .versions import ModelVersion

MIN_TEXT_TOKENS = 32
PROBE = NormalizedText("x")
"""A one-word text, whose prompts measure what a prompt takes besides its text."""


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
        self._marker_length = len(backend.tokens.encode(TRUNCATION_MARKER))

    @property
    def context_length(self) -> int:
        """How many tokens the model attends to."""
        return self.backend.context_length

    def moderate(self, texts: list[str], settings: Settings = Settings(), mode: str = "score",
                 contexts: list[str | None] | None = None) -> list[ModerationResult]:
        """Label each text as ``settings`` say (``contexts``: for a bot's reply, the user's message it answers, which
        a guard format shows the model); several texts share each forward pass.

        Raises InvalidInput for an empty text or an unknown mode.
        """
        if mode not in MODES:
            raise InvalidInput(f"Unknown mode {mode!r}: use 'score' or 'generate'.", "mode")
        template, policy = settings.template, settings.policy
        if mode == "generate" and template.format != "card":
            raise InvalidInput(f"Generate mode is the card format's: a {template.format} model is scored, not read.",
                               "mode")
        if not template.reads_context or contexts is None:
            contexts = [None] * len(texts)
        frame = self._frame(template, mode)
        fitted = [self._fit_turn(normalize_text(text), context, frame) for text, context in zip(texts, contexts,
                                                                                               strict=True)]
        results = []
        for start in range(0, len(fitted), self.batch_size):
            batch = fitted[start : start + self.batch_size]
            asked = [template.queries(text, context) for text, context in batch]
            if mode == "generate":
                outcomes = [(policy.parse_label(said), {}, said) for said in self.backend.generate(
                    template.prefix, [queries[0].request for queries in asked])]
            else:
                outcomes = [(template.choose(scores), scores, None)
                            for scores in map(template.scores, self._logprobs(asked))]
            for (text, _), queries, (label, scores, generated) in zip(batch, asked, outcomes):
                results.append(
                    ModerationResult.decided(
                        text=text,
                        label=label,
                        scores=scores,
                        prompt=template.shown(queries),
                        model=self.name,
                        mode=mode,
                        generated=generated,
                        template=template.id,
                        threshold=settings.threshold,
                        policy=policy,
                    )
                )
        return results

    def _logprobs(self, asked: list[list[Query]]) -> list[list[list[float]]]:
        """The log-likelihoods of every query's continuations, for each text's queries: the queries that share a
        prefix and continuations go to the backend together."""
        groups: dict[tuple[str, tuple[str, ...]], list[tuple[int, int]]] = {}
        for number, queries in enumerate(asked):
            for position, query in enumerate(queries):
                groups.setdefault((query.prefix, query.continuations), []).append((number, position))
        answers = [[None] * len(queries) for queries in asked]
        for (prefix, continuations), members in groups.items():
            requests = [asked[number][position].request for number, position in members]
            for (number, position), logprobs in zip(members, self.backend.logprobs(prefix, requests, continuations)):
                answers[number][position] = logprobs
        return answers

    def check_settings(self, settings: Settings) -> Settings:
        """``settings`` if its policy is the one a trained version serves with and its prompt leaves room for a text
        in the context, else InvalidInput."""
        if self.version is not None and self.version.trained_policy.labels != settings.policy.labels:
            trained = self.version.trained_policy
            raise InvalidInput(f"{self.version.name} was trained in the policy {trained.name!r} "
                               f"({', '.join(trained.labels)}): it serves only with that policy's labels, not with "
                               f"{settings.policy.name!r}'s. Choose that policy, or another version.", "policy")
        if self.version is not None and self.version.format != settings.template.format:
            raise InvalidInput(f"{self.version.name} was trained to answer in the {self.version.format} format, not "
                               f"{settings.template.format}: serve it with format={self.version.format}.", "format")
        used = self._frame(settings.template, "generate" if settings.template.format == "card" else "score")
        if used + MIN_TEXT_TOKENS > self.context_length:
            raise InvalidInput(f"The prompt (its examples, or the policy's categories) takes {used} of the model's "
                               f"{self.context_length} tokens, leaving no room for the text: shorten it.", "examples")
        return settings

    def _frame(self, template, mode: str) -> int:
        """How many tokens a prompt takes besides its text: its longest query's prefix and the rest of its request,
        and the longest continuation read after it (in generate mode, the tokens generated)."""
        tokens = self.backend.tokens
        text = len(tokens.encode(f" {PROBE}"))
        sizes = []
        for context in (None, PROBE):  # a text alone, and a reply with the message it answers
            for query in template.queries(PROBE, context):
                read = MAX_NEW_TOKENS if mode == "generate" else max(map(len, tokens.continuation_ids(
                    query.continuations)))
                sizes.append(len(tokens.prefix(query.prefix)) + len(tokens.encode(query.request)) - text + read)
        return max(sizes)

    def _fit_turn(self, text: NormalizedText, context: str | None, frame: int) -> tuple[NormalizedText, str | None]:
        """The text and the message it answers (normalised as a text is), cut to fit the context together: the
        message to half of the room at most, the text to what is left."""
        if context is None:
            return self._fit(text, frame), None
        context = self._fit(normalize_text(context), (self.context_length + frame) // 2)
        return self._fit(text, frame + len(self.backend.tokens.encode(f" {context}"))), context

    def _fit(self, text: NormalizedText, frame: int) -> NormalizedText:
        """``text``, cut with a visible marker when the whole prompt (``frame`` tokens besides the text) would not fit
        the context."""
        tokens = self.backend.tokens
        budget = self.context_length - frame
        if budget <= self._marker_length:
            raise InvalidInput("The prompt fills the model's context: remove some examples.", "examples")
        ids = tokens.encode(f" {text[: budget * 64]}")
        if len(ids) <= budget and len(text) <= budget * 64:
            return text
        keep = budget - self._marker_length
        while True:
            fitted = tokens.decode(ids[:keep]).strip().rstrip("\ufffd") + TRUNCATION_MARKER
            if len(tokens.encode(f" {fitted}")) <= budget:
                return NormalizedText(fitted)
            keep -= 1
