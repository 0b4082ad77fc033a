"""What a moderation returns: one text's result, and a chat turn checked on both sides."""

from dataclasses import dataclass

from .policy import Policy

MODES = ("score", "generate")
"""score: a probability for each label; generate: the card's greedy decoding."""

ROLES = ("user", "bot")
"""The two sides of a chat turn."""


@dataclass(frozen=True)
class ModerationResult:
    """What the model says of one text.

    ``text`` is the text as the model saw it (normalised, and cut with a marker if it was too long);
    ``scores`` maps each label to its probability (empty in generate mode); ``label`` is None only
    when generate mode produced no label, and ``generated`` then holds what it produced;
    ``template`` is the id of the prompt template used, and ``threshold`` the intervention threshold that
    decided ``intervene``.
    """

    text: str
    label: str | None
    scores: dict[str, float]
    flagged: bool
    intervene: bool
    prompt: str
    model: str
    mode: str = "score"
    generated: str | None = None
    template: str | None = None
    threshold: str | None = None

    @classmethod
    def decided(cls, *, label: str | None, threshold: str, policy: Policy, **fields) -> "ModerationResult":
        """A result whose ``flagged`` and ``intervene`` follow from its label, the ``policy`` and the intervention
        ``threshold``."""
        return cls(label=label, threshold=threshold, flagged=label is not None and policy.is_flagged(label),
                   intervene=label is not None and policy.intervenes(label, threshold), **fields)


@dataclass(frozen=True)
class TurnResult:
    """A chat turn checked on both sides: the verdicts, and the reply the user gets to see."""

    user: ModerationResult
    bot: ModerationResult
    reply: str
    intervened: bool
    triggered_by: list[str]

    @classmethod
    def of(cls, user: ModerationResult, bot: ModerationResult, bot_reply: str, intervention: str) -> "TurnResult":
        """The bot's reply, or ``intervention`` when either side reaches the intervention threshold."""
        triggered = [role for role, result in zip(ROLES, (user, bot)) if result.intervene]
        return cls(user, bot, intervention if triggered else bot_reply, bool(triggered), triggered)
