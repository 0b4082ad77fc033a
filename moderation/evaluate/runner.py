"""An evaluation: a Moderator labels a gold set through its own batched path, and the figures are computed."""

from collections.abc import Callable

from ..engine import Moderator
from ..errors import InvalidInput
from ..results import ModerationResult
from ..settings import Settings
from .gold import GoldSet
from .metrics import compute_metrics

Progress = Callable[[int, int], None]
"""Told (texts labelled so far, texts in all) after each batch."""


def label_gold(moderator: Moderator, gold: GoldSet, settings: Settings, mode: str = "score",
               progress: Progress | None = None) -> list[ModerationResult]:
    """Each gold text labelled by ``moderator.moderate``, one batch of its size at a time (the batches it would
    make of the whole list), telling ``progress`` after each."""
    texts = gold.texts
    results = []
    for start in range(0, len(texts), moderator.batch_size):
        results += moderator.moderate(texts[start : start + moderator.batch_size], settings, mode=mode)
        if progress:
            progress(len(results), len(texts))
    return results


def check_policy(gold: GoldSet, settings: Settings, labeller: str = "the settings") -> None:
    """InvalidInput unless ``gold`` is labelled in the labels of the policy ``settings`` apply (``labeller``: whose
    settings they are, as the message names them)."""
    if gold.policy.labels != settings.policy.labels:
        raise InvalidInput(f"The {gold.name} is labelled in the policy {gold.policy.name!r} "
                           f"({', '.join(gold.policy.labels)}), the policy of {labeller} is {settings.policy.name!r} "
                           f"({', '.join(settings.policy.labels)}): evaluate with the policy of the gold set.")


def evaluate(moderator: Moderator, gold: GoldSet, settings: Settings = Settings(), mode: str = "score",
             progress: Progress | None = None, *, include_trained: bool = False) -> dict:
    """A run of ``moderator`` with ``settings`` over ``gold``: what was measured, the figures and every item.

    A trained version is measured on the texts it never trained on: the gold texts among its ``trained_texts`` are
    left out (``include_trained`` keeps them), and the run says how many.

    The run is a plain dict, as :class:`feedback.store.FeedbackStore` stores it: ``model`` (the base model, for a
    trained version), ``version`` (the trained version's name, None for a model as published), ``template``,
    ``threshold``, ``mode``, ``gold_name``, ``gold_hash``, ``gold_size``, ``trained_left_out`` and
    ``trained_included`` (how many gold texts the version trained on were left out, or kept), ``metrics`` and
    ``items`` (each ``text``, ``gold``, ``label``, ``scores`` and ``generated``).
    """
    check_policy(gold, settings)
    trained = moderator.version.trained_texts if moderator.version else ()
    seen = gold.trained_on(trained)
    if seen and not include_trained:
        gold = gold.without(trained, f"The version {moderator.name}")
    results = label_gold(moderator, gold, settings, mode, progress)
    confidences = [result.scores[result.label] for result in results] if mode == "score" else None
    return {
        "model": moderator.version.base_name if moderator.version else moderator.name,
        "version": moderator.version.name if moderator.version else None,
        "template": settings.template.id,
        "threshold": settings.threshold,
        "mode": mode,
        "gold_name": gold.name,
        "gold_hash": gold.hash,
        "gold_size": len(gold.items),
        "trained_left_out": 0 if include_trained else seen,
        "trained_included": seen if include_trained else 0,
        "metrics": compute_metrics(gold.labels, [result.label for result in results], confidences, settings.threshold,
                                   settings.policy),
        "items": [{"text": text, "gold": label, "label": result.label, "scores": result.scores,
                   "generated": result.generated} for (text, label), result in zip(gold.items, results)],
    }
