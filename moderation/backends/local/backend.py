"""The local backend: a transformers model in this process, on the GPU or the CPU."""

import threading
from collections import OrderedDict

from ...versions import ModelVersion
from ..base import context_length
from ..tokens import PREFIXES_KEPT, PromptTokens
from .adapters import attach_adapter
from .generation import generate_greedy
from .loading import load_model
from .packing import LabelTrie
from .scoring import continuation_logprobs, packed_label_logprobs, prefix_key_values


class LocalBackend:
    """Scores continuations and generates with a causal LM loaded here.

    With ``prefix_cache`` (the default) each template's prefix is run once and its key/value cache
    reused (for the few templates in use at a time); without it every prompt is run whole (the plain,
    reference path). ``version`` is the adapter's version when one is on the model.
    """

    def __init__(self, model, tokenizer, *, prefix_cache: bool = True, version: ModelVersion | None = None):
        self.model = model
        self.version = version
        self.tokens = PromptTokens(tokenizer)
        self.prefix_cache = prefix_cache
        self.context_length = context_length(model.config)
        self.memory_bytes = model.get_memory_footprint()
        self._tries: dict[tuple[str, ...], LabelTrie] = {}
        self._key_values: OrderedDict[str, list] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def load(cls, model: str, *, prefix_cache: bool = True, adapter: str | None = None, base_name: str | None = None,
             **options) -> "LocalBackend":
        """The backend on ``model`` (Hugging Face id or local folder), with the LoRA ``adapter`` folder on it if one
        is given (refused if it was trained on another model, named ``base_name`` in the message); ``options``
        go to :func:`load_model`."""
        weights, tokenizer = load_model(model, **options)
        version = None
        if adapter:
            weights, version = attach_adapter(weights, adapter, base_name or model)
        return cls(weights, tokenizer, prefix_cache=prefix_cache, version=version)

    def logprobs(self, prefix: str, requests: list[str], continuations: tuple[str, ...]) -> list[list[float]]:
        """log p(continuation | prefix + request) for each request and each of ``continuations``, in their order."""
        request_ids = [self.tokens.encode(request) for request in requests]
        with self._lock:
            if self.prefix_cache:
                logprobs = packed_label_logprobs(self.model, self._prefix_key_values(prefix), request_ids,
                                                 self.trie(continuations))
            else:
                prompts = [[*self.tokens.prefix(prefix), *ids] for ids in request_ids]
                logprobs = continuation_logprobs(self.model, prompts, self.tokens.continuation_ids(continuations),
                                                 self.tokens.tokenizer.pad_token_id)
        return logprobs.tolist()

    def generate(self, prefix: str, requests: list[str]) -> list[str]:
        """Greedy continuations of each prompt, up to the first newline."""
        prompts = [self.tokens.prompt(prefix, request) for request in requests]
        with self._lock:
            return generate_greedy(self.model, self.tokens.tokenizer, prompts)

    def trie(self, continuations: tuple[str, ...]) -> LabelTrie:
        """The trie of ``continuations``, built once per set of them (under the lock)."""
        if continuations not in self._tries:
            self._tries[continuations] = LabelTrie.build(self.tokens.continuation_ids(continuations))
        return self._tries[continuations]

    def _prefix_key_values(self, prefix: str):
        """The prefix's key/value cache, computed once per template while it stays in use (under the lock)."""
        if prefix in self._key_values:
            self._key_values.move_to_end(prefix)
        else:
            self._key_values[prefix] = prefix_key_values(self.model, list(self.tokens.prefix(prefix)))
            if len(self._key_values) > PREFIXES_KEPT:
                self._key_values.popitem(last=False)
        return self._key_values[prefix]
