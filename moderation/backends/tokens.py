"""Prompts as token ids, tokenized the one way every backend and the engine agree on.

The template's prefix and each request (`` <text>\\nOutput:``) are tokenized separately and joined, and
each label's continuation `` <label>\\n`` alone: a prompt's ids never depend on how a tokenizer would
merge across the seam, so cached, packed, remote and reference paths all see the same ids.
"""

from functools import lru_cache

PREFIXES_KEPT = 8
"""Templates whose prefix ids are kept (the server's default and a few reviewers' drafts)."""


class PromptTokens:
    """Token ids of prompt pieces, from a tokenizer with ``encode(text, add_special_tokens=False)`` and ``decode``."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.prefix = lru_cache(maxsize=PREFIXES_KEPT)(self._prefix)
        self.continuation_ids = lru_cache(maxsize=PREFIXES_KEPT)(self._continuation_ids)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without special tokens."""
        return self.tokenizer.encode(text, add_special_tokens=False)

    def decode(self, ids: list[int]) -> str:
        """The text of ``ids``."""
        return self.tokenizer.decode(ids)

    def prompt(self, prefix: str, request: str) -> list[int]:
        """Token ids of a whole prompt: the prefix's, then the request's."""
        return [*self.prefix(prefix), *self.encode(request)]

    def _prefix(self, prefix: str) -> tuple[int, ...]:
        return tuple(self.encode(prefix))

    def _continuation_ids(self, continuations: tuple[str, ...]) -> list[list[int]]:
        """The token ids of each continuation, each tokenized alone, in their order."""
        return [self.encode(text) for text in continuations]
