"""Command line: measure a model and a prompt on a gold set and store the run, or compare two stored runs.

    python -m moderation.evaluate --data FILE | --accepted [--model M] [--adapter DIR] [--examples FILE] [--threshold T]
                                  [--mode score|generate] [--db feedback.db] [--json]
    python -m moderation.evaluate --compare RUN_A RUN_B [--db feedback.db] [--json]
"""

import argparse
import json
import os
import sys

from tqdm.auto import tqdm

from feedback.store import FeedbackStore

from ..command_line import add_mode_option, add_model_options, add_settings_options, open_models
from ..demo.recipe import DEMO_NOTICE
from ..errors import USER_ERRORS
from . import compare, evaluate, gold_from_verdicts, read_gold
from .report import comparison_report, run_report


def main(argv=None) -> int:
    """Evaluate, or compare two runs; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m moderation.evaluate", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", metavar="FILE", help="the gold set: jsonl or a JSON list of {text, label} or of "
                        "Input/Output records (moderation/data/heldout.jsonl is the shipped held-out set)")
    source.add_argument("--accepted", action="store_true", help="the gold set: the accepted verdicts in --db")
    source.add_argument("--compare", nargs=2, type=int, metavar=("RUN_A", "RUN_B"), help="compare two stored runs")
    add_model_options(parser)
    add_settings_options(parser)
    add_mode_option(parser)
    parser.add_argument("--db", default="feedback.db", help="the feedback database, where runs are stored "
                        "(default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if (args.accepted or args.compare) and not os.path.exists(args.db):
        print(f"error: no feedback database at {args.db}: pass --db with the app's database file.", file=sys.stderr)
        return 2
    try:
        if args.compare:
            comparison = run_comparison(args)
            shown = comparison if args.json else comparison_report(comparison, every_figure=True, text=str)
        else:
            run, conflicts = run_evaluation(args)
            shown = run_json(run, conflicts, args.accepted) if args.json else \
                run_report(run, conflicts=conflicts, detail=True, text=str)
    except (*USER_ERRORS, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(shown, ensure_ascii=False, indent=2) if args.json else shown)
    return 0


def run_evaluation(args) -> tuple[dict, tuple]:
    """Label the gold set and store the run; returns the stored run and the gold set's conflicts."""
    if args.accepted:
        with FeedbackStore(args.db) as store:
            gold = gold_from_verdicts(store.evaluations.accepted_labels())
    else:
        gold = read_gold(args.data)
    served = open_models(args)[0]
    moderator, settings = served.moderator, served.settings
    with tqdm(total=len(gold.items), desc="Evaluating", unit="text", disable=None) as bar:
        run = evaluate(moderator, gold, settings, args.mode, progress=lambda done, _: bar.update(done - bar.n))
    if moderator.demo:
        print(f"Note: {DEMO_NOTICE}", file=sys.stderr)
    with FeedbackStore(args.db) as store:
        store.save_template(settings.template.id, settings.template.to_json())
        return store.evaluations.save(run), gold.conflicts


def run_json(run: dict, conflicts, accepted: bool) -> dict:
    """What ``--json`` prints of a stored run: what it measured and its figures (and, for accepted verdicts, the
    texts whose labels disagreed)."""
    shown = [{"text": c.text, "labels": list(c.labels), "kept": c.kept} for c in conflicts]
    return {"run_id": run["id"], **{key: run[key] for key in ("created", "model", "version", "template", "threshold",
                                                               "mode", "gold_name", "gold_hash", "gold_size")},
            **run["metrics"], **({"conflicts": shown} if accepted else {})}


def run_comparison(args) -> dict:
    """Both runs' figures side by side and the texts whose label flipped."""
    with FeedbackStore(args.db) as store:
        return compare(*(store.evaluations.get(run_id) for run_id in args.compare))


if __name__ == "__main__":
    sys.exit(main())
