"""Where the model runs: the protocol the Moderator talks to (a local transformers model, or a vLLM server)."""

from typing import Protocol

from .tokens import PromptTokens

DEFAULT_CONTEXT = 2048
MAX_NEW_TOKENS = 10
"""Generate mode reads at most this many tokens, as the card's users do."""


class Backend(Protocol):
    """Scores continuations after prompts, and generates greedily, for one model."""

    tokens: PromptTokens
    context_length: int
    memory_bytes: int | None
    """The memory the model's weights take here (None when it runs elsewhere)."""

    def logprobs(self, prefix: str, requests: list[str], continuations: tuple[str, ...]) -> list[list[float]]:
        """log p(continuation | prefix + request) for each request and each of ``continuations``, in their order:
        the sum of the continuation's token log-probabilities (a template says what the continuations are)."""

    def generate(self, prefix: str, requests: list[str]) -> list[str]:
        """The greedy continuation of each prompt, up to (not including) the first newline."""


def context_length(config) -> int:
    """How many tokens a model with this (transformers) config attends to."""
    return getattr(config, "max_position_embeddings", None) or DEFAULT_CONTEXT
