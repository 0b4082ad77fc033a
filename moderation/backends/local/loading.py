"""Load a causal language model and its tokenizer through transformers, with errors that say what to do."""

import os
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from ...errors import ModelLoadError


def gpu_available() -> bool:
    """Whether a CUDA GPU can run a model here."""
    return torch.cuda.is_available()


def pick_dtype(dtype: str | torch.dtype = "auto") -> torch.dtype:
    """bf16 (or fp16) on a CUDA GPU, fp32 on CPU, unless a dtype is named."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype != "auto":
        try:
            return getattr(torch, dtype)
        except AttributeError:
            raise ModelLoadError(f"Unknown dtype {dtype!r}: use auto, float32, bfloat16 or float16.") from None
    if gpu_available():
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def load_model(name: str, revision: str | None = None, dtype="auto", device_map="auto"):
    """(model, tokenizer) for ``name``, a Hugging Face model id or a local folder.

    Raises ModelLoadError when the model is missing, unreachable, or not a causal language model.
    """
    try:
        config = AutoConfig.from_pretrained(name, revision=revision)
    except (OSError, ValueError) as error:
        raise ModelLoadError(_missing_model_message(name, error)) from None
    try:
        model = AutoModelForCausalLM.from_pretrained(
            name, revision=revision, dtype=pick_dtype(dtype), device_map=device_map
        )
        tokenizer = AutoTokenizer.from_pretrained(name, revision=revision)
    except ValueError as error:
        if "Unrecognized configuration class" in str(error):
            raise ModelLoadError(
                f"{name} is a {config.model_type!r} model, which cannot generate text: "
                "give a causal language model such as GPT-JT-Moderation-6B (a GPT-J)."
            ) from None
        raise ModelLoadError(f"Could not load {name}: {error}") from None
    except OSError as error:
        raise ModelLoadError(_missing_model_message(name, error)) from None
    model.eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def _missing_model_message(name: str, error: Exception) -> str:
    if Path(name).expanduser().exists() or name.startswith((".", "/", "~")):
        return (
            f"Could not load the model folder {name}: {_first_line(error)} "
            "Give a folder holding config.json, the tokenizer files and the weights "
            "(as written by save_pretrained), or a Hugging Face model id."
        )
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        how = "HF_HUB_OFFLINE=1 is set, so only models already in the local Hugging Face cache load; "
        how += "unset it to download, or give a local folder."
    else:
        how = "Check the model id and your network, or give a local folder."
    return f"Could not load the model {name!r}: {_first_line(error)} {how}"


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
