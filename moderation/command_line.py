"""The command-line options that the playground and ``python -m moderation`` share, each defined once."""

import argparse

from .labelled_files import read_examples
from .loader import BACKENDS, open_moderator
from .policy import CARD, NEVER, read_policy
from .results import MODES
from .settings import DEFAULT_INTERVENTION, Settings
from .templates import PromptTemplate


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--adapter``, ``--backend`` and ``--base-url``: which model labels, and where it runs."""
    parser.add_argument("--model", help="Hugging Face id or folder, or 'demo' (default: $MODERATION_MODEL, "
                        "else GPT-JT-Moderation-6B on a GPU or from the local cache, else the demo model)")
    parser.add_argument("--backend", choices=BACKENDS, default="local",
                        help="local: the model runs here; vllm: on the completions server at --base-url")
    parser.add_argument("--base-url", help="the vLLM server, like http://HOST:8000 (default: $MODERATION_BASE_URL)")
    parser.add_argument("--adapter", metavar="DIR", help="a LoRA adapter written by python -m moderation.training, put "
                        "on the model through peft (with --backend vllm: served by the server under its version "
                        "name); without --model, the model it was trained on")


def add_settings_options(parser: argparse.ArgumentParser, *, chat: bool = False) -> None:
    """``--policy``, ``--examples`` and ``--threshold`` (and ``--intervention`` where chat turns are checked)."""
    parser.add_argument("--policy", metavar="FILE", help="the policy: its labels, their order, descriptions, "
                        "threshold and examples, as a TOML file like those in policies/ (default: the model card's)")
    parser.add_argument("--examples", metavar="FILE", help="few-shot examples, JSON or jsonl, instead of the "
                        "policy's")
    parser.add_argument("--threshold", metavar="LABEL", help=f"least severe label that intervenes, or {NEVER!r} "
                        "(default: the policy's; the card's is needs caution)")
    if chat:
        parser.add_argument("--intervention", default=DEFAULT_INTERVENTION,
                            help="the reply a user sees instead of the bot's when a turn intervenes")
    else:
        parser.set_defaults(intervention=DEFAULT_INTERVENTION)


def add_mode_option(parser: argparse.ArgumentParser) -> None:
    """``--mode``: score each label (the default) or generate as the card's users do."""
    parser.add_argument("--mode", choices=MODES, default="score",
                        help="score: probability of each label (default); generate: the card's greedy decoding")


def open_model(args: argparse.Namespace, **options):
    """The Moderator that the model options of ``args`` name."""
    return open_moderator(args.model, backend=args.backend, base_url=args.base_url, adapter=args.adapter, **options)


def settings_from(args: argparse.Namespace) -> Settings:
    """The Settings that the settings options of ``args`` give."""
    policy = read_policy(args.policy) if args.policy else CARD
    policy = read_examples(args.examples, policy) if args.examples else policy
    return Settings(PromptTemplate(policy), args.threshold, args.intervention)
