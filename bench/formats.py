"""Each prompt format on one model: labels per second, milliseconds per text and the memory a round takes above the
weights, for one policy, against the card's layout; and the memory the model's weights take (the same in every
format: a format is a prompt, not a model).

The card's layout asks one prompt a text and scores every label as its continuation; Llama Guard's asks one prompt
and two answers (safe or unsafe, then which category); the yes-no format asks one prompt a label after the first
(ShieldGemma's one-policy-at-a-time questions). On one checkpoint (the demo model by default) and one policy (the
community's by default), it labels the policy's examples, repeated to ``--texts`` texts, in the batches the app
makes, in each format, ``--rounds`` times, and prints the median of each.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/formats.py [--model demo] [--policy policies/community.toml] \\
        [--texts 64] [--rounds 3] [--json]
"""

import argparse
import json
import os
import statistics
import time

from bench.common import PeakMemory, machine, quiet_torch
from moderation.loader import open_moderator
from moderation.policy import POLICIES, read_policy
from moderation.prompt import normalize_text
from moderation.settings import Settings
from moderation.templates import FORMATS, template_for


def parse_args(argv=None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="bench/formats.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="demo", help="the checkpoint (default: %(default)s)")
    parser.add_argument("--policy", default=str(POLICIES / "community.toml"), help="the policy (default: community)")
    parser.add_argument("--texts", type=int, default=64, help="texts a round (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds a format (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser.parse_args(argv)


def measure(moderator, settings: Settings, texts: list[str], rounds: int) -> dict:
    """The median labels per second and milliseconds per text of ``rounds`` rounds of ``texts`` in ``settings``,
    each round in the batches the moderator makes, the most memory a round took above what was in use before it
    (:class:`~bench.common.PeakMemory`), and how many tokens a text asks beyond the prompts' cached prefixes."""
    seconds, peaks = [], []
    for _ in range(rounds + 1):  # the first a warm-up: the prefix cached, the kernels loaded
        with PeakMemory() as memory:
            start = time.perf_counter()
            for first in range(0, len(texts), moderator.batch_size):
                moderator.moderate(texts[first : first + moderator.batch_size], settings)
            seconds.append(time.perf_counter() - start)
        peaks.append(memory.mib)
    median = statistics.median(seconds[1:])
    asked = [settings.template.queries(normalize_text(text)) for text in texts]
    tokens = moderator.backend.tokens
    return {"labels_per_second": len(texts) / median, "ms_per_text": 1000 * median / len(texts),
            "peak_mib": max(peaks), "queries_per_text": len(asked[0]),
            "tokens_per_text": statistics.mean(sum(len(tokens.encode(query.request)) for query in queries)
                                               for queries in asked)}


def main(argv=None) -> int:
    """Measure every format; print the figures."""
    args = parse_args(argv)
    load_at_start = os.getloadavg()[0]
    quiet_torch(None)
    policy = read_policy(args.policy)
    examples = [example.text for example in policy.examples]
    texts = [examples[n % len(examples)] for n in range(args.texts)]
    moderator = open_moderator(args.model, progress=False)
    formats = {format: measure(moderator, moderator.check_settings(Settings(template_for(format, policy))), texts,
                               args.rounds) for format in FORMATS}
    card = formats["card"]["labels_per_second"]
    for figures in formats.values():
        figures["cost_against_card"] = card / figures["labels_per_second"]
    memory = moderator.backend.memory_bytes
    result = {"machine": machine(load_at_start), "model": moderator.name, "policy": policy.name,
              "labels": len(policy.labels),
              "texts": len(texts), "rounds": args.rounds, "weights_mib": memory and memory / 2**20,
              "formats": formats}
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{moderator.name}, policy {policy.name} ({len(policy.labels)} labels), {len(texts)} texts, median of "
          f"{args.rounds} rounds; weights {result['weights_mib'] or 0:,.0f} MiB in every format")
    for format, figures in formats.items():
        print(f"  {format:12} {figures['queries_per_text']} prompt(s), {figures['tokens_per_text']:.0f} tokens a text  "
              f"{figures['labels_per_second']:7.1f} labels/s  {figures['ms_per_text']:6.1f} ms/text  "
              f"{figures['peak_mib']:6.1f} MiB at most above the weights  "
              f"{figures['cost_against_card']:.2f}x the card's time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
