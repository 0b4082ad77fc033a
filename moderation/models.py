"""Which model to run: the one asked for, else GPT-JT-Moderation-6B where it can run, else the demo model."""

import os

import torch
from huggingface_hub import try_to_load_from_cache

from .demo import DEMO_NAME, ensure_demo_model
from .engine import Moderator

CARD_MODEL = "togethercomputer/GPT-JT-Moderation-6B"
DEMO = "demo"


def default_model() -> str:
    """The card's model when a CUDA GPU is present or it is in the local cache, else ``"demo"``."""
    cached = try_to_load_from_cache(CARD_MODEL, "config.json")
    if torch.cuda.is_available() or isinstance(cached, str):
        return CARD_MODEL
    return DEMO


def open_moderator(model: str | None = None, *, progress: bool = True, **options) -> Moderator:
    """A Moderator on ``model``, ``$MODERATION_MODEL`` or :func:`default_model`.

    ``"demo"`` is the bundled demo model (built on first use); its results say so in ``model``.
    A named model that cannot be loaded raises ModelLoadError; there is no fallback.
    """
    model = model or os.environ.get("MODERATION_MODEL") or default_model()
    if model == DEMO:
        return Moderator.load(str(ensure_demo_model(progress=progress)), name=DEMO_NAME, demo=True, **options)
    return Moderator.load(model, **options)
