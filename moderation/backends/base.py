"""Where the model runs: the protocol the Moderator talks to (a local transformers model, or a vLLM server)."""

from typing import Protocol

from .tokens import PromptTokens

DEFAULT_CONTEXT = 2048
MAX_NEW_TOKENS = 10
"""Generate mode reads at most this many tokens, as the card's users do."""


class Backend(Protocol):
    """Scores a policy's labels after prompts, and generates greedily, for one model."""

    tokens: PromptTokens
    context_length: int

    def label_logprobs(self, prefix: str, requests: list[str], labels: tuple[str, ...]) -> list[list[float]]:
        """log p(`` <label>\\n`` | prefix + request) for each request and each of ``labels``, in their order."""

    def generate(self, prefix: str, requests: list[str]) -> list[str]:
        """The greedy continuation of each prompt, up to (not including) the first newline."""


def context_length(config) -> int:
    """How many tokens a model with this (transformers) config attends to."""
    return getattr(config, "max_position_embeddings", None) or DEFAULT_CONTEXT
