"""Throughput, latency, agreement and FLOP/s of this project's label scoring against the model card's way.

In one process, on one checkpoint and one list of seed texts, it times four ways to label texts:

- baseline: transformers' ``pipeline("text-generation")`` on the card's full prompt, greedy, 10 new
  tokens, one text at a time (how the card's users label), parsed with ``parse_label``;
- uncached: ``Moderator(prefix_cache=False)``, one batch of up to 32 texts through ``moderate``;
- concurrency 1: each text alone through a ``MicroBatcher`` in front of a prefix-cached ``Moderator``;
- 32 queued: 32 threads submitting one text each at the same moment, round after round.

It also reports how often the scored labels agree with the pipeline's greedy labels (on the trained
demo model, and on the benchmark checkpoint), the machine's own matmul FLOP/s against the model
FLOP/s the 32-queued run achieves on useful work, peak memory, and whether the targets are met.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/throughput.py [--model M] [--size small|medium] \\
        [--texts N] [--json]

Without ``--model`` the checkpoint is a GPT-J with random weights (seed 0) and a byte-level BPE trained
on the seed records, written with ``save_pretrained`` and loaded back through ``open_moderator``:
``medium`` is 768 wide with 12 layers (about 92M parameters), ``small`` 384 wide with 4 layers (about 13M).
"""

import argparse
import json
import os
import resource
import shlex
import sys
import tempfile
import threading
import time

import numpy as np
import torch
import transformers

from bench.common import machine, quiet_torch, sync
from moderation.backends.local.backend import LocalBackend
from moderation.demo import ensure_demo_model
from moderation.demo.build import new_gptj, train_tokenizer
from moderation.demo.recipe import split_seed
from moderation.engine import Moderator
from moderation.labels import parse_label
from moderation.loader import open_moderator
from moderation.settings import Settings
from moderation.templates import PromptTemplate
from playground.batcher import MicroBatcher

SIZES = {
    "medium": dict(n_embd=768, n_layer=12, n_head=12, rotary_dim=64),
    "small": dict(n_embd=384, n_layer=4, n_head=6, rotary_dim=32),
}
VOCAB_SIZE = 8000
BASELINE_TEXTS = 16
CONCURRENCY = 32
MAX_WAIT = 0.002
SETTINGS = Settings()
"""The card's prompt: the settings every text is labelled with (the micro-batcher's key)."""
TARGETS = {"speedup": 10.0, "p50_ratio": 0.3, "agreement": 0.99, "flops_fraction": 0.4}


def parse_args(argv=None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="folder or Hugging Face id (default: a random GPT-J built here)")
    parser.add_argument("--size", choices=SIZES, default="medium", help="size of the random GPT-J")
    parser.add_argument("--texts", type=int, default=64, help="how many seed texts to label")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own, one per core)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    return parser.parse_args(argv)


def seed_texts(count: int) -> list[str]:
    """The first ``count`` texts of the seed set: the held-out records, then the training ones."""
    train, held_out = split_seed()
    texts = [text for text, _ in held_out + train]
    if not 1 <= count <= len(texts):
        raise SystemExit(f"--texts must be between 1 and {len(texts)}.")
    return texts[:count]


def build_checkpoint(size: str, folder: str) -> int:
    """Write a random GPT-J of ``size`` with its tokenizer into ``folder``; returns the vocabulary reached."""
    train, held_out = split_seed()
    tokenizer = train_tokenizer(train + held_out, VOCAB_SIZE)
    model = new_gptj(tokenizer, **SIZES[size], seed=0)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return len(tokenizer)


def latency_row(count: int, seconds: float, latencies: list[float]) -> dict:
    """labels/s and p50/p95 latency of ``count`` labels made in ``seconds``."""
    p50, p95 = np.percentile(latencies, [50, 95]).tolist()
    return {"texts": count, "seconds": seconds, "labels_per_s": count / seconds, "p50_s": p50, "p95_s": p95}


