"""The GPU memory a LoRA fine-tune of GPT-JT-Moderation-6B needs, computed from GPT-J-6B's shape.

    python bench/lora_memory.py [--lora-r 16] [--batch-size 8] [--sequence 256]

The model is built on PyTorch's meta device (no memory, no download) with GPT-J-6B's configuration, and peft
puts LoRA on it exactly as ``python -m moderation.training --lora`` does, so the parameter counts are exact. The
rest is arithmetic, as the trainer runs on a GPU: the frozen weights in bf16; the LoRA weights, their
gradients and AdamW's two moments in float32; and the activations that backpropagation through the frozen
layers keeps, per layer and token in bf16 (no activation checkpointing, attention scores kept whole as the
eager implementation keeps them), plus the logits and their float32 loss.
"""

import argparse

import torch
from transformers import GPTJConfig, GPTJForCausalLM

from moderation.training.recipe import Recipe
from moderation.training.trainer import with_lora

GB = 1e9
BF16, FP32 = 2, 4


def activation_bytes_per_token_and_layer(hidden: int, inner: int) -> int:
    """What one layer keeps for backward per token, in bytes (bf16 values, 1-byte dropout masks).

    The layer norm's input and output; the query, key and value after rotary embedding; the attention output;
    the MLP's input to GELU and its output; and LoRA's dropout on the input of each adapted projection (the
    mask and the dropped copy: five of width ``hidden``, fc_out's of width ``inner``).
    """
    norm = 2 * hidden
    attention = 3 * hidden + hidden
    mlp = 2 * inner
    lora_dropout = (1 + BF16) * (5 * hidden + inner)
    return BF16 * (norm + attention + mlp) + lora_dropout


def estimate(lora_r: int, batch_size: int, sequence: int) -> dict:
    """The memory figures, in bytes, for a step of ``batch_size`` sequences of ``sequence`` tokens."""
    config = GPTJConfig()  # GPT-J-6B's shape: GPT-JT-Moderation-6B is a fine-tune of it
    with torch.device("meta"):
        model = with_lora(GPTJForCausalLM(config), Recipe(lora_r=lora_r, lora_alpha=2 * lora_r))
    trainable, total = model.get_nb_trainable_parameters()
    tokens = batch_size * sequence
    inner = config.n_inner or 4 * config.n_embd
    per_layer = tokens * activation_bytes_per_token_and_layer(config.n_embd, inner)
    scores = BF16 * batch_size * config.n_head * sequence**2
    return {
        "parameters": total - trainable,
        "lora parameters": trainable,
        "frozen weights (bf16)": (total - trainable) * BF16,
        "LoRA weights, gradients and AdamW moments (fp32)": trainable * 4 * FP32,
        "activations kept for backward": config.n_layer * (per_layer + scores),
        "logits (bf16) and their float32 loss and gradient": tokens * config.vocab_size * (BF16 + 2 * FP32),
    }


def main(argv=None) -> int:
    """Print the figures and their total."""
    defaults = Recipe()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lora-r", type=int, default=defaults.lora_r)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="sequences a step")
    parser.add_argument("--sequence", type=int, default=256, help="tokens a sequence")
    args = parser.parse_args(argv)
    figures = estimate(args.lora_r, args.batch_size, args.sequence)
    print(f"GPT-J-6B: {figures.pop('parameters') / 1e9:.2f} B frozen parameters, "
          f"{figures.pop('lora parameters') / 1e6:.1f} M LoRA parameters (r={args.lora_r}); "
          f"{args.batch_size} sequences of {args.sequence} tokens a step")
    for name, size in figures.items():
        print(f"  {name:<52}{size / GB:7.2f} GB")
    print(f"  {'total':<52}{sum(figures.values()) / GB:7.2f} GB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
