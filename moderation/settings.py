"""What decides a moderation besides the model: one frozen object, changed by replacing it whole."""

from dataclasses import dataclass, field

from .errors import InvalidInput
from .labels import DEFAULT_THRESHOLD, check_threshold
from .prompt import PromptTemplate, is_blank

DEFAULT_INTERVENTION = "Sorry, I can't help with that. Let's talk about something else."


@dataclass(frozen=True)
class Settings:
    """The prompt template, the least severe label that intervenes, and the reply a user sees instead."""

    template: PromptTemplate = field(default_factory=PromptTemplate)
    threshold: str = DEFAULT_THRESHOLD
    intervention: str = DEFAULT_INTERVENTION

    def __post_init__(self):
        check_threshold(self.threshold)
        if not isinstance(self.intervention, str) or is_blank(self.intervention):
            raise InvalidInput("The intervention message is empty: give the reply a user sees instead of the bot's.")
