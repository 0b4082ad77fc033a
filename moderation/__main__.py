"""Command line: ``python -m moderation [--model M] [--mode score|generate] [--json] TEXT...``."""

import argparse
import json
import sys

from .errors import USER_ERRORS
from .models import DEMO_NOTICE
from .options import add_mode_option, add_model_options, add_settings_options, open_model, settings_from


def main(argv=None) -> int:
    """Moderate the texts given on the command line; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m moderation", description="Label texts with a moderation model.")
    parser.add_argument("texts", nargs="+", metavar="TEXT", help="texts to moderate")
    add_model_options(parser)
    add_settings_options(parser)
    add_mode_option(parser)
    parser.add_argument("--json", action="store_true", help="one JSON object per text per line")
    args = parser.parse_args(argv)
    try:
        settings = settings_from(args)
        moderator = open_model(args)
        results = moderator.moderate(args.texts, settings, mode=args.mode)
    except (*USER_ERRORS, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if moderator.demo:
        print(f"Note: {DEMO_NOTICE}", file=sys.stderr)
    for result in results:
        print(json.dumps(_json(result), ensure_ascii=False) if args.json else _text(result))
    return 0


def _json(result) -> dict:
    fields = ("text", "label", "scores", "flagged", "intervene", "prompt", "model")
    data = {key: getattr(result, key) for key in fields}
    if result.mode == "generate":
        data["generated"] = result.generated
    return data


def _text(result) -> str:
    verdict = f"{result.label or 'no label'}  (flagged: {_yes(result.flagged)}, intervene: {_yes(result.intervene)})"
    lines = [f"Text: {result.text}", f"Label: {verdict}"]
    if result.mode == "generate":
        lines.append(f"Generated: {result.generated!r}")
    for label, probability in sorted(result.scores.items(), key=lambda item: -item[1]):
        lines.append(f"  {label:<24}{probability:7.1%}")
    lines += [f"Model: {result.model}", "Prompt:", *("  | " + line for line in result.prompt.split("\n")), ""]
    return "\n".join(lines)


def _yes(value: bool) -> str:
    return "yes" if value else "no"


if __name__ == "__main__":
    sys.exit(main())
