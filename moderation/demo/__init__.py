"""The demo model: a small GPT-J trained on the project's seed examples, for machines that cannot run the 6B.

It is built once, deterministically, into a cache folder (``MODERATION_CACHE`` or
``~/.cache/moderation-playground``): a byte-level BPE tokenizer trained on the training texts, a GPT-J
initialised from a fixed seed, and a full fine-tune with :func:`moderation.training.trainer.fine_tune` on the seed
set (plus the card's four examples), stopped early on a label-stratified validation split of the seed set, then
calibrated on that split (temperature scaling). The shipped held-out set is never trained on and
chooses nothing; Evaluate's figures on it and on the validation split are saved beside the model in
``metrics.json``.
"""

import os
from pathlib import Path

from filelock import FileLock

from .recipe import DemoRecipe


def cache_dir() -> Path:
    """Where built demo models live."""
    default = Path.home() / ".cache" / "moderation-playground"
    return Path(os.environ.get("MODERATION_CACHE", default))


def ensure_demo_model(recipe: DemoRecipe = DemoRecipe(), *, progress: bool = True) -> Path:
    """The folder of the demo model for ``recipe``, built first if it is not in the cache yet. Processes that
    start at once on an empty cache build it once: the others wait for the first one's build."""
    target = cache_dir() / f"demo-{recipe.key()}"
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(target.with_name(f"{target.name}.lock")):
        if not (target / "metrics.json").exists():
            from .build import build_demo_model  # the training code loads only to build

            build_demo_model(target, recipe, progress=progress)
    return target
