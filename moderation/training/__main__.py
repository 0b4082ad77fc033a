"""``python -m moderation.training``: fine-tune a moderation model on curated records into a new version.

LoRA is the default for models over 1B parameters, a full fine-tune below (``--lora`` and ``--full`` force one or
the other). The output folder holds the adapter (or, with ``--merge``, the merged model), ``version.json``, which
names the version, the model it was trained from and the hashes of the texts it trained on, and ``report.json`` /
``report.md``: the held-out records evaluated before and after training (:mod:`moderation.training.report`).

    python -m moderation.training --model M --data export.jsonl --out DIR [--eval-data FILE] [--lora | --full]
"""

import argparse
import os
import signal
import sys
from dataclasses import asdict
from pathlib import Path

from ..atomic_writes import check_free, remove_unfinished, written_whole
from ..backends.local.adapters import fingerprint
from ..backends.local.loading import load_model
from ..errors import USER_ERRORS, InvalidInput
from ..labelled_files import SEED_FILE, read_labelled
from ..loader import local_model
from ..models import family_format
from ..policy import CARD, read_policy
from ..prompt import text_hash
from ..templates import FORMATS, template_for
from ..versions import REPORT_MD, ModelVersion, model_reference, version_name
from .data import HELD_OUT_FRACTION, prepare
from .recipe import Recipe
from .report import held_out_gold, measure, write_report
from .trainer import LEARNING_RATES, SMALL_MODEL_LEARNING_RATE, fine_tune, method_for, save


def kind_of(method: str, merge: bool) -> str:
    """What the output folder holds: ``lora`` (an adapter), ``merged`` or ``full`` (whole models)."""
    if merge and method != "lora":
        raise InvalidInput("--merge puts a LoRA adapter into its base model: it needs --lora (a full fine-tune "
                           "is saved as a whole model anyway).", "merge")
    return "merged" if merge else method


def parse_args(argv=None) -> argparse.Namespace:
    """The command line of ``python -m moderation.training``."""
    parser = argparse.ArgumentParser(prog="python -m moderation.training", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="the model to start from: Hugging Face id, folder, or demo")
    parser.add_argument("--data", required=True, metavar="FILE",
                        help='the curated export: jsonl of {"text": "Input: ...\\nOutput: <label>"} (or text, label)')
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the adapter or model (must not exist)")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    parser.add_argument("--eval-data", metavar="FILE", help="held-out records: never trained on, they choose the "
                        "best checkpoint (default: a label-stratified share of --data)")
    parser.add_argument("--eval-fraction", type=float, default=HELD_OUT_FRACTION,
                        help="share of --data held out without --eval-data (default: %(default)s)")
    parser.add_argument("--policy", metavar="FILE", help="the policy the records are labelled in, whose header and "
                        "labels the model learns (a TOML file like those in policies/; default: the model card's)")
    parser.add_argument("--format", choices=FORMATS, help="the prompt format the model learns to answer in (default: "
                        "its family's: llama-guard for Llama Guard, yes-no for ShieldGemma and Granite Guardian, else "
                        "card)")
    parser.add_argument("--replay", metavar="FILE", help="examples in the policy mixed in so the model keeps what it "
                        "knew (default: the seed set, for the card's policy; none for another)")
    parser.add_argument("--replay-ratio", type=float, default=1.0,
                        help="replayed examples per curated record; 0 turns replay off (default: %(default)s)")
    method = parser.add_mutually_exclusive_group()
    method.add_argument("--lora", dest="method", action="store_const", const="lora",
                        help="train a LoRA adapter (the default for models over 1B parameters)")
    method.add_argument("--full", dest="method", action="store_const", const="full",
                        help="fine-tune every weight (the default for smaller models)")
    parser.add_argument("--merge", action="store_true", help="save the base model with the adapter merged in")
    parser.add_argument("--version", help="the new version's name (default: base, method and UTC time)")
    parser.add_argument("--started-by", metavar="NAME", help="who starts the training (written in version.json)")
    defaults = Recipe()
    parser.add_argument("--lora-r", type=int, default=defaults.lora_r, help="LoRA rank (default: %(default)s)")
    parser.add_argument("--lora-alpha", type=int, default=defaults.lora_alpha,
                        help="LoRA scale numerator: updates are scaled by alpha/r (default: %(default)s)")
    parser.add_argument("--learning-rate", type=float, help=f"default: over 1B parameters {LEARNING_RATES['lora']} "
                        f"for LoRA, {LEARNING_RATES['full']} for a full fine-tune; below, {SMALL_MODEL_LEARNING_RATE}")
    parser.add_argument("--epochs", type=float, default=defaults.epochs)
    parser.add_argument("--max-steps", type=int, default=defaults.max_steps, help="stop after this many steps")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="sequences a step")
    parser.add_argument("--per-sequence", type=int, default=defaults.per_sequence, help="records a sequence")
    parser.add_argument("--warmup-steps", type=int, default=defaults.warmup_steps)
    parser.add_argument("--eval-steps", type=int, default=defaults.eval_steps, help="steps between held-out losses")
    parser.add_argument("--patience", type=int, default=defaults.patience,
                        help="held-out losses without improvement before training stops")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    return parser.parse_args(argv)


