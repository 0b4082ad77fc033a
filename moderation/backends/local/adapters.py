"""LoRA adapters through peft: a base model's fingerprint, and an adapter put on the base it was trained on.
peft loads when an adapter does, so a model served without one starts without it."""

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from peft import PeftModel

from ...errors import ModelLoadError
from ...versions import ModelVersion, other_base

FINGERPRINT_ROWS = 4


def fingerprint(model) -> str:
    """A short hash of a model's identity: its type, and the first rows of its input and output embeddings
    (rounded to bf16, so the same weights loaded in fp32 or bf16 agree). Any full fine-tune changes the
    output rows; LoRA leaves them as they are."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # a peft model: its base
    digest = hashlib.sha256(base.config.model_type.encode())
    for weights in (base.get_input_embeddings().weight, base.get_output_embeddings().weight):
        digest.update(str(tuple(weights.shape)).encode())
        rows = weights[:FINGERPRINT_ROWS].detach().to("cpu", torch.bfloat16).view(torch.int16)
        digest.update(rows.numpy().tobytes())
    return digest.hexdigest()[:16]


def attach_adapter(model, folder: str | Path, loaded: str) -> "tuple[PeftModel, ModelVersion]":
    """``model`` with the adapter in ``folder`` on it, and the adapter's version.

    ModelLoadError when ``folder`` holds no adapter written by the trainer, or one trained on another model
    than ``model`` (named ``loaded`` in the message).
    """
    version = ModelVersion.read(folder)
    if version.kind != "lora":
        raise ModelLoadError(f"{folder} holds a {version.kind} model ({version.name}), not an adapter: "
                             f"serve it with --model {folder}.")
    if fingerprint(model) != version.base_fingerprint:
        raise other_base(version, folder, loaded)
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(folder)).eval(), version
