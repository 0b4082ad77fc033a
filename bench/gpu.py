"""Labels per second on a GPU, with nothing to download: a GPT-J-6B-shaped model with random weights in bf16 on
CUDA, through the model card's pipeline and through this project's path, at batch 1, 32 and 256.

- card: transformers' ``pipeline("text-generation")`` on the card's full prompt, greedy, 10 new tokens,
  ``batch_size`` prompts at a time (left-padded), each output parsed as a label;
- ours: :class:`~moderation.engine.Moderator` on :class:`~moderation.backends.local.backend.LocalBackend` (the
  prefix's key/value cache computed once, texts packed with the label trie), ``batch_size`` texts per forward pass.

The weights are random, so the labels mean nothing; the shapes, and so the time, are GPT-J-6B's (28 layers,
4096 wide, 16 heads, rotary 64, a 50,400-token vocabulary). The tokenizer is a byte-level BPE trained here on
the seed texts. It prints one JSON object. The goal on an H200: at least 1,100 labels/s on our path.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/gpu.py               # needs a CUDA GPU with ~16 GB free
    HF_HUB_OFFLINE=1 .venv/bin/python bench/gpu.py --dry-run     # the same code, on the CPU, tiny model
"""

import argparse
import json
import platform
import sys
import time

import torch
import transformers
from transformers import GPTJConfig, GPTJForCausalLM

from bench.common import sync
from moderation.backends.base import MAX_NEW_TOKENS
from moderation.backends.local.backend import LocalBackend
from moderation.demo.build import train_tokenizer
from moderation.demo.recipe import split_seed
from moderation.engine import Moderator
from moderation.labels import parse_label
from moderation.templates import PromptTemplate

GPTJ_6B = dict(vocab_size=50400, n_positions=2048, n_embd=4096, n_layer=28, n_head=16, rotary_dim=64)
TINY = dict(vocab_size=1024, n_positions=2048, n_embd=64, n_layer=2, n_head=4, rotary_dim=16)
BATCHES = (1, 32, 256)
GOAL = 1100
"""Labels/s our path should reach on an H200 at its best batch size."""
TOKENIZER_VOCAB = 1024


def parse_args(argv=None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="run on the CPU with a tiny config (checks the code)")
    parser.add_argument("--texts", type=int, help="texts per measurement (default: 512 on a GPU, 32 in a dry run)")
    args = parser.parse_args(argv)
    if not args.dry_run and not torch.cuda.is_available():
        parser.error("no CUDA GPU here: run it on a GPU machine, or pass --dry-run to check the code on the CPU")
    return args


def build(dry_run: bool):
    """(model, tokenizer): random weights in GPT-J-6B's shape (bf16 on CUDA), or the tiny config on the CPU."""
    records, held_out = split_seed()
    tokenizer = train_tokenizer(records + held_out, TOKENIZER_VOCAB)
    tokenizer.padding_side = "left"  # batched generation continues every prompt from its last token
    eos = tokenizer.eos_token_id
    config = GPTJConfig(**(TINY if dry_run else GPTJ_6B), bos_token_id=eos, eos_token_id=eos, pad_token_id=eos)
    device, dtype = ("cpu", torch.float32) if dry_run else ("cuda", torch.bfloat16)
    torch.manual_seed(0)
    with torch.device(device):
        model = GPTJForCausalLM._from_config(config, dtype=dtype)
    return model.eval(), tokenizer


def timed(label_all, texts: list[str]) -> dict:
    """labels/s of ``label_all(texts)``, after a warm-up on a few texts."""
    label_all(texts[:2])
    sync()
    start = time.perf_counter()
    labels = label_all(texts)
    sync()
    seconds = time.perf_counter() - start
    return {"texts": len(texts), "seconds": round(seconds, 4), "labels_per_s": round(len(texts) / seconds, 2),
            "labelled": sum(label is not None for label in labels)}


def card_pipeline(model, tokenizer, batch_size: int):
    """The card's way at ``batch_size``: greedy generation on the full prompt, then the label parsed."""
    generator = transformers.pipeline("text-generation", model=model, tokenizer=tokenizer)
    template = PromptTemplate()

    @torch.inference_mode()
    def label_all(texts):
        outputs = generator([template.assemble(text) for text in texts], batch_size=batch_size, do_sample=False,
                            max_new_tokens=MAX_NEW_TOKENS, return_full_text=False)
        return [parse_label(output[0]["generated_text"]) for output in outputs]

    return label_all


def our_path(model, tokenizer, batch_size: int):
    """This project's scoring at ``batch_size`` texts per forward pass."""
    moderator = Moderator(LocalBackend(model, tokenizer), "gptj-6b-shaped-random", batch_size=batch_size)
    return lambda texts: [result.label for result in moderator.moderate(texts)]


def main(argv=None) -> int:
    """Build the model, measure both ways at each batch size, print JSON."""
    args = parse_args(argv)
    records, held_out = split_seed()
    corpus = [text for text, _ in held_out + records]
    count = args.texts or (32 if args.dry_run else 512)
    texts = (corpus * (count // len(corpus) + 1))[:count]
    model, tokenizer = build(args.dry_run)
    results = {"card_pipeline": {}, "ours": {}}
    for batch_size in BATCHES:
        for way, make in (("card_pipeline", card_pipeline), ("ours", our_path)):
            results[way][str(batch_size)] = timed(make(model, tokenizer, batch_size), texts)
    best = max(row["labels_per_s"] for row in results["ours"].values())
    report = {
        "dry_run": args.dry_run,
        "device": platform.machine() if args.dry_run else torch.cuda.get_device_name(),
        "dtype": str(next(model.parameters()).dtype),
        "config": TINY if args.dry_run else GPTJ_6B,
        "parameters": sum(p.numel() for p in model.parameters()),
        "torch": torch.__version__, "transformers": transformers.__version__,
        "texts": count, "results": results,
        "goal_labels_per_s": GOAL, "best_ours_labels_per_s": best, "goal_met": None if args.dry_run else best >= GOAL,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
