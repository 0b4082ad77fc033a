"""Command line: ``python -m moderation [--model M] [--mode score|generate] [--json] TEXT...``."""

import argparse
import json
import sys

from .labels import DEFAULT_THRESHOLD, NEVER, SEVERITY
from .loading import ModelLoadError
from .models import open_moderator
from .prompt import PromptTemplate
from .remote import RemoteError


def main(argv=None) -> int:
    """Moderate the texts given on the command line; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m moderation", description="Label texts with a moderation model.")
    parser.add_argument("texts", nargs="+", metavar="TEXT", help="texts to moderate")
    parser.add_argument("--model", help="Hugging Face id or folder, or 'demo' (default: $MODERATION_MODEL, "
                        "else GPT-JT-Moderation-6B on a GPU or from the local cache, else the demo model)")
    parser.add_argument("--backend", choices=("local", "vllm"), default="local",
                        help="local: the model runs here; vllm: on the completions server at --base-url")
    parser.add_argument("--base-url", help="the vLLM server, like http://HOST:8000 (default: $MODERATION_BASE_URL)")
    parser.add_argument("--mode", choices=("score", "generate"), default="score",
                        help="score: probability of each label (default); generate: the card's greedy decoding")
    parser.add_argument("--threshold", choices=SEVERITY + (NEVER,), default=DEFAULT_THRESHOLD,
                        help="least severe label that intervenes (default: %(default)s)")
    parser.add_argument("--examples", metavar="FILE", help="few-shot examples, JSON or jsonl (default: the card's)")
    parser.add_argument("--json", action="store_true", help="one JSON object per text per line")
    args = parser.parse_args(argv)
    try:
        template = PromptTemplate.from_file(args.examples) if args.examples else PromptTemplate()
        moderator = open_moderator(args.model, backend=args.backend, base_url=args.base_url,
                                   template=template, threshold=args.threshold)
        results = moderator.moderate(args.texts, mode=args.mode)
    except (ModelLoadError, RemoteError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if moderator.demo:
        print("Note: the demo model is in use (a small GPT-J trained on the project's seed examples); "
              "its labels show how the playground works, not what GPT-JT-Moderation-6B would say.",
              file=sys.stderr)
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
