"""Building the demo model (:mod:`moderation.demo`): its tokenizer, a GPT-J from a fixed seed, the fine-tune,
the calibration and the figures kept in ``metrics.json``."""

import json
import sys
from dataclasses import asdict
from pathlib import Path

import torch
from sklearn.metrics import log_loss
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPTJConfig, GPTJForCausalLM, PreTrainedTokenizerFast

from ..atomic_writes import written_whole
from ..backends.local.backend import LocalBackend
from ..engine import Moderator
from ..evaluate import GoldSet, evaluate
from ..labelled_files import HELDOUT_FILE
from ..labels import SEVERITY
from ..policy import CARD
from ..prompt import format_record
from ..templates import PromptTemplate
from ..training.data import TrainingData, stratified_split
from ..training.trainer import fine_tune
from .recipe import DEMO_NAME, DemoRecipe, split_seed

EOS = "<|endoftext|>"
FIGURES = ("accuracy", "macro_f1", "ece")
"""Evaluate's figures that ``metrics.json`` keeps for the validation split and the held-out set."""


def build_demo_model(target: Path, recipe: DemoRecipe = DemoRecipe(), *, progress: bool = True) -> dict:
    """Train the demo model into ``target`` (written whole or not at all); returns its metrics."""
    seed, held_out = split_seed()
    train_records, validation = stratified_split(seed, recipe.validation_fraction, recipe.seed)
    tokenizer = train_tokenizer(train_records, recipe.vocab_size)
    model = new_gptj(
        tokenizer,
        n_embd=recipe.n_embd,
        n_layer=recipe.n_layer,
        n_head=recipe.n_head,
        rotary_dim=recipe.rotary_dim,
        n_positions=recipe.n_positions,
        dropout=recipe.dropout,
        seed=recipe.seed,
    )
    with written_whole(target, replace=True) as folder:
        trained = fine_tune(model, tokenizer, TrainingData(train_records, validation), recipe.training,
                            folder / ".checkpoints", PromptTemplate(CARD),
                            log=log_to_stderr if progress else lambda line: None)
        temperature = calibrate(trained.model, tokenizer, validation, recipe.temperatures)
        calibrated = Moderator(LocalBackend(trained.model, tokenizer), DEMO_NAME)
        metrics = {
            "train_records": len(train_records),
            "validation_records": len(validation),
            "held_out_records": len(held_out),
            "validation": figures(calibrated, "validation", validation),
            "held_out": figures(calibrated, HELDOUT_FILE.name, held_out),
            "temperature": temperature,
            "validation_loss": round(trained.held_out_loss, 4),
            "best_step": trained.best_step,
            "steps": trained.steps,
            "recipe": asdict(recipe),
        }
        trained.model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def log_to_stderr(line: str) -> None:
    """A line of the build's progress, on stderr: what a command prints on stdout stays its output alone."""
    print(line, file=sys.stderr, flush=True)


def new_gptj(tokenizer, *, n_embd, n_layer, n_head, rotary_dim, n_positions=2048, dropout=0.0, seed=0):
    """A randomly initialised GPT-J (the architecture of GPT-JT-Moderation-6B) sized for ``tokenizer``."""
    torch.manual_seed(seed)
    eos = tokenizer.eos_token_id
    config = GPTJConfig(
        vocab_size=len(tokenizer),
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        rotary_dim=rotary_dim,
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
        bos_token_id=eos,
        eos_token_id=eos,
        pad_token_id=eos,
    )
    return GPTJForCausalLM(config)


def train_tokenizer(records, vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE over the header and (text, label) records; newlines are always tokens of their own."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split("\n", behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    examples = [*records, *((example.text, example.label) for example in CARD.examples)]
    corpus = [CARD.header] + [format_record(text, label) for text, label in examples]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=EOS, pad_token=EOS)


def calibrate(model, tokenizer, records, temperatures) -> float:
    """Temperature scaling: divides the output layer by the one of ``temperatures`` under which the (text,
    label) ``records`` get the lowest log-loss over the five labels, and returns it."""
    head = model.lm_head
    weight, bias = head.weight.detach().clone(), head.bias.detach().clone()
    gold, labels = [label for _, label in records], sorted(SEVERITY)

    def scale(temperature: float) -> None:
        with torch.no_grad():
            head.weight.copy_(weight / temperature)
            head.bias.copy_(bias / temperature)

    def loss(temperature: float) -> float:
        scale(temperature)  # a new Moderator each time: its prefix cache holds the weights it was built with
        results = Moderator(LocalBackend(model, tokenizer), DEMO_NAME).moderate([text for text, _ in records])
        return log_loss(gold, [[result.scores[label] for label in labels] for result in results], labels=labels)

    best = min(temperatures, key=loss)
    scale(best)
    return best


def figures(moderator: Moderator, name: str, records) -> dict:
    """Evaluate's :data:`FIGURES` of ``moderator`` for the (text, label) ``records``, with the card's prompt."""
    run = evaluate(moderator, GoldSet(name, tuple(records)))
    return {key: round(run["metrics"][key], 4) for key in FIGURES}
