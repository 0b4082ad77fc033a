"""A fake backend with fixed log-probabilities, for testing the service, the API and the page without a model.

Its tokens are the text's UTF-8 bytes; a text's label is that of the first rule whose word it contains
(casual when none does), with probability 0.6 and 0.1 for each other label.
"""

import math
import threading

from moderation.backends.tokens import PromptTokens
from moderation.engine import Moderator
from moderation.labels import LABELS

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


def label_for(text: str, rules: dict[str, str] = RULES) -> str:
    """The label the fake gives ``text`` (by ``rules``: a word, and the label of a text that holds it)."""
    lowered = text.lower()
    return next((label for word, label in rules.items() if word in lowered), "casual")


def expected_scores(text: str, rules: dict[str, str] = RULES) -> dict[str, float]:
    """The five probabilities the fake gives ``text``."""
    return {label: WINNER if label == label_for(text, rules) else OTHER for label in LABELS}


class FakeBackend:
    """The :class:`~moderation.backends.base.Backend` protocol with fixed log-probabilities (by ``rules``); ``bug`` is
    raised from inside every call (a planted bug), and every call first waits for ``gate`` to be set, when there is
    one. Each call's (prefix, number of requests) is kept in ``calls``."""

    def __init__(self, *, context_length: int = 2048, bug: Exception | None = None, rules: dict[str, str] = RULES,
                 gate: threading.Event | None = None):
        self.tokens = PromptTokens(ByteTokenizer())
        self.context_length = context_length
        self.bug = bug
        self.rules = rules
        self.gate = gate
        self.calls: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    def label_logprobs(self, prefix: str, requests: list[str]) -> list[list[float]]:
        self._called(prefix, requests)
        return [[math.log(score) for score in expected_scores(request, self.rules).values()] for request in requests]

    def generate(self, prefix: str, requests: list[str]) -> list[str]:
        self._called(prefix, requests)
        return [" blah blah" if NO_LABEL in request else f" {label_for(request, self.rules)}" for request in requests]

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
