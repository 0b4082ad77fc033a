"""The command-line options that the playground and ``python -m moderation`` share, each defined once."""

import argparse
from dataclasses import replace

from .errors import InvalidInput
from .evaluate.gate import MAX_BENIGN_REGRESSIONS, MIN_GATE_TEXTS
from .labelled_files import read_examples
from .loader import BACKENDS
from .models import ModelSpec, ServedModel, check_names, open_served, parse_spec, read_specs
from .policy import CARD, NEVER, Policy, read_policy
from .results import MODES
from .settings import DEFAULT_INTERVENTION
from .templates import FORMATS


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """``--model`` (repeated for several), ``--models``, ``--adapter``, ``--backend`` and ``--base-url``: which
    models label, in which prompt format and policy, and where they run."""
    parser.add_argument("--model", action="append", metavar="[NAME=]MODEL[,format=F][,policy=FILE]",
                        help="Hugging Face id or folder, or 'demo' (default: $MODERATION_MODEL, else "
                        "GPT-JT-Moderation-6B on a GPU or from the local cache, else the demo model); repeat it to "
                        f"serve several, the first the default. Each may name its format ({', '.join(FORMATS)}; "
                        "default: its family's), policy, backend, base_url and adapter")
    parser.add_argument("--models", metavar="FILE", help="the models as a TOML file of [[models]] tables (name, "
                        "model, and the same options), before any --model")
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


def add_gate_options(parser: argparse.ArgumentParser) -> None:
    """``--max-benign-regressions`` and ``--min-gate-texts``: the rules of the gate a version passes before it
    serves (:class:`~moderation.evaluate.gate.GateRules`)."""
    parser.add_argument("--max-benign-regressions", type=at_least_zero, default=MAX_BENIGN_REGRESSIONS, metavar="N",
                        help="the gate refuses a version that flags more texts than this that the serving model and "
                        "gold call benign (default: %(default)s)")
    parser.add_argument("--min-gate-texts", type=at_least_zero, default=MIN_GATE_TEXTS, metavar="N",
                        help="the gate refuses to judge on fewer texts than this (default: %(default)s)")


def at_least_zero(text: str) -> int:
    """An option's type: a whole number, 0 or more, else a message that says so."""
    if not text.isdigit() or not text.isascii():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number, 0 or more")
    return int(text)


def add_mode_option(parser: argparse.ArgumentParser) -> None:
    """``--mode``: score each label (the default) or generate as the card's users do."""
    parser.add_argument("--mode", choices=MODES, default="score",
                        help="score: probability of each label (default); generate: the card's greedy decoding")


def model_specs(args: argparse.Namespace) -> list[ModelSpec]:
    """The models that ``--models`` and each ``--model`` name (the default model when none does)."""
    shared = {"backend": args.backend, "base_url": args.base_url}
    specs = read_specs(args.models, **shared) if args.models else []
    specs += [parse_spec(text, **shared) for text in args.model or ()]
    specs = specs or [ModelSpec(None, None, **shared)]
    if args.adapter:
        if len(specs) > 1:
            raise InvalidInput("--adapter puts one adapter on one model: with several, give each its own "
                               "(--model NAME=MODEL,adapter=DIR).", "adapter")
        specs = [replace(specs[0], adapter=args.adapter)]
    return specs


def open_models(args: argparse.Namespace, **options) -> list[ServedModel]:
    """The models that the model options of ``args`` name, each with the settings it moderates with
    (:func:`~moderation.models.open_served`; the shared policy is what ``--policy`` and ``--examples`` give)."""
    shared = shared_policy(args)
    served = [open_served(spec, shared, threshold=args.threshold, intervention=args.intervention, **options)
              for spec in model_specs(args)]
    check_names([model.name for model in served])
    return served


def shared_policy(args: argparse.Namespace) -> Policy | None:
    """The policy that ``--policy`` and ``--examples`` give (the card's with the examples, without ``--policy``), for
    the models that name none; None when neither is given."""
    if not (args.policy or args.examples):
        return None
    policy = read_policy(args.policy) if args.policy else CARD
    return read_examples(args.examples, policy) if args.examples else policy
