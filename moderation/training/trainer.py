"""Fine-tune a moderation model on curated records, with transformers' Trainer and peft.

LoRA on GPT-J's attention and MLP projections is the default for models over 1B parameters, a full
fine-tune below (``--lora`` and ``--full`` force one or the other); bf16 on a GPU. The loss counts the
label continuations alone, in the card's layout (:mod:`moderation.training.data`). Held-out records are
never trained on: the checkpoint kept is the one with the lowest loss on them (early stopping). The output
folder holds the adapter (or, with ``--merge``, the merged model), ``version.json``, which names the
version and the model it was trained from, and ``report.json`` / ``report.md``: the held-out records
evaluated before and after training (:mod:`moderation.training.report`).

    python -m moderation.training.trainer --model M --data export.jsonl --out DIR [--eval-data FILE] [--lora | --full]
"""

import argparse
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model
from transformers import EarlyStoppingCallback, PrinterCallback, Trainer, TrainerCallback, TrainingArguments

from ..backends.base import context_length
from ..backends.local.adapters import fingerprint
from ..backends.local.loading import load_model
from ..errors import USER_ERRORS, InvalidInput
from ..folders import check_free, stop_cleanly_on_sigterm, written_whole
from ..labelled_files import SEED_FILE, read_labelled
from ..loader import local_model
from ..versions import REPORT_MD, ModelVersion, model_reference, version_name
from .data import HELD_OUT_FRACTION, IGNORE, Record, TrainingData, WordDropout, pack_records, prepare
from .progress import progress_line
from .recipe import Recipe
from .report import held_out_gold, measure, write_report

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj", "fc_in", "fc_out")
"""GPT-J's attention (query, key, value, output) and MLP projections."""
LORA_ABOVE = 1_000_000_000
"""Models with more parameters than this are fine-tuned with LoRA unless told otherwise."""
LEARNING_RATES = {"lora": 2e-4, "full": 1e-5}
"""The default learning rates for a model over 1B parameters: LoRA's usual one, and the card's for a full
fine-tune."""
SMALL_MODEL_LEARNING_RATE = 2e-3
"""The default learning rate for smaller models (such as the demo model), whose updates move them less."""


@dataclass
class Trained:
    """A fine-tuned model (a peft model for LoRA) with its best checkpoint loaded, and how it got there."""

    model: object
    method: str
    held_out_loss: float
    best_step: int
    steps: int


def method_for(model, method: str | None) -> str:
    """``method`` if one is forced, else LoRA for models over :data:`LORA_ABOVE` parameters, full below."""
    if method is not None:
        return method
    return "lora" if model.num_parameters() > LORA_ABOVE else "full"


def learning_rate_for(model, method: str) -> float:
    """The default learning rate of ``method`` for ``model``: :data:`LEARNING_RATES` over 1B parameters,
    :data:`SMALL_MODEL_LEARNING_RATE` below."""
    return LEARNING_RATES[method] if model.num_parameters() > LORA_ABOVE else SMALL_MODEL_LEARNING_RATE


def fine_tune(model, tokenizer, data: TrainingData, recipe: Recipe, workdir: Path, *, log=print) -> Trained:
    """Fine-tune ``model`` on ``data.train``, keeping the checkpoint with the lowest loss on ``data.held_out``.

    Checkpoints go to ``workdir``, removed once the best is loaded; ``log`` gets a progress line
    (:mod:`moderation.training.progress`) as training goes.
    """
    method = method_for(model, recipe.method)
    torch.manual_seed(recipe.seed)
    if method == "full":
        model = model.float()  # float32 master weights (a GPU trains in bf16 autocast over them)
    else:
        model = get_peft_model(model, LoraConfig(r=recipe.lora_r, lora_alpha=recipe.lora_alpha,
                                                 lora_dropout=recipe.lora_dropout,
                                                 target_modules=list(LORA_TARGETS), task_type="CAUSAL_LM"))
    records = recipe.batch_size * recipe.per_sequence
    gpu = torch.cuda.is_available()
    arguments = TrainingArguments(
        output_dir=str(workdir),
        per_device_train_batch_size=records,
        per_device_eval_batch_size=records,
        learning_rate=recipe.learning_rate or learning_rate_for(model, method),
        weight_decay=recipe.weight_decay,
        num_train_epochs=recipe.epochs,
        max_steps=recipe.max_steps,
        lr_scheduler_type="constant_with_warmup",
        warmup_steps=recipe.warmup_steps,
        eval_strategy="steps",
        eval_steps=recipe.eval_steps,
        save_strategy="steps",
        save_steps=recipe.eval_steps,
        save_total_limit=1,
        save_only_model=True,
        load_best_model_at_end=True,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        logging_steps=max(1, recipe.eval_steps // 4),
        bf16=gpu and torch.cuda.is_bf16_supported(),
        use_cpu=not gpu,
        seed=recipe.seed,
        data_seed=recipe.seed,
        remove_unused_columns=False,
        label_names=["labels"],
        report_to="none",
        disable_tqdm=True,
    )
    trainer = LabelLossTrainer(
        model=model,
        args=arguments,
        data_collator=PackingCollator(tokenizer, recipe.per_sequence, context_length(model.config)),
        train_dataset=WordDropout(data.train, recipe.word_dropout, recipe.seed) if recipe.word_dropout else data.train,
        eval_dataset=data.held_out,
        callbacks=[EarlyStoppingCallback(early_stopping_patience=recipe.patience), ProgressLog(log)],
    )
    trainer.remove_callback(PrinterCallback)  # the progress lines say what it would print
    trainer.train()
    shutil.rmtree(workdir, ignore_errors=True)
    model.eval()
    state = trainer.state
    return Trained(model, method, state.best_metric, state.best_global_step, state.global_step)


class LabelLossTrainer(Trainer):
    """The Trainer, with the output layer computed only where the loss looks: at the positions that predict a
    label token. Over every position the vocabulary-wide layer is most of a small model's step (a quarter of
    the demo model's build), and for a large vocabulary most of a long sequence's memory."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The mean cross-entropy of the label tokens, as the model's own loss over ``labels`` computes it."""
        targets = inputs["labels"][:, 1:]  # the token each position predicts
        predicting = targets != IGNORE
        outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], logits_to_keep=1,
                        output_hidden_states=True)
        logits = model.get_output_embeddings()(outputs.hidden_states[-1][:, :-1][predicting])
        loss = torch.nn.functional.cross_entropy(logits.float(), targets[predicting])
        return (loss, outputs) if return_outputs else loss


