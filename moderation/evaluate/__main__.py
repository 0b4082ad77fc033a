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

from feedback.evaluations import describe
from feedback.store import FeedbackStore

from ..command_line import add_mode_option, add_model_options, add_settings_options, open_model, settings_from
from ..demo.recipe import DEMO_NOTICE
from ..errors import USER_ERRORS
from ..labels import SEVERITY
from . import compare, evaluate, gold_from_verdicts, read_gold
from .compare import figure_text


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
        report = run_comparison(args) if args.compare else run_evaluation(args)
    except (*USER_ERRORS, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report, ensure_ascii=False, indent=2) if args.json else
          (comparison_text if args.compare else run_text)(report))
    return 0


def run_evaluation(args) -> dict:
    """Label the gold set, store the run, and return what ``--json`` prints."""
    settings = settings_from(args)
    if args.accepted:
        with FeedbackStore(args.db) as store:
            gold = gold_from_verdicts(store.evaluations.accepted_labels())
    else:
        gold = read_gold(args.data)
    moderator = open_model(args)
    moderator.check_settings(settings)
    with tqdm(total=len(gold.items), desc="Evaluating", unit="text", disable=None) as bar:
        run = evaluate(moderator, gold, settings, args.mode, progress=lambda done, _: bar.update(done - bar.n))
    if moderator.demo:
        print(f"Note: {DEMO_NOTICE}", file=sys.stderr)
    with FeedbackStore(args.db) as store:
        store.save_template(settings.template.id, settings.template.to_json())
        stored = store.evaluations.save(run)
    conflicts = [{"text": c.text, "labels": list(c.labels), "kept": c.kept} for c in gold.conflicts]
    return {"run_id": stored["id"], **{key: stored[key] for key in ("created", "model", "version", "template",
                                                                    "threshold", "mode", "gold_name", "gold_hash",
                                                                    "gold_size")},
            **stored["metrics"], **({"conflicts": conflicts} if args.accepted else {})}


def run_comparison(args) -> dict:
    """Both runs' figures side by side and the texts whose label flipped."""
    with FeedbackStore(args.db) as store:
        return compare(*(store.evaluations.get(run_id) for run_id in args.compare))


def version_text(run: dict) -> str:
    """`` (version NAME)`` for a run of a trained version, else nothing."""
    return f" (version {run['version']})" if run.get("version") else ""


def run_text(report: dict) -> str:
    """The readable report of a run."""
    lines = [f"Run #{report['run_id']}: {report['model']}{version_text(report)}, template {report['template']}, "
             f"{report['mode']} mode, intervene at {report['threshold']}",
             f"Gold set: {report['gold_name']}, {report['n']} texts (hash {report['gold_hash'][:12]})", "",
             f"Accuracy {report['accuracy']:.1%}   macro-F1 {report['macro_f1']:.3f}   "
             f"quadratic kappa {figure_text(report['kappa_quadratic'])}   "
             f"mean severity error {report['mean_severity_error']:.3f}   "
             + (f"ECE {report['ece']:.3f}" if "ece" in report else f"no label {report['no_label']:.1%}"),
             _decision("Flagged (not casual)", report["flagged"]),
             _decision(f"Intervene at {report['threshold']}", report["intervene"]), "",
             f"{'label':<24}{'precision':>10}{'recall':>8}{'f1':>7}{'support':>9}"]
    lines += [f"{label:<24}{s['precision']:>10.3f}{s['recall']:>8.3f}{s['f1']:>7.3f}{s['support']:>9}"
              for label, s in report["per_label"].items()]
    columns = report["confusion"]["labels"]
    lines += ["", "Confusion (rows: gold, columns: predicted, in this order):",
              *(f"  {n + 1}. {label}" for n, label in enumerate(columns)),
              "     " + "".join(f"{n + 1:>5}" for n in range(len(columns)))]
    lines += [f"{n + 1:>5}" + "".join(f"{count:>5}" for count in row)
              for n, row in enumerate(report["confusion"]["matrix"][: len(SEVERITY)])]
    lines += ["", "Intervention at each threshold:"]
    lines += [_decision(f"  from {step['threshold']}", step) for step in report["sweep"]]
    for conflict in report.get("conflicts", []):
        lines.append(f"Conflicting accepted labels ({' -> '.join(conflict['labels'])}; kept {conflict['kept']}): "
                     f"{conflict['text']}")
    return "\n".join(lines)


def comparison_text(report: dict) -> str:
    """The readable report of a comparison."""
    lines = ["A: " + describe(report["a"]), "B: " + describe(report["b"])]
    if not report["same_gold"]:
        lines.append("Warning: the runs were made on different gold sets; flips cover the texts both hold.")
    lines += ["", f"{'figure':<44}{'A':>9}{'B':>9}{'B - A':>9}"]
    lines += [f"{name:<44}{figure_text(f['a']):>9}{figure_text(f['b']):>9}{figure_text(f['delta']):>9}"
              for name, f in report["metrics"].items()]
    lines += ["", f"{len(report['flipped'])} flipped: {report['fixed']} fixed, {report['broken']} broken"]
    lines += [f"  {f['outcome']:<12}{f['a'] or 'no label'} -> {f['b'] or 'no label'} (gold {f['gold']}): {f['text']}"
              for f in report["flipped"]]
    return "\n".join(lines)


def _decision(title: str, scores: dict) -> str:
    return (f"{title}: precision {scores['precision']:.3f}, recall {scores['recall']:.3f}, f1 {scores['f1']:.3f} "
            f"({scores['support']} in the gold set)")


if __name__ == "__main__":
    sys.exit(main())