@torch.inference_mode()
def run_baseline(model, tokenizer, texts: list[str]):
    """(labels, latencies) of the card's way: one pipeline call per text on the full prompt, greedy."""
    generator = transformers.pipeline("text-generation", model=model, tokenizer=tokenizer)
    template = PromptTemplate()

    def label(text):
        prompt = template.assemble(text)
        output = generator(prompt, max_new_tokens=10, do_sample=False, return_full_text=False)
        return parse_label(output[0]["generated_text"])

    label(texts[0])
    labels, latencies = [], []
    for text in texts:
        sync()
        start = time.perf_counter()
        labels.append(label(text))
        sync()
        latencies.append(time.perf_counter() - start)
    return labels, latencies


def run_uncached(moderator: Moderator, texts: list[str]) -> dict:
    """One batch of up to 32 texts through the uncached path (every text in it waits the whole batch)."""
    batch = texts[:CONCURRENCY]
    moderator.moderate(batch[:2])
    sync()
    start = time.perf_counter()
    moderator.moderate(batch)
    sync()
    seconds = time.perf_counter() - start
    return latency_row(len(batch), seconds, [seconds] * len(batch))


def counting_batcher(moderator: Moderator) -> tuple[MicroBatcher, list[int]]:
    """A MicroBatcher in front of ``moderator.moderate``, and the list of the batch sizes it served."""
    sizes: list[int] = []

    def batch_fn(texts, settings):
        sizes.append(len(texts))
        return moderator.moderate(texts, settings)

    return MicroBatcher(batch_fn, max_batch_size=CONCURRENCY, max_wait=MAX_WAIT), sizes


def run_single(batcher: MicroBatcher, texts: list[str]) -> dict:
    """Each text submitted alone, one after another."""
    batcher.submit(texts[:1], SETTINGS)
    latencies = []
    for text in texts:
        start = time.perf_counter()
        batcher.submit([text], SETTINGS)
        sync()
        latencies.append(time.perf_counter() - start)
    return latency_row(len(texts), sum(latencies), latencies)


