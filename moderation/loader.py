"""Which model to run: the one asked for, else GPT-JT-Moderation-6B where it can run, else the demo model."""

import os
import time
from pathlib import Path

from .demo.recipe import DEMO_NAME
from .engine import Moderator
from .errors import ModelLoadError
from .versions import ModelVersion, model_reference, other_base

CARD_MODEL = "togethercomputer/GPT-JT-Moderation-6B"
DEMO = "demo"
BACKENDS = ("local", "vllm")


def default_model() -> str:
    """The card's model when a CUDA GPU is present or it is in the local cache, else ``"demo"``."""
    from huggingface_hub import try_to_load_from_cache

    from .backends.local.loading import gpu_available  # torch: the local backend needs it anyway

    cached = try_to_load_from_cache(CARD_MODEL, "config.json")
    if gpu_available() or isinstance(cached, str):
        return CARD_MODEL
    return DEMO


def open_moderator(
    model: str | None = None, *, backend: str = "local", base_url: str | None = None, adapter: str | None = None,
    name: str | None = None, progress: bool = True, prefix_cache: bool = True, **options
) -> Moderator:
    """The one way to a Moderator: on ``model``, ``$MODERATION_MODEL``, the model ``adapter`` was trained on, or
    :func:`default_model`, with the LoRA ``adapter`` folder on it when one is given; ``options`` (``batch_size``)
    go to the Moderator.

    ``"demo"`` is the bundled demo model (built on first use); its results say so in ``model``. A local model is
    loaded with transformers and accelerate (the adapter through peft), and its results report as their model the
    adapter's version name, else ``name``, else the version written in the model's folder (a merged or fully
    fine-tuned version), else ``model`` itself; without ``prefix_cache`` every prompt is run whole (the plain,
    reference path).
    ``backend="vllm"`` sends the prompts to the completions server at ``base_url`` (or
    ``$MODERATION_BASE_URL``) that serves ``model`` (GPT-JT-Moderation-6B by default), and the adapter
    under its version name (``--lora-modules NAME=DIR``); no model code loads here then. A named model
    that cannot be loaded, or an adapter trained on another model, raises ModelLoadError; there is no fallback.
    The Moderator's ``load_seconds`` says how long loading took.
    """
    start = time.perf_counter()
    moderator = _open(model, backend, base_url, adapter, name, progress, prefix_cache, **options)
    moderator.load_seconds = time.perf_counter() - start
    return moderator


def open_reference(reference: str, *, base: str | None = None, **options) -> Moderator:
    """The Moderator that ``reference`` names: a model id, a folder or ``demo`` as :func:`open_moderator` opens it, or
    a version folder written by ``python -m moderation.training``: a LoRA adapter put on ``base`` (by default the
    model it was trained on), a merged or fully fine-tuned version as a model of its own."""
    version = ModelVersion.find(reference) if Path(reference).is_dir() else None
    if version is not None and version.kind == "lora":
        return open_moderator(base or version.base_model, adapter=str(reference), **options)
    return open_moderator(reference, **options)


def _open(model, backend, base_url, adapter, name, progress, prefix_cache, **options) -> Moderator:
    version = ModelVersion.read(adapter) if adapter else None
    model = model or os.environ.get("MODERATION_MODEL") or (version.base_model if version else None)
    if backend == "vllm":
        from .backends.remote import RemoteBackend

        base_url = base_url or os.environ.get("MODERATION_BASE_URL")
        if not base_url:
            raise ModelLoadError("--backend vllm needs the server's address: --base-url http://HOST:8000 "
                                 "(or MODERATION_BASE_URL).")
        model = model or CARD_MODEL
        if version is None:
            return Moderator(RemoteBackend.load(base_url, model), name or model, **options)
        if version.kind != "lora" or version.base_model != model_reference(model):
            raise other_base(version, adapter, model) if version.kind == "lora" else ModelLoadError(
                f"{adapter} holds a {version.kind} model, not an adapter: serve it as a model of its own.")
        return Moderator(RemoteBackend.load(base_url, model, served=version.name), version.name, version=version,
                         **options)
    if backend != "local":
        raise ModelLoadError(f"Unknown backend {backend!r}: use {' or '.join(BACKENDS)}.")
    path, shown, demo = local_model(model, progress=progress)
    return _load_local(path, name=name or (shown if demo else None), demo=demo, adapter=adapter,
                       source=DEMO if demo else path, prefix_cache=prefix_cache, **options)


def _load_local(path: str, *, name: str | None, adapter: str | None, source: str, prefix_cache: bool,
                **options) -> Moderator:
    from .backends.local.backend import LocalBackend  # torch loads with the local backend only

    backend = LocalBackend.load(path, prefix_cache=prefix_cache, adapter=adapter, base_name=name or path)
    version = backend.version or (ModelVersion.find(path) if Path(path).is_dir() else None)
    shown = backend.version.name if backend.version else name or (version.name if version else path)
    return Moderator(backend, shown, version=version, source=source, **options)


def local_model(model: str | None, *, progress: bool = True) -> tuple[str, str, bool]:
    """(what loads, the name results give, whether it is the demo model) for ``model`` or the default.

    ``"demo"`` is the bundled demo model, built into its cache first if it is not there yet.
    """
    model = model or default_model()
    if model == DEMO:
        from .demo import ensure_demo_model

        return str(ensure_demo_model(progress=progress)), DEMO_NAME, True
    return model, model, False
