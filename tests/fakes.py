"""A fake backend with fixed log-probabilities, for testing the service, the API and the page without a model.

Its tokens are the text's UTF-8 bytes. In the card's policy a text's label is that of the first rule whose word it
contains (casual when none does); in another policy, the first of its labels that the text names (its least severe
label when it names none). That label gets probability 0.6, each other label the rest, evenly.
"""

import math
import threading

from moderation.backends.tokens import PromptTokens
from moderation.engine import Moderator
from moderation.policy import CARD

RULES = {
    "hurt": "needs intervention",
    "kill": "needs intervention",
    "idiot": "probably needs caution",
    "hate": "possibly needs caution",
    "stormfront": "needs caution",
}
WINNER, OTHER = 0.6, 0.1
NO_LABEL = "gibberish"
"""A text with this word makes generate mode produce no label."""


class ByteTokenizer:
    """Bytes as tokens: a tokenizer for tests that need none of a real one's merges."""

    pad_token_id = 0

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: list[int]) -> str:
        return bytes(ids).decode("utf-8", errors="replace")


def label_for(text: str, labels: tuple[str, ...] = CARD.listed, rules: dict[str, str] = RULES) -> str:
    """The label the fake gives ``text`` among ``labels`` (the card's by default: by ``rules``, a word and the label of
    a text that holds it)."""
    lowered = text.lower()
    if set(labels) == set(CARD.labels):
        return next((label for word, label in rules.items() if word in lowered), CARD.harmless)
    return next((label for label in labels if label.lower() in lowered), labels[0])


def expected_scores(text: str, labels: tuple[str, ...] = CARD.listed,
                    rules: dict[str, str] = RULES) -> dict[str, float]:
    """The probabilities the fake gives ``text``, one per label of ``labels``."""
    other = (1 - WINNER) / (len(labels) - 1)
    winner = label_for(text, labels, rules)
    return {label: WINNER if label == winner else other for label in labels}


class FakeBackend:
    """The :class:`~moderation.backends.base.Backend` protocol with fixed log-probabilities (by ``rules``); ``bug`` is
    raised from inside every call (a planted bug), and every call first waits for ``gate`` to be set, when there is
    one. Each call's (prefix, number of requests) is kept in ``calls``."""

    def __init__(self, *, context_length: int = 2048, bug: Exception | None = None, rules: dict[str, str] = RULES,
                 gate: threading.Event | None = None):
        self.tokens = PromptTokens(ByteTokenizer())
        self.context_length = context_length
        self.memory_bytes = None
        self.bug = bug
        self.rules = rules
        self.gate = gate
        self.calls: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    def logprobs(self, prefix: str, requests: list[str], continuations: tuple[str, ...]) -> list[list[float]]:
        self._called(prefix, requests)
        labels = tuple(continuation.strip() for continuation in continuations)
        return [[math.log(score) for score in expected_scores(request, labels, self.rules).values()]
                for request in requests]

    def generate(self, prefix: str, requests: list[str]) -> list[str]:
        self._called(prefix, requests)
        labels = CARD.listed if prefix.startswith(CARD.header) else _listed(prefix)
        return [" blah blah" if NO_LABEL in request else f" {label_for(request, labels, self.rules)}"
                for request in requests]

    def _called(self, prefix, requests):
        if self.gate is not None:
            self.gate.wait()
        if self.bug is not None:
            raise self.bug
        with self._lock:
            self.calls.append((prefix, len(requests)))


def fake_moderator(name: str = "fake-moderation", **options) -> Moderator:
    """A Moderator named ``name`` on a :class:`FakeBackend` (``options`` go to the backend)."""
    return Moderator(FakeBackend(**options), name)


def _listed(prefix: str) -> tuple[str, ...]:
    """The labels a prompt's header lists (``N. label`` lines before the first blank line)."""
    header = prefix.split("\n\n", 1)[0].splitlines()[1:]
    return tuple(line.split(". ", 1)[1] for line in header)
