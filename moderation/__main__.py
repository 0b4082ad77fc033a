"""Command line: ``python -m moderation [--model [NAME=]M[,format=F][,policy=FILE]]... [--mode score|generate] [--json]
[--show-prompt] TEXT...`` (every text through every model), or a batch file through one model: ``python -m moderation
--input FILE --output FILE [--format jsonl|csv] [--record [--db FILE]]``."""

import argparse
import json
import sys

from tqdm.auto import tqdm

from .batch_files import MAX_CHARS, OUTPUTS, label_file
from .command_line import add_mode_option, add_model_options, add_settings_options, open_models
from .demo.recipe import DEMO_NOTICE
from .errors import USER_ERRORS


def main(argv=None) -> int:
    """Moderate the texts given on the command line, or a batch file; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m moderation", description="Label texts with a moderation model.")
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="texts to moderate")
    add_model_options(parser)
    add_settings_options(parser)
    add_mode_option(parser)
    parser.add_argument("--json", action="store_true", help="one JSON object per text per line")
    parser.add_argument("--show-prompt", action="store_true", help="print the whole prompt of each text too")
    batch = parser.add_argument_group("batch files")
    batch.add_argument("--input", metavar="FILE", help="label every row of FILE: .csv with a text column, .jsonl "
                       'with a "text" field, or .txt with one text a line (up to 100,000 rows)')
    batch.add_argument("--output", metavar="FILE", help="where the labelled rows go, one per input row, in order")
    batch.add_argument("--format", choices=OUTPUTS, help="output format (default: csv for a .csv output, else jsonl)")
    batch.add_argument("--max-chars", type=int, default=MAX_CHARS, help="a longer row gets an error (%(default)s)")
    batch.add_argument("--record", action="store_true", help="keep the predictions in the feedback database, "
                       "where they join the review queue")
    batch.add_argument("--db", default="feedback.db", help="the feedback database for --record (default feedback.db)")
    args = parser.parse_args(argv)
    if bool(args.input) == bool(args.texts):
        parser.error("give texts to moderate, or --input FILE (not both)")
    if args.input and not args.output:
        parser.error("--input needs --output FILE")
    if args.mode != "score" and args.input:
        parser.error("batch files are scored: leave out --mode generate")
    try:
        served = open_models(args)
        if any(model.moderator.demo for model in served):
            print(f"Note: {DEMO_NOTICE}", file=sys.stderr)
        if args.input:
            if len(served) > 1:
                parser.error("a batch file is labelled by one model: give one --model")
            return run_batch(args, served[0].moderator, served[0].settings)
        results = [result for model in served
                   for result in model.moderator.moderate(args.texts, model.settings, mode=args.mode)]
    except (*USER_ERRORS, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for result in results:
        print(json.dumps(_json(result), ensure_ascii=False) if args.json else _text(result, args.show_prompt))
    return 0


def run_batch(args, moderator, settings) -> int:
    """Label ``--input`` into ``--output`` with a progress bar, keeping the predictions with ``--record``."""
    store = None
    if args.record:
        from feedback.store import FeedbackStore  # this command line may open the store; the library never does

        store = FeedbackStore(args.db)
        store.save_template(settings.template.id, settings.template.to_json())
    try:
        with tqdm(desc="labelling", unit="row", file=sys.stderr, disable=None) as bar:
            def progress(done, total):
                bar.total = total
                bar.update(done - bar.n)

            run = label_file(args.input, args.output, lambda texts: moderator.moderate(texts, settings),
                             format=args.format, max_chars=args.max_chars, chunk_size=moderator.batch_size,
                             record=store.save_results if store else None, progress=progress,
                             policy=settings.policy)
    finally:
        if store is not None:
            store.close()
    kept = f", kept in {args.db}" if args.record else ""
    print(f"Labelled {run.labelled} of {run.rows} rows into {args.output} ({run.errors} with an error{kept}) in "
          f"{run.seconds:.1f} s, {run.rows / max(run.seconds, 1e-9):.1f} rows/s.", file=sys.stderr)
    return 0


def _json(result) -> dict:
    fields = ("text", "label", "scores", "flagged", "intervene", "prompt", "model")
    data = {key: getattr(result, key) for key in fields}
    if result.mode == "generate":
        data["generated"] = result.generated
    return data


def _text(result, show_prompt: bool) -> str:
    verdict = f"{result.label or 'no label'}  (flagged: {_yes(result.flagged)}, intervene: {_yes(result.intervene)})"
    lines = [f"Text: {result.text}", f"Label: {verdict}"]
    if result.mode == "generate":
        lines.append(f"Generated: {result.generated!r}")
    for label, probability in sorted(result.scores.items(), key=lambda item: -item[1]):
        lines.append(f"  {label:<24}{probability:7.1%}")
    lines.append(f"Model: {result.model}")
    if show_prompt:
        lines += ["Prompt:", *("  | " + line for line in result.prompt.split("\n"))]
    return "\n".join(lines + [""])


def _yes(value: bool) -> str:
    return "yes" if value else "no"


if __name__ == "__main__":
    sys.exit(main())
