"""The demo model: a small GPT-J trained on the project's seed examples, for machines that cannot run the 6B.

It is built once, deterministically, into a cache folder (``MODERATION_CACHE`` or
``~/.cache/moderation-playground``): a byte-level BPE tokenizer trained on the training texts, a GPT-J
initialised from a fixed seed, and a full fine-tune with :func:`moderation.train.fine_tune` on the seed set
(plus the card's four examples), stopped early on a label-stratified validation split of the seed set,
then calibrated on that split (temperature scaling). The shipped held-out set is never trained on and
chooses nothing; Evaluate's figures on it and on the validation split are saved beside the model in
``metrics.json``.
"""

import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from filelock import FileLock
from sklearn.metrics import log_loss
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPTJConfig, GPTJForCausalLM, PreTrainedTokenizerFast

from .engine import Moderator
from .evaluate import GoldSet, evaluate
from .folders import written_whole
from .labels import SEVERITY
from .local import LocalBackend
from .models import DEMO_NAME
from .prompt import CARD_EXAMPLES, HEADER
from .records import HELDOUT_FILE, SEED_FILE, read_labelled
from .train import Recipe, fine_tune
from .training_data import TrainingData, stratified_split

EOS = "<|endoftext|>"
FIGURES = ("accuracy", "macro_f1", "ece")
"""Evaluate's figures that ``metrics.json`` keeps for the validation split and the held-out set."""


@dataclass(frozen=True)
class DemoRecipe:
    """Everything that decides the demo model; a different recipe builds into a different folder."""

    vocab_size: int = 1536
    n_embd: int = 128
    n_layer: int = 1
    n_head: int = 4
    rotary_dim: int = 16
    n_positions: int = 2048
    dropout: float = 0.1
    validation_fraction: float = 0.15
    training: Recipe = field(default_factory=lambda: Recipe(
        method="full", learning_rate=2e-3, max_steps=400, warmup_steps=20, eval_steps=25, patience=3,
        word_dropout=0.15))
    temperatures: tuple[float, ...] = (0.8, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.5)
    """The temperatures calibration chooses from."""
    seed: int = 1

    def key(self) -> str:
        """A hash of the recipe and the records it trains and tests on."""
        content = json.dumps([asdict(self), split_seed()], sort_keys=True)
        return hashlib.sha256(content.encode()).hexdigest()[:12]


def cache_dir() -> Path:
    """Where built demo models live."""
    default = Path.home() / ".cache" / "moderation-playground"
    return Path(os.environ.get("MODERATION_CACHE", default))


def ensure_demo_model(recipe: DemoRecipe = DemoRecipe(), *, progress: bool = True) -> Path:
    """The folder of the demo model for ``recipe``, built first if it is not in the cache yet. Processes that
    start at once on an empty cache build it once: the others wait for the first one's build."""
    target = cache_dir() / f"demo-{recipe.key()}"
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(target.with_name(f"{target.name}.lock")):
        if not (target / "metrics.json").exists():
            build_demo_model(target, recipe, progress=progress)
    return target


def split_seed() -> tuple[list, list]:
    """(seed, held-out) records: the card's examples and the seed set, then the shipped held-out set."""
    card = [(example.text, example.label) for example in CARD_EXAMPLES]
    return card + read_labelled(SEED_FILE), read_labelled(HELDOUT_FILE)


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
                            folder / ".checkpoints", log=print if progress else lambda line: None)
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
    corpus = [HEADER] + [f"Input: {text}\nOutput: {label}" for text, label in records]
    corpus += [f"Input: {e.text}\nOutput: {e.label}" for e in CARD_EXAMPLES]
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


def main() -> int:
    """``python -m moderation.demo``: build the demo model into the cache now (if it is not there yet)."""
    print(ensure_demo_model())
    return 0


if __name__ == "__main__":
    sys.exit(main())