class ProgressLog(TrainerCallback):
    """Hands a progress line with the latest loss (or held-out loss) to ``log`` whenever the Trainer logs."""

    FIGURES = ("loss", "eval_loss")

    def __init__(self, log):
        self.log = log

    def on_log(self, args, state, control, logs=None, **kwargs):
        figures = {name: logs[name] for name in self.FIGURES if name in (logs or {})}
        if figures:
            self.log(progress_line(state.global_step, state.max_steps, **figures))


class PackingCollator:
    """Packs a batch of records into right-padded sequences for the Trainer (see
    :func:`~moderation.training.data.pack_records`)."""

    def __init__(self, tokenizer, per_sequence: int, max_length: int):
        self.tokenizer = tokenizer
        self.per_sequence = per_sequence
        self.max_length = max_length

    def __call__(self, records: list[Record]) -> dict[str, torch.Tensor]:
        sequences = pack_records(self.tokenizer, records, self.per_sequence, self.max_length)
        width = max(len(ids) for ids, _ in sequences)
        pad = self.tokenizer.pad_token_id
        return {
            "input_ids": torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in sequences]),
            "attention_mask": torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in sequences]),
            "labels": torch.tensor([targets + [IGNORE] * (width - len(targets)) for _, targets in sequences]),
        }


def save(trained: Trained, tokenizer, folder: Path, version: ModelVersion, *, merge: bool = False) -> None:
    """Write the adapter (the merged model with ``merge``, or the whole model of a full fine-tune), the
    tokenizer and ``version.json`` into ``folder``."""
    model = trained.model.merge_and_unload() if merge else trained.model
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    version.write(folder)


def kind_of(method: str, merge: bool) -> str:
    """What the output folder holds: ``lora`` (an adapter), ``merged`` or ``full`` (whole models)."""
    if merge and method != "lora":
        raise InvalidInput("--merge puts a LoRA adapter into its base model: it needs --lora (a full fine-tune "
                           "is saved as a whole model anyway).", "merge")
    return "merged" if merge else method


def parse_args(argv=None) -> argparse.Namespace:
    """The command line of ``python -m moderation.training.trainer``."""
    parser = argparse.ArgumentParser(prog="python -m moderation.training.trainer", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="the model to start from: Hugging Face id, folder, or demo")
    parser.add_argument("--data", required=True, metavar="FILE",
                        help='the curated export: jsonl of {"text": "Input: ...\\nOutput: <label>"} (or text, label)')
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the adapter or model (must not exist)")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    parser.add_argument("--eval-data", metavar="FILE", help="held-out records: never trained on, they choose the "
                        "best checkpoint (default: a label-stratified share of --data)")
    parser.add_argument("--eval-fraction", type=float, default=HELD_OUT_FRACTION,
                        help="share of --data held out without --eval-data (default: %(default)s)")
    parser.add_argument("--replay", metavar="FILE", default=str(SEED_FILE),
                        help="base-format examples mixed in so the model keeps what it knew (default: the seed set)")
    parser.add_argument("--replay-ratio", type=float, default=1.0,
                        help="replayed examples per curated record; 0 turns replay off (default: %(default)s)")
    method = parser.add_mutually_exclusive_group()
    method.add_argument("--lora", dest="method", action="store_const", const="lora",
                        help="train a LoRA adapter (the default for models over 1B parameters)")
    method.add_argument("--full", dest="method", action="store_const", const="full",
                        help="fine-tune every weight (the default for smaller models)")
    parser.add_argument("--merge", action="store_true", help="save the base model with the adapter merged in")
    parser.add_argument("--version", help="the new version's name (default: base, method and UTC time)")
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


def main(argv=None) -> int:
    """Check the data, fine-tune, and save the new version; returns the exit code."""
    args = parse_args(argv)
    out = Path(args.out)
    recipe = recipe_from(args)
    stop_cleanly_on_sigterm()
    try:
        check_free(out, replace=args.force)
        data = prepare(read_labelled(args.data),
                       held_out=read_labelled(args.eval_data) if args.eval_data else None,
                       held_out_fraction=args.eval_fraction,
                       replay=read_labelled(args.replay) if args.replay_ratio else [],
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
    )
    gold = held_out_gold(data.held_out)
    before = measure(model, tokenizer, base_name, gold)
    with written_whole(out, replace=args.force) as folder:
        trained = fine_tune(model, tokenizer, data, recipe, folder / ".checkpoints",
                            log=lambda line: print(line, flush=True))
        after = measure(trained.model, tokenizer, version.name, gold)
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
