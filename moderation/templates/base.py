"""What every prompt format shares: a query (a prompt and the continuations read after it), and a template (a
format bound to a policy) that asks queries about a text and turns their log-likelihoods into label probabilities."""

import hashlib
import json
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cached_property

from ..policy import Policy
from ..prompt import NormalizedText, normalize_text


@dataclass(frozen=True)
class Query:
    """One prompt: ``prefix`` (shared by many texts: its key/value cache is computed once) then ``request`` (this
    text's part), and the ``continuations`` whose log-likelihoods the model is asked for."""

    prefix: str
    request: str
    continuations: tuple[str, ...]

    @property
    def prompt(self) -> str:
        """The whole prompt."""
        return self.prefix + self.request


class Template(ABC):
    """A prompt format bound to a ``policy``."""

    format: str
    """The format's name: ``card``, ``llama-guard`` or ``yes-no``."""
    policy: Policy
    reads_context: bool = True
    """Whether the prompt shows the user's message a bot's reply answers."""

    @abstractmethod
    def queries(self, text: NormalizedText, context: str | None = None) -> list[Query]:
        """The prompts the model is asked about ``text`` (``context``: the user's message a bot's reply answers)."""

    @abstractmethod
    def scores(self, logprobs: list[list[float]]) -> dict[str, float]:
        """Each label's probability, from the log-likelihoods of each query's continuations (in their order)."""

    @abstractmethod
    def answers(self, label: str) -> tuple[str | None, ...]:
        """What the model should answer to each query when ``label`` is right (None: a query it is not asked then):
        the targets a fine-tune learns."""

    def choose(self, scores: dict[str, float]) -> str:
        """The label these scores give: the most probable one."""
        return max(scores, key=scores.get)

    def shown(self, queries: list[Query]) -> str:
        """What the page shows of a text's queries: their prompts (several separated by a line of dashes)."""
        return SEPARATOR.join(query.prompt for query in queries)

    def assemble(self, text: str, context: str | None = None) -> str:
        """The exact prompts for ``text`` (and the message it answers), as shown."""
        return self.shown(self.queries(normalize_text(text), None if context is None else normalize_text(context)))

    def layout(self) -> str:
        """The prompts with a placeholder where each text goes (what the Prompt tab previews)."""
        return self.assemble("<text>")

    @cached_property
    def id(self) -> str:
        """A short, stable hash of the template's content: the version of the policy a prediction was made with."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:12]

    def to_json(self) -> str:
        """The template as stored: its format and its policy."""
        return json.dumps({"format": self.format, "policy": self.policy.fields()}, ensure_ascii=False)


SEPARATOR = "\n\n-----\n\n"
"""Between the prompts of one text, where a format asks several (shown, never sent)."""


def softmax(values: list[float]) -> list[float]:
    """Probabilities from log-likelihoods (their softmax)."""
    top = max(values)
    weights = [math.exp(value - top) for value in values]
    total = sum(weights)
    return [weight / total for weight in weights]
