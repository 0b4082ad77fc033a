"""A policy's prompt in the card's layout: the header that lists its labels, its few-shot examples as records, and
the text to label. For the card's own policy this is the model card's prompt, byte for byte."""

import json
from dataclasses import dataclass, field
from functools import cached_property

from ..errors import InvalidInput
from ..policy import CARD, Policy, policy_from
from ..prompt import Example, NormalizedText, continuation, labelled_item, record_start, request
from .base import Query, Template, softmax


@dataclass(frozen=True)
class PromptTemplate(Template):
    """The card's format: the header and few-shot examples that precede every text, those of ``policy`` (the card's
    by default), and the label's continuation `` <label>\\n`` after it."""

    policy: Policy = field(default=CARD)
    format = "card"
    reads_context = False

    @property
    def examples(self) -> tuple[Example, ...]:
        """The few-shot examples, in the prompt's order."""
        return self.policy.examples

    @cached_property
    def prefix(self) -> str:
        """Everything before the text: the header, the examples as records, and the text's ``Input:``."""
        records = "".join(record_start(first=n == 0) + request(e.text) + continuation(e.label)
                          for n, e in enumerate(self.examples))
        return f"{self.policy.header}\n{records}{record_start(first=not self.examples)}"

    request = staticmethod(request)

    def queries(self, text: NormalizedText, context: str | None = None) -> list[Query]:
        """One query: the prefix, the text's request, and each label's continuation (in the prompt's order); the
        layout has no place for a ``context``."""
        return [Query(self.prefix, request(text), self.continuations)]

    @cached_property
    def continuations(self) -> tuple[str, ...]:
        """`` <label>\\n`` for each label, in the order the prompt lists them."""
        return tuple(continuation(label) for label in self.policy.listed)

    def scores(self, logprobs: list[list[float]]) -> dict[str, float]:
        """Each label's probability: the softmax of the labels' log-likelihoods."""
        (only,) = logprobs
        return dict(zip(self.policy.listed, softmax(only), strict=True))

    def answers(self, label: str) -> tuple[str]:
        """The label's continuation."""
        return (continuation(self.policy.check_label(label)),)

    def to_json(self) -> str:
        """The template as stored: for the card's policy its examples (a JSON list of ``{"text", "label"}``, as
        templates have always been stored), for another policy ``{"policy": ..., "examples": [...]}``."""
        fields = self.policy.fields()
        examples = fields.pop("examples")
        card = CARD.fields()
        card.pop("examples")
        return json.dumps(examples if fields == card else {"policy": fields, "examples": examples},
                          ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "PromptTemplate":
        """The template stored as ``text`` (:meth:`to_json`)."""
        stored = json.loads(text)
        if isinstance(stored, list):
            return cls(CARD.with_examples(Example(item["text"], item["label"]) for item in stored))
        return cls(policy_from({**stored["policy"], "examples": stored["examples"]}))

    @classmethod
    def from_examples(cls, items, policy: Policy = CARD) -> "PromptTemplate":
        """``policy``'s template with the examples ``items``: ``{"text", "label"}`` dicts or ``{"text": "Input:
        ...\\nOutput: ..."}`` records, each label checked against the policy."""
        examples = tuple(Example(*labelled_item(item)) for item in items)
        if not examples:
            raise InvalidInput("No examples: give at least one example (a text and its label).")
        return cls(policy.with_examples(examples))
