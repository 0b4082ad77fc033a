"""Meta's Llama Guard 3 prompt, for any policy: the policy's labels after the first are its unsafe-content
categories (``S1``, ``S2``, ... with their descriptions), the conversation is the text (or a user's message and the
bot's reply to it), and the model answers ``safe``, or ``unsafe`` and a line of categories.

The prompt is the one Llama-Guard-3-1B's chat template renders with custom ``categories`` (Meta's notebook
``llama_guard_text_and_vision_inference.ipynb`` in meta-llama/llama-recipes shows it rendered), byte for byte.

    P(first label) = P(safe)
    P(category k)  = P(unsafe) * P(S<k> | unsafe), normalised over the categories
"""

from dataclasses import dataclass
from functools import cached_property

from ..policy import Policy
from ..prompt import NormalizedText
from .base import Query, Template, softmax

BEGIN = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
TASK = ("Task: Check if there is unsafe content in '{role}' messages in conversations according our safety policy "
        "with the below categories.\n\n")
INSTRUCTIONS = ("<END CONVERSATION>\n\nProvide your safety assessment for ONLY THE LAST {role} message in the above "
                "conversation:\n - First line must read 'safe' or 'unsafe'.\n - If unsafe, a second line must include "
                "a comma-separated list of violated categories. "
                "<|eot_id|><|start_header_id|>assistant<|end_header_id|>")
ANSWER = "\n\n"
"""What the model writes before its verdict."""
SAFE, UNSAFE = "safe", "unsafe"
USER, AGENT = "User", "Agent"


@dataclass(frozen=True)
class LlamaGuardTemplate(Template):
    """Llama Guard 3's format bound to ``policy``."""

    policy: Policy
    format = "llama-guard"

    @cached_property
    def categories(self) -> dict[str, str]:
        """Code (``S1``...) -> the category as the prompt lists it: a label after the first, and its description on
        the next line when the policy gives one."""
        return {f"S{number}": label + (f"\n{self.policy.description(label)}" if self.policy.description(label) else "")
                for number, label in enumerate(self.policy.labels[1:], 1)}

    def prefix(self, role: str) -> str:
        """Everything before the conversation, for the last message's ``role`` (User, or Agent for a bot's reply)."""
        listed = "".join(f"{code}: {category}\n" for code, category in self.categories.items())
        return (BEGIN + TASK.format(role=role) + "<BEGIN UNSAFE CONTENT CATEGORIES>\n" + listed
                + "<END UNSAFE CONTENT CATEGORIES>\n\n<BEGIN CONVERSATION>\n\n")

    def queries(self, text: NormalizedText, context: str | None = None) -> list[Query]:
        """Two queries: ``safe`` against ``unsafe``, then each category after ``unsafe``."""
        turns = [(USER, context), (AGENT, text)] if context is not None else [(USER, text)]
        role = turns[-1][0]
        request = "".join(f"{speaker}: {said.strip()}\n\n" for speaker, said in turns) + INSTRUCTIONS.format(role=role)
        verdict = Query(self.prefix(role), request, (ANSWER + SAFE, ANSWER + UNSAFE))
        which = Query(self.prefix(role), request + ANSWER + UNSAFE + "\n", tuple(self.categories))
        return [verdict, which]

    def answers(self, label: str) -> tuple[str, str | None]:
        """``safe`` for the first label; otherwise ``unsafe``, then the label's category code."""
        number = self.policy.labels.index(self.policy.check_label(label))
        return (ANSWER + SAFE, None) if number == 0 else (ANSWER + UNSAFE, f"S{number}")

    def shown(self, queries: list[Query]) -> str:
        """The prompt sent (the second query only goes on with the model's ``unsafe`` answer)."""
        return queries[0].prompt

    def scores(self, logprobs: list[list[float]]) -> dict[str, float]:
        """P(first label) = P(safe); P(category k) = P(unsafe) * P(S<k> | unsafe), normalised over the categories."""
        verdict, which = logprobs
        safe, unsafe = softmax(verdict)
        return {self.policy.labels[0]: safe,
                **{label: unsafe * share for label, share in zip(self.policy.labels[1:], softmax(which), strict=True)}}
