"""How unsure a result is: what a review queue orders by, computed from the five probabilities."""

from moderation.labels import NEVER, SEVERITY, check_threshold


def margin(scores: dict[str, float]) -> float:
    """The gap between the two most probable labels: 0 when the model cannot choose, near 1 when it is sure."""
    first, second = sorted(scores.values(), reverse=True)[:2]
    return first - second


def intervene_margin(scores: dict[str, float], threshold: str) -> float | None:
    """How near the intervention decision is to flipping: the gap between the most probable label that
    reaches ``threshold`` and the most probable one that does not. None when no label can change the decision
    (``never``, or the least severe label, which every label reaches)."""
    rank = SEVERITY.index(check_threshold(threshold)) if threshold != NEVER else len(SEVERITY)
    below, reaching = SEVERITY[:rank], SEVERITY[rank:]
    if not below or not reaching:
        return None
    return abs(max(scores[label] for label in reaching) - max(scores[label] for label in below))
