"""Command line: measure a model and a prompt on a gold set and store the run, rank several models on one gold set
(a leaderboard: each model's run is stored), compare two stored runs, or put a version to the gate.

    python -m moderation.evaluate --data FILE | --accepted [--model M] [--adapter DIR] [--examples FILE] [--threshold T]
                                  [--mode score|generate] [--include-trained] [--db feedback.db] [--json]
    python -m moderation.evaluate --data FILE | --accepted --model A --model B ... [--policy FILE] [--json]
    python -m moderation.evaluate --compare RUN_A RUN_B [--db feedback.db] [--json]
    python -m moderation.evaluate --gate SERVING CANDIDATE --data FILE | --accepted [--max-benign-regressions N]
                                  [--min-gate-texts N] [--examples FILE] [--threshold T] [--db feedback.db] [--json]

``--gate`` exits with 1 when the gate refuses the candidate (0 when it allows it, 2 on an error).
"""

import argparse
import contextlib
import json
import os
import sys

from tqdm.auto import tqdm

from feedback.store import FeedbackStore

from ..command_line import (
    add_gate_options,
    add_mode_option,
    add_model_options,
    add_settings_options,
    model_specs,
    open_models,
    shared_policy,
)
from ..demo.recipe import DEMO_NOTICE
from ..errors import USER_ERRORS
from ..loader import open_reference
from ..models import ModelSpec, ServedModel, declared_policy, served_as
from . import compare, evaluate, gate_gold, gold_from_verdicts, heldout_gold, read_gold
from .gate import GateRules, gate, gate_runs
from .gold import GoldSet
from .leaderboard import leaderboard, timed_run
from .report import comparison_report, gate_report, leaderboard_report, run_report

REFUSED = 1
"""The exit code of a refusal by the gate."""


