"""The five moderation labels, their severity order, and parsing of generated text."""

from .errors import InvalidInput

LABELS = (
    "casual",
    "needs caution",
    "needs intervention",
    "possibly needs caution",
    "probably needs caution",
)
"""The labels in the model card's order (the order the prompt lists them in)."""

SEVERITY = (
    "casual",
    "possibly needs caution",
    "probably needs caution",
    "needs caution",
    "needs intervention",
)
"""The labels from least to most severe."""

NEVER = "never"
"""Intervention threshold that never intervenes (observe only)."""

DEFAULT_THRESHOLD = "needs caution"


def check_label(label: str) -> str:
    """Return ``label`` if it is one of the five labels, else raise InvalidInput naming them (and the label given,
    cut short, when it is text)."""
    if label not in LABELS:
        given = f"{label!r:.80}" if isinstance(label, str) else f"(a {type(label).__name__}, not text)"
        raise InvalidInput(f"Unknown label {given}: choose one of {', '.join(LABELS)}.")
    return label


def severity(label: str) -> int:
    """Rank of ``label`` from 0 (casual) to 4 (needs intervention)."""
    return SEVERITY.index(check_label(label))


def check_threshold(threshold: str) -> str:
    """Return ``threshold`` if it is a label or ``"never"``, else raise InvalidInput."""
    if threshold != NEVER and threshold not in LABELS:
        raise InvalidInput(
            f"Unknown intervention threshold {threshold!r}: choose a label "
            f"({', '.join(SEVERITY)}) or {NEVER!r}."
        )
    return threshold


def is_flagged(label: str) -> bool:
    """A result is flagged when its label is anything but ``casual``."""
    return check_label(label) != "casual"


def intervenes(label: str, threshold: str = DEFAULT_THRESHOLD) -> bool:
    """Whether ``label`` reaches the intervention ``threshold`` (``"never"`` never does)."""
    if check_threshold(threshold) == NEVER:
        return False
    return severity(label) >= severity(threshold)


def parse_label(generated: str) -> str | None:
    """The label that generated text names, or None when it names no label.

    The model continues ``Output:`` with `` <label>\\n``; only the first line counts, and
    it must be exactly one label (surrounding spaces and case aside).
    """
    first_line = generated.split("\n", 1)[0].strip().lower()
    return first_line if first_line in LABELS else None
