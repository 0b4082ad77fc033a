"""The Moderator: texts in, labels with probabilities out."""

import threading
from dataclasses import asdict, dataclass
import torch

from .generation import MAX_NEW_TOKENS, generate_greedy
from .labels import DEFAULT_THRESHOLD, LABELS, check_threshold, intervenes, is_flagged, parse_label
from .loading import load_model
from .prompt import OUTPUT, TRUNCATION_MARKER, PromptTemplate, normalize_text
from .packing import LabelTrie
from .scoring import continuation_logprobs, packed_label_logprobs, prefix_key_values

MODES = ("score", "generate")


@dataclass
class ModerationResult:
    """What the model says of one text.

    ``text`` is the text as the model saw it (normalised, and cut with a marker if it was too long);
    ``scores`` maps each label to its probability (empty in generate mode); ``label`` is None only
    when generate mode produced no label, and ``generated`` then holds what it produced.
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

    def to_dict(self) -> dict:
        """The result as a plain dict (for JSON)."""
        return asdict(self)


class Moderator:
    """Labels texts with a causal language model prompted with a :class:`PromptTemplate`."""

    def __init__(
        self,
        model,
        tokenizer,
        name: str,
        *,
        template: PromptTemplate | None = None,
        threshold: str = DEFAULT_THRESHOLD,
        batch_size: int = 32,
        prefix_cache: bool = True,
        demo: bool = False,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.template = template or PromptTemplate()
        self.threshold = check_threshold(threshold)
        self.batch_size = batch_size
        self.prefix_cache = prefix_cache
        self.demo = demo
        self._label_ids = [self._encode(f" {label}\n") for label in LABELS]
        self.label_trie = LabelTrie.build(self._label_ids)
        self._output_ids = self._encode(OUTPUT)
        self._marker_ids = self._encode(TRUNCATION_MARKER)
        self._prefix: tuple[str, list[int], list | None] = ("", [], None)
        self._model_lock = threading.Lock()

    @classmethod
    def load(
        cls, model: str, revision: str | None = None, dtype="auto", device_map="auto", name=None, **options
    ):
        """A Moderator on ``model`` (Hugging Face id or local folder), loaded with transformers + accelerate.

        ``name`` is what results report as their model (``model`` itself by default).
        """
        loaded, tokenizer = load_model(model, revision=revision, dtype=dtype, device_map=device_map)
        return cls(loaded, tokenizer, name or model, **options)

    @property
    def context_length(self) -> int:
        """How many tokens the model attends to."""
        return getattr(self.model.config, "max_position_embeddings", None) or 2048

    def moderate(self, texts: list[str], mode: str = "score") -> list[ModerationResult]:
        """Label each text; several texts share each forward pass.

        Raises ValueError for an empty text or an unknown mode.
        """
        if mode not in MODES:
            raise ValueError(f"Unknown mode {mode!r}: use 'score' or 'generate'.")
        if isinstance(texts, str):
            texts = [texts]
        template, threshold = self.template, self.threshold
        prefix_ids = self._prefix_ids(template.prefix)
        fitted = [self._fit(normalize_text(text), len(prefix_ids), mode) for text in texts]
        results = []
        for start in range(0, len(fitted), self.batch_size):
            batch = fitted[start : start + self.batch_size]
            requests = [self.request_ids(text) for text in batch]
            with self._model_lock:
                if mode == "generate":
                    outcomes = self._generate([prefix_ids + request for request in requests])
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
                    )
                )
        return results

    def prompt_ids(self, text: str) -> list[int]:
        """The token ids of the prompt for ``text``, tokenized exactly as scoring tokenizes it."""
        return self._prefix_ids(self.template.prefix) + self.request_ids(normalize_text(text))

    def request_ids(self, text: str) -> list[int]:
        """Token ids of one text's part of the prompt (`` <text>\\nOutput:``), text already normalised."""
        return self._encode(f" {text}") + self._output_ids

    def _score(self, prefix: str, requests: list[list[int]]):
        if self.prefix_cache:
            logprobs = packed_label_logprobs(self.model, self._prefix_key_values(prefix), requests, self.label_trie)
        else:
            prompts = [self._prefix_ids(prefix) + request for request in requests]
            logprobs = continuation_logprobs(self.model, prompts, self._label_ids, self.tokenizer.pad_token_id)
        probabilities = torch.softmax(logprobs, dim=-1)
        outcomes = []
        for row in probabilities.tolist():
            scores = dict(zip(LABELS, row))
            outcomes.append((max(scores, key=scores.get), scores, None))
        return outcomes

    def _generate(self, prompts):
        generated = generate_greedy(self.model, self.tokenizer, prompts)
        return [(parse_label(text), {}, text) for text in generated]

    def _fit(self, text: str, prefix_length: int, mode: str) -> str:
        """``text``, cut with a visible marker when the whole prompt would not fit the context."""
        continuation = MAX_NEW_TOKENS if mode == "generate" else max(map(len, self._label_ids))
        budget = self.context_length - prefix_length - len(self._output_ids) - continuation
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

    def _prefix_ids(self, prefix: str) -> list[int]:
        if self._prefix[0] != prefix:
            self._prefix = (prefix, self._encode(prefix), None)
        return self._prefix[1]

    def _prefix_key_values(self, prefix: str):
        """The prefix's key/value cache, computed once per template (under the model lock)."""
        ids = self._prefix_ids(prefix)
        if self._prefix[2] is None:
            self._prefix = (prefix, ids, prefix_key_values(self.model, ids))
        return self._prefix[2]

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]