def recipe_from(args: argparse.Namespace) -> Recipe:
    """The Recipe the command line asks for."""
    return Recipe(method=args.method, lora_r=args.lora_r, lora_alpha=args.lora_alpha,
                  learning_rate=args.learning_rate, epochs=args.epochs, max_steps=args.max_steps,
                  batch_size=args.batch_size, per_sequence=args.per_sequence, warmup_steps=args.warmup_steps,
                  eval_steps=args.eval_steps, patience=args.patience, seed=args.seed)


def stop_cleanly_on_sigterm() -> None:
    """Make SIGTERM remove the half-written version and end the process at once. Not by raising SystemExit: an
    exception raised by a signal handler is lost when the handler happens to run inside a ``__del__``."""

    def stop(*_):
        remove_unfinished()
        os._exit(128 + signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)


def main(argv=None) -> int:
    """Check the data, fine-tune, and save the new version; returns the exit code."""
    args = parse_args(argv)
    out = Path(args.out)
    recipe = recipe_from(args)
    stop_cleanly_on_sigterm()
    try:
        check_free(out, replace=args.force)
        policy = read_policy(args.policy) if args.policy else CARD
        template = template_for(args.format or family_format(args.model), policy)
        replay = args.replay or (SEED_FILE if policy.labels == CARD.labels else None)
        data = prepare(read_labelled(args.data, policy),
                       held_out=read_labelled(args.eval_data, policy) if args.eval_data else None,
                       held_out_fraction=args.eval_fraction,
                       replay=read_labelled(replay, policy) if replay and args.replay_ratio else [],
                       replay_ratio=args.replay_ratio, seed=args.seed)
        path, base_name, _ = local_model(args.model)
        model, tokenizer = load_model(path)
        method = method_for(model, recipe.method)
        kind = kind_of(method, args.merge)
    except (*USER_ERRORS, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"Training {method} on {len(data.train)} records ({data.replayed} of them replayed), judged on "
          f"{len(data.held_out)} held-out records; {data.dropped} left out as held out.", flush=True)
    version = ModelVersion(
        name=args.version or version_name(base_name, kind),
        kind=kind,
        base_model=model_reference(args.model),
        base_name=base_name,
        base_fingerprint=fingerprint(model),
        trained_texts=sorted({text_hash(text) for text, _ in data.train}),
        started_by=args.started_by,
        policy=policy.fields(),
        format=template.format,
    )
    gold = held_out_gold(data.held_out, policy)
    before = measure(model, tokenizer, base_name, gold, template)
    with written_whole(out, replace=args.force) as folder:
        trained = fine_tune(model, tokenizer, data, recipe, folder / ".checkpoints", template,
                            log=lambda line: print(line, flush=True))
        after = measure(trained.model, tokenizer, version.name, gold, template)
        details = {"records": len(data.train), "replayed": data.replayed, "held_out": len(data.held_out),
                   "held_out_loss": round(trained.held_out_loss, 4), "best_step": trained.best_step,
                   "steps": trained.steps, "recipe": {**asdict(recipe), "method": method}}
        version = ModelVersion(**{**asdict(version), "training": details})
        save(trained, tokenizer, folder, version, merge=args.merge)
        report = write_report(folder, before, after)
    print(f"Saved {version.name} ({kind}) to {out}: held-out loss {trained.held_out_loss:.4f} at step "
          f"{trained.best_step} of {trained.steps}; held-out accuracy {report['before']['accuracy']:.1%} before, "
          f"{report['after']['accuracy']:.1%} after ({report['fixed']} fixed, {report['broken']} broken; "
          f"{out / REPORT_MD}).", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
