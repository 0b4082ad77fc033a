"""The local backend: a transformers model in this process, on the GPU or the CPU."""

import threading

from .generation import generate_greedy
from .labels import LABELS
from .packing import LabelTrie
from .scoring import continuation_logprobs, packed_label_logprobs, prefix_key_values


def encode(tokenizer, text: str) -> list[int]:
    """Token ids of ``text`` without special tokens (prompt pieces are tokenized one by one)."""
    return tokenizer(text, add_special_tokens=False)["input_ids"]


class LocalBackend:
    """Scores labels and generates with a causal LM loaded here.

    With ``prefix_cache`` (the default) the prompt's shared prefix is run once per template and its
    key/value cache reused; without it every prompt is run whole (the plain, reference path).
    """

    def __init__(self, model, tokenizer, *, prefix_cache: bool = True):
        self.model = model
        self.tokenizer = tokenizer
        self.prefix_cache = prefix_cache
        self.label_ids = [encode(tokenizer, f" {label}\n") for label in LABELS]
        self.label_trie = LabelTrie.build(self.label_ids)
        self._prefix: tuple[str, list[int], list | None] = ("", [], None)
        self._lock = threading.Lock()

    @property
    def context_length(self) -> int:
        """How many tokens the model attends to."""
        return getattr(self.model.config, "max_position_embeddings", None) or 2048

    def prompt_ids(self, prefix: str, request: str) -> list[int]:
        """Token ids of a prompt: the prefix and the request (`` <text>\\nOutput:``), each tokenized alone."""
        return self._prefix_ids(prefix) + encode(self.tokenizer, request)

    def label_logprobs(self, prefix: str, requests: list[str]) -> list[list[float]]:
        """log p(`` <label>\\n`` | prefix + request) for each request and each of the five labels."""
        request_ids = [encode(self.tokenizer, request) for request in requests]
        with self._lock:
            if self.prefix_cache:
                logprobs = packed_label_logprobs(self.model, self._prefix_key_values(prefix), request_ids, self.label_trie)
            else:
                prompts = [self._prefix_ids(prefix) + ids for ids in request_ids]
                logprobs = continuation_logprobs(self.model, prompts, self.label_ids, self.tokenizer.pad_token_id)
        return logprobs.tolist()

    def generate(self, prefix: str, requests: list[str]) -> list[str]:
        """Greedy continuations of each prompt, up to the first newline."""
        with self._lock:
            return generate_greedy(self.model, self.tokenizer, [self.prompt_ids(prefix, r) for r in requests])

    def _prefix_ids(self, prefix: str) -> list[int]:
        if self._prefix[0] != prefix:
            self._prefix = (prefix, encode(self.tokenizer, prefix), None)
        return self._prefix[1]

    def _prefix_key_values(self, prefix: str):
        """The prefix's key/value cache, computed once per template (called under the lock)."""
        ids = self._prefix_ids(prefix)
        if self._prefix[2] is None:
            self._prefix = (prefix, ids, prefix_key_values(self.model, ids))
        return self._prefix[2]
