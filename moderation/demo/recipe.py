"""What the demo model is: its name, the notice the page shows, the recipe that decides it, and the records it is
trained and judged on."""

import hashlib
import json
from dataclasses import asdict, dataclass, field

from ..labelled_files import HELDOUT_FILE, SEED_FILE, read_labelled
from ..policy import CARD
from ..training.recipe import Recipe

DEMO_NAME = "playground-demo-gptj"
"""How results name the demo model."""
DEMO_NOTICE = (
    "Demo model in use. This machine runs a small GPT-J trained on the project's seed examples, not "
    "GPT-JT-Moderation-6B: its labels show how the playground works, not what the real model says. "
    "Start with --model togethercomputer/GPT-JT-Moderation-6B on a GPU for real labels."
)


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


def split_seed() -> tuple[list, list]:
    """(seed, held-out) records: the card's examples and the seed set, then the shipped held-out set."""
    card = [(example.text, example.label) for example in CARD.examples]
    return card + read_labelled(SEED_FILE, CARD), read_labelled(HELDOUT_FILE, CARD)