def main(argv=None) -> int:
    """Evaluate, compare two runs, or gate a version; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m moderation.evaluate", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", metavar="FILE", help="the gold set: jsonl or a JSON list of {text, label} or of "
                        "Input/Output records (moderation/data/heldout.jsonl is the shipped held-out set)")
    source.add_argument("--accepted", action="store_true", help="the gold set: the accepted verdicts in --db (with "
                        "--gate: those of the test split and of the texts a shadow disagreed on, with the shipped "
                        "held-out set: the app's gate set)")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--compare", nargs=2, type=int, metavar=("RUN_A", "RUN_B"), help="compare two stored runs")
    action.add_argument("--gate", nargs=2, metavar=("SERVING", "CANDIDATE"), help="compare CANDIDATE with SERVING on "
                        "the gold set and decide whether it may serve (each a model id, folder, demo, or a version "
                        "folder: an adapter serves on the model it was trained on); exit 1 when it may not")
    add_model_options(parser)
    add_settings_options(parser)
    add_mode_option(parser)
    parser.add_argument("--db", default="feedback.db", help="the feedback database, where runs are stored "
                        "(default: %(default)s)")
    parser.add_argument("--include-trained", action="store_true", help="keep the gold texts that the version "
                        "evaluated trained on (by default they are left out; the report says how many either way)")
    add_gate_options(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if not (args.compare or args.data or args.accepted):
        parser.error("give the gold set (--data FILE or --accepted), or --compare RUN_A RUN_B")
    if (args.accepted or args.compare) and not os.path.exists(args.db):
        print(f"error: no feedback database at {args.db}: pass --db with the app's database file.", file=sys.stderr)
        return 2
    try:
        if args.compare:
            comparison = run_comparison(args)
            shown = comparison if args.json else comparison_report(comparison, every_figure=True, text=str)
        elif args.gate:
            decision = run_gate(args)
            shown = decision if args.json else gate_report(decision, text=str)
        else:
            shown = labelled(args)
    except (*USER_ERRORS, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(shown, ensure_ascii=False, indent=2) if args.json else shown)
    return REFUSED if args.gate and not decision["allowed"] else 0


def labelled(args):
    """The model the options name on the gold set (its stored run), or several ranked (the leaderboard): what to
    print. A bad gold set is refused before any model loads."""
    gold = gold_for(args, declared_policy(model_specs(args)[0], shared_policy(args)))
    models = open_models(args)
    if len(models) > 1:
        board = run_leaderboard(gold, models, args.db)
        return board if args.json else leaderboard_report(board, text=str)
    run = run_evaluation(args, gold, models[0])
    return run_json(run, gold.conflicts, args.accepted) if args.json else \
        run_report(run, conflicts=gold.conflicts, detail=True, text=str)


def run_evaluation(args, gold: GoldSet, served: ServedModel) -> dict:
    """Label ``gold`` with ``served`` and store the run; returns the stored run."""
    with progress_bar() as shown:
        run = evaluate(served.moderator, gold, served.settings, args.mode, progress=shown,
                       include_trained=args.include_trained)
    if served.moderator.demo:
        print(f"Note: {DEMO_NOTICE}", file=sys.stderr)
    return store_runs(args.db, (served.settings, run))[0]


def run_leaderboard(gold: GoldSet, models: list[ServedModel], db: str) -> dict:
    """Every model on ``gold`` (each in its own format and policy, whose labels must be the gold set's), timed; the
    runs stored in ``db``; the leaderboard (:func:`~moderation.evaluate.leaderboard.leaderboard`)."""
    entries = []
    for model in models:
        with progress_bar(model.name) as shown:
            run, speed = timed_run(model.moderator, gold, model.settings, progress=shown)
        entries.append((model.name, run, speed))
    stored = store_runs(db, *((model.settings, run) for model, (_, run, _) in zip(models, entries)))
    return leaderboard([(name, run, speed) for (name, _, speed), run in zip(entries, stored)])


def gold_for(args, policy) -> GoldSet:
    """The gold set the options name (a file, or the accepted verdicts in ``--db``), labelled in ``policy``."""
    if args.accepted:
        with FeedbackStore(args.db) as store:
            return gold_from_verdicts(store.evaluations.accepted_labels(), policy)
    return read_gold(args.data, policy)


def run_gate(args) -> dict:
    """Both models' runs on the gold texts neither trained on, stored, and the gate's decision on them (in the
    candidate's format and policy, or ``--policy``)."""
    rules = GateRules(args.max_benign_regressions, args.min_gate_texts)
    shared = shared_policy(args)
    serving, candidate = (served_as(ModelSpec(None, reference), open_reference(reference, progress=False), shared,
                                    threshold=args.threshold) for reference in args.gate)
    settings = serving.moderator.check_settings(candidate.settings)
    if args.accepted:
        with FeedbackStore(args.db) as store:
            gold = gate_gold(store.evaluations.judging_labels(), heldout_gold())
    else:
        gold = read_gold(args.data, settings.policy)
    with progress_bar() as shown:
        runs = gate_runs(serving.moderator, candidate.moderator, gold, settings, progress=shown)
    return gate(*store_runs(args.db, *((settings, run) for run in runs)), rules)


@contextlib.contextmanager
def progress_bar(what: str = "Evaluating"):
    """A progress bar of the texts labelled, told as ``evaluate`` tells of them (shown only at a terminal)."""
    with tqdm(desc=what, unit="text", disable=None) as bar:

        def shown(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        yield shown


def store_runs(db: str, *runs: tuple) -> list[dict]:
    """``runs``, each (its settings, the run), stored in the database ``db`` with their templates, as stored."""
    with FeedbackStore(db) as store:
        for settings, _ in runs:
            store.save_template(settings.template.id, settings.template.to_json())
        return [store.evaluations.save(run) for _, run in runs]


def run_json(run: dict, conflicts, accepted: bool) -> dict:
    """What ``--json`` prints of a stored run: what it measured and its figures (and, for accepted verdicts, the
    texts whose labels disagreed)."""
    shown = [{"text": c.text, "labels": list(c.labels), "kept": c.kept} for c in conflicts]
    return {"run_id": run["id"], **{key: run[key] for key in ("created", "model", "version", "template", "threshold",
                                                               "mode", "gold_name", "gold_hash", "gold_size",
                                                               "trained_left_out", "trained_included")},
            **run["metrics"], **({"conflicts": shown} if accepted else {})}


def run_comparison(args) -> dict:
    """Both runs' figures side by side and the texts whose label flipped."""
    with FeedbackStore(args.db) as store:
        return compare(*(store.evaluations.get(run_id) for run_id in args.compare))


if __name__ == "__main__":
    sys.exit(main())
