"""Which model to run: the one asked for, else GPT-JT-Moderation-6B where it can run, else the demo model."""

import os
import time

from .engine import Moderator
from .errors import ModelLoadError

CARD_MODEL = "togethercomputer/GPT-JT-Moderation-6B"
DEMO = "demo"
DEMO_NAME = "playground-demo-gptj"
DEMO_NOTICE = (
    "Demo model in use. This machine runs a small GPT-J trained on the project's seed examples, not "
    "GPT-JT-Moderation-6B: its labels show how the playground works, not what the real model says. "
    "Start with --model togethercomputer/GPT-JT-Moderation-6B on a GPU for real labels."
)
BACKENDS = ("local", "vllm")


def default_model() -> str:
    """The card's model when a CUDA GPU is present or it is in the local cache, else ``"demo"``."""
    import torch  # the local backend needs it anyway
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(CARD_MODEL, "config.json")
    if torch.cuda.is_available() or isinstance(cached, str):
        return CARD_MODEL
    return DEMO


def open_moderator(
    model: str | None = None, *, backend: str = "local", base_url: str | None = None, progress: bool = True, **options
) -> Moderator:
    """A Moderator on ``model``, ``$MODERATION_MODEL`` or :func:`default_model`.

    ``"demo"`` is the bundled demo model (built on first use); its results say so in ``model``.
    ``backend="vllm"`` sends the prompts to the completions server at ``base_url`` (or
    ``$MODERATION_BASE_URL``) that serves ``model`` (GPT-JT-Moderation-6B by default); no model code
    loads here then. A named model that cannot be loaded raises ModelLoadError; there is no fallback.
    The Moderator's ``load_seconds`` says how long loading took.
    """
    start = time.perf_counter()
    moderator = _open(model, backend, base_url, progress, **options)
    moderator.load_seconds = time.perf_counter() - start
    return moderator


def _open(model, backend, base_url, progress, **options) -> Moderator:
    model = model or os.environ.get("MODERATION_MODEL")
    if backend == "vllm":
        from .remote import RemoteBackend

        base_url = base_url or os.environ.get("MODERATION_BASE_URL")
        if not base_url:
            raise ModelLoadError("--backend vllm needs the server's address: --base-url http://HOST:8000 "
                                 "(or MODERATION_BASE_URL).")
        model = model or CARD_MODEL
        return Moderator(RemoteBackend.load(base_url, model), model, **options)
    if backend != "local":
        raise ModelLoadError(f"Unknown backend {backend!r}: use {' or '.join(BACKENDS)}.")
    model = model or default_model()
    if model == DEMO:
        from .demo import ensure_demo_model

        return Moderator.load(str(ensure_demo_model(progress=progress)), name=DEMO_NAME, demo=True, **options)
    return Moderator.load(model, **options)
