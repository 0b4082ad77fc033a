"""How a policy becomes prompts, and what a model's answers mean: a template turns (policy, text) into the queries
a model is asked, each a prompt and the continuations whose log-likelihoods are read, and turns those into a
probability per label (:mod:`.base`).

Three formats share this shape: ``card`` (GPT-JT-Moderation's few-shot layout, :mod:`.card`), ``llama-guard`` (Meta's
Llama Guard 3, :mod:`.llama_guard`) and ``yes-no`` (one question a label, as ShieldGemma asks it, :mod:`.yes_no`).
"""

import json

from ..errors import InvalidInput
from ..policy import Policy, policy_from
from .base import Query, Template
from .card import PromptTemplate
from .llama_guard import LlamaGuardTemplate
from .yes_no import YesNoTemplate

FORMATS = {"card": PromptTemplate, "llama-guard": LlamaGuardTemplate, "yes-no": YesNoTemplate}
"""Each prompt format, by name."""


def template_for(format: str, policy: Policy) -> Template:
    """The template of ``format`` for ``policy``; InvalidInput naming the formats for an unknown one."""
    if format not in FORMATS:
        raise InvalidInput(f"Unknown format {format!r}: choose one of {', '.join(FORMATS)}.", "format")
    return FORMATS[format](policy)


def template_from_json(text: str) -> Template:
    """A stored template (:meth:`Template.to_json`, or the card's own forms) as it was."""
    stored = json.loads(text)
    if isinstance(stored, list) or "examples" in stored:
        return PromptTemplate.from_json(text)
    return template_for(stored["format"], policy_from(stored["policy"]))


__all__ = ["FORMATS", "LlamaGuardTemplate", "PromptTemplate", "Query", "Template", "YesNoTemplate", "template_for",
           "template_from_json"]
