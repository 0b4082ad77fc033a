"""Fine-tune a moderation model on curated records, with transformers' Trainer and peft.

LoRA on every projection of the model's attention and MLP is the default for models over 1B parameters, a full
fine-tune below; bf16 on a GPU. The loss counts the label continuations alone, in the card's layout
(:mod:`moderation.training.data`). Held-out records are never trained on: the checkpoint kept is the one with the
lowest loss on them (early stopping). :func:`save` writes the adapter (or the merged model) with ``version.json``;
``python -m moderation.training`` is the command line.
"""

import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model
from transformers import EarlyStoppingCallback, PrinterCallback, Trainer, TrainerCallback, TrainingArguments

from ..backends.base import context_length
from ..templates import Template
from ..versions import ModelVersion
from .data import IGNORE, LabelledText, TrainingData, WordDropout, training_sequences
from .progress import progress_line
from .recipe import Recipe

LORA_TARGETS = "all-linear"
"""peft's name for every linear layer but the output layer, whatever the architecture calls them: GPT-J's attention
and MLP projections (``q_proj``, ``k_proj``, ``v_proj``, ``out_proj``, ``fc_in``, ``fc_out``), Llama Guard's and
ShieldGemma's (``q_proj``, ``k_proj``, ``v_proj``, ``o_proj``, ``gate_proj``, ``up_proj``, ``down_proj``)."""
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


def with_lora(model, recipe: Recipe):
    """``model`` with LoRA adapters of ``recipe``'s rank, scale and dropout on :data:`LORA_TARGETS` (a peft model)."""
    return get_peft_model(model, LoraConfig(r=recipe.lora_r, lora_alpha=recipe.lora_alpha,
                                            lora_dropout=recipe.lora_dropout, target_modules=LORA_TARGETS,
                                            task_type="CAUSAL_LM"))


def fine_tune(model, tokenizer, data: TrainingData, recipe: Recipe, workdir: Path, template: Template, *,
              log=print) -> Trained:
    """Fine-tune ``model`` on ``data.train`` (records of ``template``'s policy, in its format), keeping the checkpoint
    with the lowest loss on ``data.held_out``.

    Checkpoints go to ``workdir``, removed once the best is loaded; ``log`` gets a progress line
    (:mod:`moderation.training.progress`) as training goes.
    """
    method = method_for(model, recipe.method)
    torch.manual_seed(recipe.seed)
    if method == "full":
        model = model.float()  # float32 master weights (a GPU trains in bf16 autocast over them)
    else:
        model = with_lora(model, recipe)
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
        data_collator=PackingCollator(tokenizer, recipe.per_sequence, context_length(model.config), template),
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
    """Turns a batch of records into right-padded sequences for the Trainer, in ``template``'s format (see
    :func:`~moderation.training.data.training_sequences`)."""

    def __init__(self, tokenizer, per_sequence: int, max_length: int, template: Template):
        self.tokenizer = tokenizer
        self.per_sequence = per_sequence
        self.max_length = max_length
        self.template = template

    def __call__(self, records: list[LabelledText]) -> dict[str, torch.Tensor]:
        sequences = training_sequences(self.tokenizer, records, self.per_sequence, self.max_length, self.template)
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
