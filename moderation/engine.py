"""The Moderator: texts in, labels with probabilities out."""

from dataclasses import asdict, dataclass

import torch

from .generation import MAX_NEW_TOKENS
from .labels import DEFAULT_THRESHOLD, LABELS, check_threshold, intervenes, is_flagged, parse_label
from .loading import load_model
from .local import LocalBackend, encode
from .prompt import OUTPUT, TRUNCATION_MARKER, PromptTemplate, normalize_text

MODES = ("score", "generate")
MIN_TEXT_TOKENS = 32


@dataclass
class ModerationResult:
    """What the model says of one text.

    ``text`` is the text as the model saw it (normalised, and cut with a marker if it was too long);
    ``scores`` maps each label to its probability (empty in generate mode); ``label`` is None only
    when generate mode produced no label, and ``generated`` then holds what it produced;
    ``template`` is the id of the prompt template used.
    """

    text: str
    label: str | None
    scores: dict[str, float]
    flagged: bool
    intervene: bool
    prompt: str
    model: str
    mode: str = "score"
    generated: str | None = None
    template: str | None = None

    def to_dict(self) -> dict:
        """The result as a plain dict (for JSON)."""
        return asdict(self)


DEFAULT_INTERVENTION = "Sorry, I can't help with that. Let's talk about something else."
ROLES = ("user", "bot")


@dataclass
class TurnResult:
    """A chat turn checked on both sides: the verdicts, and the reply the user gets to see."""

    user: ModerationResult
    bot: ModerationResult
    reply: str
    intervened: bool
    triggered_by: list[str]

    @classmethod
    def of(cls, user: ModerationResult, bot: ModerationResult, bot_reply: str, intervention: str) -> "TurnResult":
        """The bot's reply, or ``intervention`` when either side reaches the intervention threshold."""
        triggered = [role for role, result in zip(ROLES, (user, bot)) if result.intervene]
        return cls(user, bot, intervention if triggered else bot_reply, bool(triggered), triggered)

    def to_dict(self) -> dict:
        """The turn as a plain dict (for JSON)."""
        return asdict(self)


class Moderator:
    """Labels texts with a causal language model prompted with a :class:`PromptTemplate`.

    The model runs in a backend: :class:`~moderation.local.LocalBackend` (transformers, here) or a
    remote server; both score the same prompts the same way.
    """

    def __init__(
        self,
        backend,
        name: str,
        *,
        template: PromptTemplate | None = None,
        threshold: str = DEFAULT_THRESHOLD,
        batch_size: int = 32,
        intervention: str = DEFAULT_INTERVENTION,
        demo: bool = False,
    ):
        self.backend = backend
        self.name = name
        self.template = template or PromptTemplate()
        self.threshold = check_threshold(threshold)
        self.batch_size = batch_size
        self.intervention = intervention
        self.demo = demo
        self._output_ids = self._encode(OUTPUT)
        self._marker_ids = self._encode(TRUNCATION_MARKER)
        self._label_length = max(len(self._encode(f" {label}\n")) for label in LABELS)
        self._prefix_length = ("", 0)

    @classmethod
    def load(
        cls,
        model: str,
        revision: str | None = None,
        dtype="auto",
        device_map="auto",
        *,
        name: str | None = None,
        prefix_cache: bool = True,
        **options,
    ):
        """A Moderator on ``model`` (Hugging Face id or local folder), loaded with transformers + accelerate.

        ``name`` is what results report as their model (``model`` itself by default).
        """
        loaded, tokenizer = load_model(model, revision=revision, dtype=dtype, device_map=device_map)
        return cls(LocalBackend(loaded, tokenizer, prefix_cache=prefix_cache), name or model, **options)

    @property
    def tokenizer(self):
        """The model's tokenizer."""
        return self.backend.tokenizer

    @property
    def context_length(self) -> int:
        """How many tokens the model attends to."""
        return self.backend.context_length

    def moderate(self, texts: list[str], mode: str = "score") -> list[ModerationResult]:
        """Label each text; several texts share each forward pass.

        Raises ValueError for an empty text or an unknown mode.
        """
        if mode not in MODES:
            raise ValueError(f"Unknown mode {mode!r}: use 'score' or 'generate'.")
        if isinstance(texts, str):
            texts = [texts]
        template, threshold = self.template, self.threshold
        fitted = [self._fit(normalize_text(text), template.prefix, mode) for text in texts]
        results = []
        for start in range(0, len(fitted), self.batch_size):
            batch = fitted[start : start + self.batch_size]
            requests = [template.request(text) for text in batch]
            if mode == "generate":
                outcomes = self._generate(template.prefix, requests)
            else:
                outcomes = self._score(template.prefix, requests)
            for text, (label, scores, generated) in zip(batch, outcomes):
                results.append(
                    ModerationResult(
                        text=text,
                        label=label,
                        scores=scores,
                        flagged=label is not None and is_flagged(label),
                        intervene=label is not None and intervenes(label, threshold),
                        prompt=template.assemble(text),
                        model=self.name,
                        mode=mode,
                        generated=generated,
                        template=template.id,
                    )
                )
        return results

    def check_template(self, template: PromptTemplate) -> PromptTemplate:
        """``template`` if its examples leave room for a text in the context, else ValueError."""
        used = len(self._encode(template.prefix)) + len(self._output_ids) + MAX_NEW_TOKENS
        if used + MIN_TEXT_TOKENS > self.context_length:
            raise ValueError(f"The examples take {used} of the model's {self.context_length} tokens, leaving no "
                             "room for the text: shorten or remove some.")
        return template

    def moderate_turn(self, user_message: str, bot_reply: str) -> TurnResult:
        """Check a user's message and the bot's reply together; replace the reply if either intervenes."""
        user, bot = self.moderate([user_message, bot_reply])
        return TurnResult.of(user, bot, bot_reply, self.intervention)

    def prompt_ids(self, text: str) -> list[int]:
        """The token ids of the prompt for ``text``, tokenized exactly as scoring tokenizes it."""
        template = self.template
        return self._encode(template.prefix) + self._encode(template.request(text))

    def _score(self, prefix: str, requests: list[str]):
        probabilities = torch.softmax(torch.tensor(self.backend.label_logprobs(prefix, requests)), dim=-1)
        outcomes = []
        for row in probabilities.tolist():
            scores = dict(zip(LABELS, row))
            outcomes.append((max(scores, key=scores.get), scores, None))
        return outcomes

    def _generate(self, prefix: str, requests: list[str]):
        return [(parse_label(text), {}, text) for text in self.backend.generate(prefix, requests)]

    def _fit(self, text: str, prefix: str, mode: str) -> str:
        """``text``, cut with a visible marker when the whole prompt would not fit the context."""
        if self._prefix_length[0] != prefix:
            self._prefix_length = (prefix, len(self._encode(prefix)))
        continuation = MAX_NEW_TOKENS if mode == "generate" else self._label_length
        budget = self.context_length - self._prefix_length[1] - len(self._output_ids) - continuation
        if budget <= len(self._marker_ids):
            raise ValueError("The few-shot examples fill the model's context: remove some examples.")
        ids = self._encode(f" {text[: budget * 64]}")
        if len(ids) <= budget and len(text) <= budget * 64:
            return text
        keep = budget - len(self._marker_ids)
        while True:
            fitted = self.tokenizer.decode(ids[:keep]).strip().rstrip("\ufffd") + TRUNCATION_MARKER
            if len(self._encode(f" {fitted}")) <= budget:
                return fitted
            keep -= 1

    def _encode(self, text: str) -> list[int]:
        return encode(self.tokenizer, text)
