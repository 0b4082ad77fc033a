"""Evaluation: how well a model and a prompt label a gold set, and what changed between two runs.

:mod:`.gold` reads gold sets (a labelled file, the shipped held-out set, or accepted verdicts),
:mod:`.runner` labels one through the Moderator's batched path, :mod:`.metrics` computes the figures with
scikit-learn, :mod:`.intervals` how sure they are, :mod:`.compare` sets two runs side by side, :mod:`.gate` decides
whether a version may serve, and :mod:`.report` writes all of it as Markdown.
"""

from .compare import compare
from .gold import (
    ACCEPTED_NAME,
    FILE_SOURCE,
    GOLD_SOURCES,
    HELDOUT_NAME,
    GoldSet,
    gate_gold,
    gold_from_verdicts,
    heldout_gold,
    read_gold,
)
from .runner import Progress, check_policy, evaluate

__all__ = ["ACCEPTED_NAME", "FILE_SOURCE", "GOLD_SOURCES", "HELDOUT_NAME", "GoldSet", "Progress", "check_policy",
           "compare", "evaluate", "gate_gold", "gold_from_verdicts", "heldout_gold", "read_gold"]