def queued_round(batcher: MicroBatcher, texts: list[str]) -> tuple[float, list[float], list[str]]:
    """(wall seconds, latencies, labels) of one thread per text, all released by one barrier."""
    barrier = threading.Barrier(len(texts))
    spans: list[tuple[float, float]] = [(0.0, 0.0)] * len(texts)
    labels: list[str] = [""] * len(texts)

    def request(index):
        barrier.wait()
        start = time.perf_counter()
        labels[index] = batcher.submit([texts[index]], SETTINGS)[0].label
        sync()
        spans[index] = (start, time.perf_counter())

    threads = [threading.Thread(target=request, args=(index,)) for index in range(len(texts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = max(end for _, end in spans) - min(start for start, _ in spans)
    return wall, [end - start for start, end in spans], labels


def run_queued(batcher: MicroBatcher, batch_sizes: list[int], texts: list[str]) -> tuple[dict, list[str]]:
    """(row, labels) of the texts in rounds of 32 simultaneous requests; the row lists the batches served."""
    queued_round(batcher, texts[:CONCURRENCY])
    batch_sizes.clear()
    wall, latencies, labels = 0.0, [], []
    for start in range(0, len(texts), CONCURRENCY):
        seconds, round_latencies, round_labels = queued_round(batcher, texts[start : start + CONCURRENCY])
        wall += seconds
        latencies += round_latencies
        labels += round_labels
    return latency_row(len(texts), wall, latencies) | {"batch_sizes": list(batch_sizes)}, labels


def parameter_counts(model) -> dict:
    """Total parameters, the input embedding's, the output head's, and the rest (the body)."""
    embedding = {id(p) for p in model.get_input_embeddings().parameters()}
    head = {id(p) for p in model.get_output_embeddings().parameters()}
    params = list(model.parameters())
    return {
        "total": sum(p.numel() for p in params),
        "input_embedding": sum(p.numel() for p in params if id(p) in embedding),
        "lm_head": sum(p.numel() for p in model.get_output_embeddings().parameters()),
        "body": sum(p.numel() for p in params if id(p) not in embedding | head),
    }


def useful_work(moderator: Moderator, texts: list[str]) -> dict:
    """Tokens the packed path must feed and FLOPs it must spend for ``texts`` (the shared prefix excluded).

    Each text feeds its own request tokens plus the label trie's fed nodes; logits are needed at the
    request's last token and at each node. FLOPs are 2 per parameter per token (attention's own work,
    which grows with the prefix, is not counted).
    """
    nodes = len(moderator.backend.trie(PromptTemplate().continuations).tokens)
    request_tokens = sum(len(moderator.backend.tokens.encode(PromptTemplate.request(text))) for text in texts)
    tokens = request_tokens + nodes * len(texts)
    logit_positions = (1 + nodes) * len(texts)
    counts = parameter_counts(moderator.backend.model)
    flops = 2 * counts["body"] * tokens + 2 * counts["lm_head"] * logit_positions
    return {
        "request_tokens_mean": request_tokens / len(texts),
        "trie_nodes": nodes,
        "useful_tokens": tokens,
        "logit_positions": logit_positions,
        "flops": flops,
    }


def matmul_flops_per_s(device, dtype, repeats: int = 5) -> dict:
    """The best FLOP/s of square matmuls on ``device`` in ``dtype`` (2 n^3 FLOPs each), after a warm-up."""
    size = 8192 if device.type == "cuda" else 2048
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        for _ in range(3):
            torch.matmul(a, b)
        sync()
        best = min(best, (time.perf_counter() - start) / 3)
    return {"size": size, "dtype": str(dtype).removeprefix("torch."), "flops_per_s": 2 * size**3 / best}


def agreement(baseline: list[str | None], scored: list[str]) -> dict:
    """Share of the texts the baseline labelled on which the scored label is the same."""
    pairs = [(b, s) for b, s in zip(baseline, scored) if b is not None]
    same = sum(b == s for b, s in pairs)
    return {"share": same / len(pairs) if pairs else None, "counted": len(pairs), "texts": len(baseline)}


def same_prompt_tokens(moderator: Moderator, texts: list[str]) -> int:
    """How many texts' full prompts the pipeline's tokenizer splits exactly as the scoring path does."""
    tokens, template = moderator.backend.tokens, PromptTemplate()
    return sum(tokens.encode(template.assemble(t)) == tokens.prompt(template.prefix, template.request(t))
               for t in texts)


def demo_agreement(texts: list[str]) -> dict:
    """Agreement of the pipeline's greedy labels and scored labels on the trained demo model."""
    moderator = open_moderator(str(ensure_demo_model(progress=False)))
    baseline, _ = run_baseline(moderator.backend.model, moderator.backend.tokens.tokenizer, texts)
    scored = [result.label for result in moderator.moderate(texts)]
    return agreement(baseline, scored) | {"same_prompt_tokens": same_prompt_tokens(moderator, texts)}


def peak_memory() -> dict:
    """Peak RSS of the process so far (MiB) and, with CUDA, the peak of allocated GPU memory (MiB)."""
    memory = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if torch.cuda.is_available():
        memory["cuda_max_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return memory


def targets(figures: dict) -> list[dict]:
    """Each target, the figure it is judged on (and that figure as text), and whether it is met."""
    queued, single = figures["rows"]["queued_32"], figures["rows"]["concurrency_1"]
    checks = [
        ("32 queued >= 10x baseline labels/s", queued["speedup"], TARGETS["speedup"], "x"),
        ("single request p50 <= 0.3x baseline p50", single["p50_ratio"], TARGETS["p50_ratio"], "x"),
        ("agreement >= 99% (demo model)", figures["agreement"]["demo"]["share"], TARGETS["agreement"], "%"),
        (">= 40% of matmul FLOP/s (32 queued)", figures["flops"]["fraction"], TARGETS["flops_fraction"], "%"),
    ]
    results = []
    for name, value, goal, unit in checks:
        at_most = "<=" in name
        met = value is not None and (value <= goal if at_most else value >= goal)
        shown = "n/a" if value is None else f"{value:.2f}x" if unit == "x" else f"{value:.1%}"
        results.append({"target": name, "value": value, "shown": shown, "met": met})
    return results


def measure(args) -> dict:
    """Every figure of the benchmark, in one dict."""
    load_at_start = os.getloadavg()[0]
    texts = seed_texts(args.texts)
    figures: dict = {"command": shlex.join([sys.executable, *sys.argv]), "memory": {}}
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = args.model or folder
        vocab = None if args.model else build_checkpoint(args.size, folder)
        moderator = open_moderator(checkpoint, name=args.model or f"random GPT-J ({args.size})")
        model, tokenizer = moderator.backend.model, moderator.backend.tokens.tokenizer
        figures["checkpoint"] = {
            "name": moderator.name,
            "vocab_trained": vocab,
            "vocab": len(tokenizer),
            "dtype": str(model.dtype),
            "device": str(model.device),
            "parameters": parameter_counts(model),
        }
        figures["memory"]["load"] = peak_memory()

        figures["matmul"] = matmul_flops_per_s(model.device, model.dtype)
        figures["memory"]["matmul"] = peak_memory()

        baseline_labels, latencies = run_baseline(model, tokenizer, texts[:BASELINE_TEXTS])
        rows = {"baseline": latency_row(len(latencies), sum(latencies), latencies)}
        figures["memory"]["baseline"] = peak_memory()

        uncached = Moderator(LocalBackend(model, tokenizer, prefix_cache=False), moderator.name)
        rows["uncached"] = run_uncached(uncached, texts)
        figures["memory"]["uncached"] = peak_memory()

        batcher, batch_sizes = counting_batcher(moderator)
        rows["concurrency_1"] = run_single(batcher, texts)
        figures["memory"]["concurrency_1"] = peak_memory()

        rows["queued_32"], scored_labels = run_queued(batcher, batch_sizes, texts)
        figures["memory"]["queued_32"] = peak_memory()

        work = useful_work(moderator, texts)
        achieved = work["flops"] / rows["queued_32"]["seconds"]
        matmul = figures["matmul"]["flops_per_s"]
        figures["flops"] = work | {
            "achieved_per_s": achieved,
            "matmul_per_s": matmul,
            "fraction": achieved / matmul,
        }
        for row in rows.values():
            row["speedup"] = row["labels_per_s"] / rows["baseline"]["labels_per_s"]
            row["p50_ratio"] = row["p50_s"] / rows["baseline"]["p50_s"]
        figures["rows"] = rows
        figures["agreement"] = {
            "benchmark": agreement(baseline_labels, scored_labels[:BASELINE_TEXTS]),
            "demo": demo_agreement(texts),
        }
        figures["memory"]["agreement"] = peak_memory()
    figures["machine"] = machine(load_at_start)
    figures["targets"] = targets(figures)
    return figures


def report(figures: dict) -> str:
    """The figures as readable tables."""
    checkpoint, parameters = figures["checkpoint"], figures["checkpoint"]["parameters"]
    flops, matmul, rows = figures["flops"], figures["matmul"], figures["rows"]
    vocab = f"vocab {checkpoint['vocab']:,}"
    if checkpoint["vocab_trained"] is not None:
        vocab += f" (BPE asked for {VOCAB_SIZE:,} on the seed records)"
    lines = [
        f"Checkpoint: {checkpoint['name']}, {parameters['total']:,} parameters (body {parameters['body']:,}, "
        f"input embedding {parameters['input_embedding']:,}, lm_head {parameters['lm_head']:,}), {vocab}, "
        f"{checkpoint['dtype'].removeprefix('torch.')} on {checkpoint['device']}",
        f"Texts: {rows['concurrency_1']['texts']} seed texts, {flops['request_tokens_mean']:.1f} request "
        f"tokens on average (+ {flops['trie_nodes']} label-trie nodes each); baseline on the first "
        f"{rows['baseline']['texts']}",
        "",
        f"{'path':<22}{'texts':>6}{'labels/s':>11}{'p50 s':>9}{'p95 s':>9}"
        f"{'x baseline/s':>14}{'p50/baseline':>14}",
    ]
    names = {
        "baseline": "baseline (pipeline)",
        "uncached": "uncached batch",
        "concurrency_1": "concurrency 1",
        "queued_32": f"{CONCURRENCY} queued",
    }
    for key, name in names.items():
        row = rows[key]
        lines.append(f"{name:<22}{row['texts']:>6}{row['labels_per_s']:>11.2f}{row['p50_s']:>9.3f}"
                     f"{row['p95_s']:>9.3f}{row['speedup']:>13.2f}x{row['p50_ratio']:>13.2f}x")
    lines.append(f"({CONCURRENCY} queued: batches served {rows['queued_32']['batch_sizes']}; uncached: one "
                 "batch, each text waits for all of it)")
    lines += ["", "Agreement (greedy pipeline label = scored label, on texts where greedy produced a label):"]
    for key, name in (("demo", "demo model"), ("benchmark", "benchmark checkpoint")):
        found = figures["agreement"][key]
        share = "n/a" if found["share"] is None else f"{found['share']:.1%}"
        line = f"  {name}: {share}, {found['counted']} of {found['texts']} texts counted"
        if "same_prompt_tokens" in found:
            line += f"; full prompt tokenized as the scoring path does for {found['same_prompt_tokens']}"
        lines.append(line)
    lines += [
        "",
        f"FLOP/s: matmul {matmul['size']}x{matmul['size']} {matmul['dtype']}: "
        f"{matmul['flops_per_s'] / 1e9:,.1f} GFLOP/s (best of 5)",
        f"  {CONCURRENCY} queued, useful work: {flops['useful_tokens']:,} tokens and "
        f"{flops['logit_positions']:,} logit positions = {flops['flops'] / 1e9:,.1f} GFLOP in "
        f"{rows['queued_32']['seconds']:.2f} s = {flops['achieved_per_s'] / 1e9:,.1f} GFLOP/s, "
        f"{flops['fraction']:.1%} of matmul",
        "",
        "Peak memory (peak RSS so far" + (", CUDA max allocated" if torch.cuda.is_available() else "") + "):",
    ]
    for phase, memory in figures["memory"].items():
        cuda = f", {memory['cuda_max_allocated_mib']:,.0f} MiB" if "cuda_max_allocated_mib" in memory else ""
        lines.append(f"  after {phase:<14}{memory['peak_rss_mib']:>8,.0f} MiB{cuda}")
    host = figures["machine"]
    lines += [
        "",
        f"Machine: {host['platform']}, Python {host['python']}, torch {host['torch']} "
        f"({host['torch_threads']} threads), transformers {host['transformers']}",
        f"  CPU: {host['cpu']} ({host['cores']} cores); CUDA: {host['cuda'] or 'none'}; "
        f"1-minute load average {host['load_average'][0]:.2f} at the start, "
        f"{host['load_average'][1]:.2f} at the end",
        f"Command: {figures['command']}",
        "",
        "Targets:",
    ]
    for target in figures["targets"]:
        lines.append(f"  [{'met' if target['met'] else 'NOT met':>7}] {target['target']}: {target['shown']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    """Measure, then print the report (or the JSON object); returns the exit code."""
    args = parse_args(argv)
    quiet_torch(args.threads)
    figures = measure(args)
    print(json.dumps(figures, indent=2) if args.json else report(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
