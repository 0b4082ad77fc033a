"""What decides a moderation besides the model: one frozen object, changed by replacing it whole."""

from dataclasses import dataclass, field

from .errors import InvalidInput
from .policy import Policy
from .prompt import is_blank
from .templates import PromptTemplate, Template

DEFAULT_INTERVENTION = "Sorry, I can't help with that. Let's talk about something else."


@dataclass(frozen=True)
class Settings:
    """The prompt template (a policy in a format: the card's few-shot layout by default), the least severe label
    that intervenes (None: the policy's default), and the reply a user sees instead."""

    template: Template = field(default_factory=PromptTemplate)
    threshold: str | None = None
    intervention: str = DEFAULT_INTERVENTION

    def __post_init__(self):
        if self.threshold is None:
            object.__setattr__(self, "threshold", self.policy.threshold)
        self.policy.check_threshold(self.threshold)
        if not isinstance(self.intervention, str) or is_blank(self.intervention):
            raise InvalidInput("The intervention message is empty: give the reply a user sees instead of the bot's.")

    @property
    def policy(self) -> Policy:
        """The policy the template asks the model to apply."""
        return self.template.policy
