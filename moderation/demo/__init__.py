"""The demo model: a small GPT-J trained on the project's seed examples, for machines that cannot run the 6B.

It is built once, deterministically, into a cache folder (``MODERATION_CACHE`` or
``~/.cache/moderation-playground``): a byte-level BPE tokenizer trained on the training texts, a GPT-J
initialised from a fixed seed, and a full fine-tune with :func:`moderation.training.trainer.fine_tune` on the seed
set (plus the card's four examples), stopped early on a label-stratified validation split of the seed set, then
calibrated on that split (temperature scaling). The shipped held-out set is never trained on and
chooses nothing; Evaluate's figures on it and on the validation split are saved beside the model in
``metrics.json``.
"""

import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from filelock import FileLock

from ..labelled_files import HELDOUT_FILE, SEED_FILE, read_labelled
from ..prompt import CARD_EXAMPLES
from ..training.recipe import Recipe


@dataclass(frozen=True)
class DemoRecipe:
    """Everything that decides the demo model; a different recipe builds into a different folder."""

    vocab_size: int = 1536
    n_embd: int = 128
    n_layer: int = 1
    n_head: int = 4
    rotary_dim: int = 16
    n_positions: int = 2048
    dropout: float = 0.1
    validation_fraction: float = 0.15
    training: Recipe = field(default_factory=lambda: Recipe(
        method="full", learning_rate=2e-3, max_steps=400, warmup_steps=20, eval_steps=25, patience=3,
        word_dropout=0.15))
    temperatures: tuple[float, ...] = (0.8, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.5)
    """The temperatures calibration chooses from."""
    seed: int = 1

    def key(self) -> str:
        """A hash of the recipe and the records it trains and tests on."""
        content = json.dumps([asdict(self), split_seed()], sort_keys=True)
        return hashlib.sha256(content.encode()).hexdigest()[:12]


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


def split_seed() -> tuple[list, list]:
    """(seed, held-out) records: the card's examples and the seed set, then the shipped held-out set."""
    card = [(example.text, example.label) for example in CARD_EXAMPLES]
    return card + read_labelled(SEED_FILE), read_labelled(HELDOUT_FILE)


def main() -> int:
    """``python -m moderation.demo``: build the demo model into the cache now (if it is not there yet)."""
    print(ensure_demo_model())
    return 0


if __name__ == "__main__":
    sys.exit(main())
