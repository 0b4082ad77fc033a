"""Retraining proof: corrections the model gets wrong, a LoRA retrain on them, accuracy before and after, and the
gate's decision.

    HF_HUB_OFFLINE=1 python bench/retrain_proof.py --pool FILE [--corrections 200] [--held-out FILE] [--model demo]

The first N texts of the labelled pool that the model labels wrong become the corrections (what reviewers
would have flagged and accepted). ``python -m moderation.training --lora`` trains an adapter on all of them (the
seed set replayed), choosing its checkpoint on the rest of the pool; then the corrections (which the version trained
on: labelled so) and the held-out set (no text of which is in the pool) are evaluated (:mod:`moderation.evaluate`)
before and after, and their accuracy and macro-F1 printed, the held-out set's with the 95% intervals of both runs and
of the change. Last, the gate (:mod:`moderation.evaluate.gate`, its default rules) decides on the held-out set
whether the version may serve instead of the model, and says why. The pool and the held-out set must share no text.
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

from moderation.errors import USER_ERRORS, InvalidInput
from moderation.evaluate import GoldSet, evaluate
from moderation.evaluate.gate import gate, gate_runs
from moderation.evaluate.report import interval_text
from moderation.labelled_files import HELDOUT_FILE, read_labelled
from moderation.loader import open_moderator
from moderation.policy import CARD
from moderation.prompt import format_record
from moderation.training.__main__ import main as train

FIGURES = ("accuracy", "macro_f1")
"""What the proof reports of each set, before and after."""


def corrections(moderator, pool, count: int) -> list:
    """The first ``count`` records of ``pool`` that ``moderator`` labels wrong."""
    results = moderator.moderate([text for text, _ in pool])
    wrong = [record for record, result in zip(pool, results) if result.label != record[1]]
    if len(wrong) < count:
        raise InvalidInput(f"The model labels only {len(wrong)} of the pool's {len(pool)} texts wrong; "
                           f"give a larger pool or ask for fewer corrections than {count}.")
    return wrong[:count]


def main(argv=None) -> int:
    """Run the proof and print its figures; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pool", required=True, help="labelled texts (jsonl) to draw the corrections from")
    parser.add_argument("--held-out", default=str(HELDOUT_FILE), help="labelled texts that share none with the pool")
    parser.add_argument("--corrections", type=int, default=200)
    parser.add_argument("--model", default="demo")
    parser.add_argument("--out", help="folder for the corrections and the adapter (default: a temporary one)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args, train_options = parser.parse_known_args(argv)
    out = Path(args.out or tempfile.mkdtemp(prefix="retrain-proof-"))
    try:
        pool, held_out = read_labelled(args.pool, CARD), read_labelled(args.held_out, CARD)
        shared = {text for text, _ in pool} & {text for text, _ in held_out}
        if shared:
            raise InvalidInput(f"The pool and the held-out set share {len(shared)} texts, like {sorted(shared)[0]!r}.")
        base = open_moderator(args.model, progress=False)
        fixes = corrections(base, pool, args.corrections)
        rest = [record for record in pool if record not in fixes]
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    data, choose = out / "corrections.jsonl", out / "rest-of-pool.jsonl"
    for path, records in ((data, fixes), (choose, rest)):
        path.write_text("".join(json.dumps({"text": format_record(text, label)}) + "\n" for text, label in records))
    adapter = out / "adapter"
    code = train(["--model", args.model, "--data", str(data), "--eval-data", str(choose), "--out", str(adapter),
                  "--lora", "--force", *train_options])
    if code:
        return code
    tuned = open_moderator(args.model, adapter=str(adapter), progress=False)
    figures = {"model": base.name, "version": tuned.name, "corrections": len(fixes), "held_out": len(held_out)}
    for when, moderator in (("before", base), ("after", tuned)):
        metrics = evaluate(moderator, GoldSet("corrections", tuple(fixes)), include_trained=True)["metrics"]
        figures[f"corrections_{when}"] = {key: round(metrics[key], 4) for key in FIGURES}
    decision = gate(*gate_runs(base, tuned, GoldSet("held-out set", tuple(held_out))))
    comparison = decision["comparison"]
    for when, side in (("before", "a"), ("after", "b")):
        figures[f"held_out_{when}"] = {key: round(comparison["metrics"][key][side], 4) for key in FIGURES}
    figures["held_out_intervals"] = comparison["paired"]["intervals"]
    figures["gate"] = {"allowed": decision["allowed"], "reasons": decision["reasons"],
                       "benign_regressions": len(comparison["benign_regressions"]),
                       "mcnemar": comparison["paired"]["mcnemar"]}
    print(json.dumps(figures) if args.json else proof_text(figures))
    return 0


def proof_text(figures: dict) -> str:
    """The proof's figures to read: each set before and after (the held-out set's with the 95% intervals of both runs
    and of the change), then the gate's decision and why."""
    lines = [f"{figures['corrections']} corrections the model got wrong (the version trained on them); "
             f"{figures['held_out']} held-out texts"]
    before, after = figures["corrections_before"], figures["corrections_after"]
    lines.append("  corrections " + "; ".join(f"{key} {before[key]:.3f} -> {after[key]:.3f}" for key in FIGURES))
    before, after, intervals = figures["held_out_before"], figures["held_out_after"], figures["held_out_intervals"]
    lines.append("  held_out    " + "; ".join(
        f"{key} {before[key]:.3f} {interval_text(intervals[key]['a'])} -> {after[key]:.3f} "
        f"{interval_text(intervals[key]['b'])}, change {interval_text(intervals[key]['delta'])}" for key in FIGURES))
    gated = figures["gate"]
    lines.append(f"  in brackets, 95% bootstrap intervals (the texts resampled in pairs); McNemar's exact test p = "
                 f"{gated['mcnemar']['p']:.3g} ({gated['mcnemar']['a_only']} texts only the model gets right, "
                 f"{gated['mcnemar']['b_only']} only the version)")
    verdict = "allows" if gated["allowed"] else "refuses"
    lines.append(f"The gate {verdict} {figures['version']} against {figures['model']} on the held-out set"
                 + (": " + "; ".join(gated["reasons"]) if gated["reasons"] else
                    f" ({gated['benign_regressions']} benign regressions)."))
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
