"""The model card's labels and decisions: those of its built-in policy (:data:`moderation.policy.CARD`), for what
reads no policy of its own."""

from .policy import CARD, NEVER

LABELS = CARD.listed
"""The labels in the model card's order (the order the prompt lists them in)."""
SEVERITY = CARD.labels
"""The labels from least to most severe."""
DEFAULT_THRESHOLD = CARD.threshold

check_label = CARD.check_label
severity = CARD.severity
check_threshold = CARD.check_threshold
is_flagged = CARD.is_flagged
parse_label = CARD.parse_label


def intervenes(label: str, threshold: str = DEFAULT_THRESHOLD) -> bool:
    """Whether ``label`` reaches the intervention ``threshold`` (``"never"`` never does)."""
    return CARD.intervenes(label, threshold)


__all__ = ["DEFAULT_THRESHOLD", "LABELS", "NEVER", "SEVERITY", "check_label", "check_threshold", "intervenes",
           "is_flagged", "parse_label", "severity"]
