"""Which model to run: the one asked for, else GPT-JT-Moderation-6B where it can run, else the demo model."""

import os

import torch
from huggingface_hub import try_to_load_from_cache
from transformers import AutoConfig, AutoTokenizer

from .demo import DEMO_NAME, ensure_demo_model
from .engine import Moderator
from .loading import ModelLoadError
from .remote import RemoteBackend

CARD_MODEL = "togethercomputer/GPT-JT-Moderation-6B"
DEMO = "demo"


def default_model() -> str:
    """The card's model when a CUDA GPU is present or it is in the local cache, else ``"demo"``."""
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
    ``$MODERATION_BASE_URL``) that serves ``model`` (GPT-JT-Moderation-6B by default).
    A named model that cannot be loaded raises ModelLoadError; there is no fallback.
    """
    if backend == "vllm":
        return _remote_moderator(model or os.environ.get("MODERATION_MODEL") or CARD_MODEL, base_url, **options)
    if backend != "local":
        raise ModelLoadError(f"Unknown backend {backend!r}: use local or vllm.")
    model = model or os.environ.get("MODERATION_MODEL") or default_model()
    if model == DEMO:
        return Moderator.load(str(ensure_demo_model(progress=progress)), name=DEMO_NAME, demo=True, **options)
    return Moderator.load(model, **options)


def _remote_moderator(model: str, base_url: str | None, **options) -> Moderator:
    """A Moderator whose model runs on a vLLM server; the tokenizer (for fitting texts) loads here."""
    base_url = base_url or os.environ.get("MODERATION_BASE_URL")
    if not base_url:
        raise ModelLoadError("--backend vllm needs the server's address: --base-url http://HOST:8000 "
                             "(or MODERATION_BASE_URL).")
    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
        config = AutoConfig.from_pretrained(model)
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"Could not load the tokenizer of {model!r} (needed to fit texts into the "
                             f"context): {error}. Give a model id in the local cache or a local folder.") from None
    context = getattr(config, "max_position_embeddings", None) or 2048
    return Moderator(RemoteBackend(base_url, model, tokenizer, context_length=context), model, **options)
