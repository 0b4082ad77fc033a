"""How to fine-tune (a plain dataclass, so describing a training run loads no training code)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    """How to fine-tune: the method (None: by the model's size), LoRA's rank and scale, and the schedule (the
    card's: warm up, then constant). ``word_dropout`` drops words of the training texts as they are read.

    A step trains on ``batch_size`` sequences of ``per_sequence`` records; the held-out loss is measured
    every ``eval_steps`` steps, and training stops once it has not improved ``patience`` times in a row.
    """

    method: str | None = None
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    learning_rate: float | None = None
    epochs: float = 10.0
    max_steps: int = -1
    batch_size: int = 8
    per_sequence: int = 5
    warmup_steps: int = 10
    eval_steps: int = 10
    patience: int = 3
    weight_decay: float = 0.0
    word_dropout: float = 0.0
    seed: int = 0
