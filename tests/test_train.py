"""``python -m moderation.training``: the data it learns from and is judged on, the packed sequences, the folders it
writes (an adapter, a merged or a whole model, each with its version), what it refuses, and the demo model."""

import json
import math
from collections import Counter

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainingArguments

from moderation.backends.local.backend import LocalBackend
from moderation.backends.local.loading import load_model
from moderation.demo.build import build_demo_model, calibrate
from moderation.demo.recipe import DemoRecipe, split_seed
from moderation.engine import Moderator
from moderation.errors import InvalidInput
from moderation.evaluate import evaluate, read_gold
from moderation.labelled_files import HELDOUT_FILE
from moderation.loader import open_moderator
from moderation.policy import CARD
from moderation.prompt import format_record
from moderation.templates import PromptTemplate
from moderation.training.__main__ import main as train_main
from moderation.training.data import IGNORE, WordDropout, pack_records, prepare, stratified_split
from moderation.training.recipe import Recipe
from moderation.training.trainer import LabelLossTrainer, PackingCollator, learning_rate_for, method_for, with_lora
from moderation.versions import ModelVersion

FEW = [("you are wonderful", "casual"), ("I will hurt them", "needs intervention")]


class WordTokenizer:
    """Words (with the space before them) and newlines as tokens, so packed sequences can be read back."""

    pad_token_id = 0

    def __init__(self):
        self.vocab = {"<pad>": 0}

    def __call__(self, text, add_special_tokens=False):
        import re

        pieces = re.findall(r"\n| ?[^ \n]+", text)
        return {"input_ids": [self.vocab.setdefault(piece, len(self.vocab)) for piece in pieces]}

    def decode(self, ids):
        words = {index: piece for piece, index in self.vocab.items()}
        return "".join(words[i] for i in ids)


def write_jsonl(path, records):
    path.write_text("".join(json.dumps({"text": format_record(text, label)}) + "\n" for text, label in records))
    return path


@pytest.mark.parametrize("method", ["full", "lora"])
def test_the_loss_at_the_label_positions_alone_is_the_models_own(tiny_model_dir, tmp_path, method):
    """The trainer computes the output layer at the positions that predict a label token only: its loss and
    gradients equal those of the model's own loss over the packed labels (every position's logits)."""
    model, tokenizer = load_model(str(tiny_model_dir))
    if method == "lora":
        model = with_lora(model, Recipe(lora_r=4, lora_dropout=0.0))  # both passes see the same weights
    batch = PackingCollator(tokenizer, per_sequence=3, max_length=256, template=PromptTemplate())(split_seed()[0][:10])
    trainer = LabelLossTrainer(model=model, args=TrainingArguments(output_dir=str(tmp_path), use_cpu=True,
                                                                   report_to="none"))
    trained = [parameter for parameter in model.parameters() if parameter.requires_grad]

    def loss_and_gradients(loss):
        gradients = torch.autograd.grad(loss, trained)
        return loss.item(), gradients

    own, own_gradients = loss_and_gradients(model(**batch).loss)
    label_only, label_only_gradients = loss_and_gradients(trainer.compute_loss(model, batch))
    assert label_only == pytest.approx(own, rel=1e-6)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(own_gradients, label_only_gradients))


def test_records_are_packed_in_the_cards_layout_with_only_the_labels_learned():
    tokenizer = WordTokenizer()
    records = [("hello there", "casual"), ("you fool", "probably needs caution"), ("bye", "casual")]
    (first, second) = pack_records(tokenizer, records, per_sequence=2, max_length=100, header=CARD.header)
    ids, targets = first
    assert tokenizer.decode(ids) == (CARD.header + "\n" + "Input: hello there\nOutput: casual\n\n"
                                     "Input: you fool\nOutput: probably needs caution\n")
    assert tokenizer.decode(ids) == PromptTemplate().prefix.split("Input:")[0] + (
        "Input: hello there\nOutput: casual\n\nInput: you fool\nOutput: probably needs caution\n")
    learned = [token for token, target in zip(ids, targets) if target != IGNORE]
    assert learned == [target for target in targets if target != IGNORE]
    assert tokenizer.decode(learned) == " casual\n probably needs caution\n"
    assert tokenizer.decode(second[0]) == CARD.header + "\nInput: bye\nOutput: casual\n"


def test_a_record_too_long_for_a_sequence_is_cut_and_keeps_its_label():
    tokenizer = WordTokenizer()
    long_text = " ".join(f"word{n}" for n in range(200))
    sequences = pack_records(tokenizer, [("short", "casual"), (long_text, "needs caution")], 5, max_length=60,
                             header=CARD.header)
    assert len(sequences) == 2 and all(len(ids) <= 60 for ids, _ in sequences)
    ids, targets = sequences[1]
    assert len(ids) == 60 and tokenizer.decode(ids).endswith(" word27 word28\nOutput: needs caution\n")
    assert tokenizer.decode([t for t in targets if t != IGNORE]) == " needs caution\n"


def test_the_held_out_split_is_stratified_disjoint_and_repeatable():
    records, _ = split_seed()
    train, held = stratified_split(records, 0.2)
    assert len(held) == -(-len(records) // 5) and not {t for t, _ in train} & {t for t, _ in held}
    whole, part = Counter(label for _, label in records), Counter(label for _, label in held)
    assert all(abs(part[label] / len(held) - whole[label] / len(records)) < 0.02 for label in whole)
    assert stratified_split(records, 0.2) == (train, held)


@pytest.mark.parametrize("records", [FEW * 2, FEW + [("hello", "casual")] * 6])
def test_too_few_records_to_hold_out_are_refused_with_what_to_do(records):
    with pytest.raises(InvalidInput, match="too few to hold out a label-stratified 20%.*--eval-data FILE"):
        stratified_split(records, 0.2)


def test_held_out_texts_are_never_trained_on_and_replay_never_overrides_a_correction():
    curated = [("a", "casual"), ("b", "needs caution"), ("c", "casual"), ("d", "casual")]
    replay = [("b", "casual"), ("e", "casual"), ("f", "needs intervention"), ("g", "casual"), ("c", "casual")]
    data = prepare(curated, held_out=[("d", "casual")], replay=replay, replay_ratio=1.0)
    assert data.held_out == [("d", "casual")] and data.dropped == 1 and data.replayed == 3
    assert data.train[:3] == curated[:3]
    assert {text for text, _ in data.train[3:]} == {"e", "f", "g"}
    assert prepare(curated, held_out=[("d", "casual")], replay=replay, replay_ratio=0).replayed == 0


def test_word_dropout_keeps_labels_and_word_order_and_never_empties_a_text():
    text = "I will find you and hurt you tonight"
    words = text.split()
    dropped = WordDropout([(text, "needs intervention"), ("hi", "casual")], 0.5, seed=3)
    assert len(dropped) == 2 and dropped[1] == ("hi", "casual")
    seen = [dropped[0] for _ in range(200)]
    assert {label for _, label in seen} == {"needs intervention"}
    for shown, _ in seen:
        kept = iter(words)
        assert shown and all(word in kept for word in shown.split()), "a subsequence of the text's words"
    lengths = [len(shown.split()) for shown, _ in seen]
    assert 0.35 < sum(lengths) / len(lengths) / len(words) < 0.65 and max(lengths) == len(words)
    assert WordDropout([(text, "casual")], 1.0)[0] == (text, "casual"), "a text that would lose every word keeps all"


def train(cli, model_dir, data, out, *extra):
    return cli(train_main, "--model", model_dir, "--data", data, "--out", out, "--max-steps", "6",
               "--eval-steps", "3", "--learning-rate", "1e-2", *extra)


def test_lora_training_writes_an_adapter_with_its_version(cli, tiny_model_dir, tmp_path):
    data = write_jsonl(tmp_path / "export.jsonl", split_seed()[0][:60])
    out = tmp_path / "v1"
    run = train(cli, tiny_model_dir, data, out, "--lora", "--lora-r", "4", "--lora-alpha", "8")
    assert run.returncode == 0, run.stderr
    assert "Training lora on 96 records (48 of them replayed), judged on 12 held-out records" in run.stdout
    assert "step 3/6 eval_loss" in run.stdout
    config = json.loads((out / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"]) == (4, 8)
    adapted = {name.rsplit(".", 1)[-1] for name in config["target_modules"]}  # peft lists each layer's in full
    assert adapted == {"q_proj", "k_proj", "v_proj", "out_proj", "fc_in", "fc_out"}
    version = ModelVersion.read(out)
    assert (version.kind, version.base_model, version.training["held_out"]) == ("lora", str(tiny_model_dir), 12)
    assert version.name.startswith(f"{tiny_model_dir.name}-lora-") and f"Saved {version.name} (lora)" in run.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.jsonl", "v1"], "no checkpoints or partial folders"
    assert all(".lora_" in name for name in load_file(out / "adapter_model.safetensors")), "the adapter alone"


def test_the_report_holds_evaluate_figures_before_and_after_on_the_held_out_file(cli, tiny_model_dir, tmp_path):
    """python -m moderation.training ... --eval-data FILE --lora writes report.json with Evaluate's metrics before
    and after: the same figures an evaluation of the base model and of the served adapter gives."""
    seed = split_seed()[0]
    data = write_jsonl(tmp_path / "export.jsonl", seed[:60])
    held = write_jsonl(tmp_path / "held.jsonl", seed[200:230])
    out = tmp_path / "v2"
    run = train(cli, tiny_model_dir, data, out, "--eval-data", held, "--lora", "--replay-ratio", "0")
    assert run.returncode == 0, run.stderr
    assert (out / "adapter_config.json").exists()
    report = json.loads((out / "report.json").read_text())
    gold = read_gold(held)
    before = evaluate(open_moderator(str(tiny_model_dir)), gold)["metrics"]
    after = evaluate(open_moderator(str(tiny_model_dir), adapter=str(out)), gold)["metrics"]
    for name in ("accuracy", "macro_f1", "kappa_quadratic", "ece"):
        assert report["before"][name] == pytest.approx(before[name], abs=1e-6)
        assert report["after"][name] == pytest.approx(after[name], abs=1e-6)
    assert (report["before"]["confusion"], report["after"]["confusion"]) == (before["confusion"], after["confusion"])
    assert report["gold"] == {"name": "held-out records", "size": 30, "hash": gold.hash}
    assert report["fixed"] == sum(item["outcome"] == "fixed" for item in report["flipped"])
    assert f"held-out accuracy {before['accuracy']:.1%} before, {after['accuracy']:.1%} after" in run.stdout
    assert "| accuracy |" in (out / "report.md").read_text()


def test_a_merged_model_serves_as_the_adapter_does(cli, tiny_model_dir, tiny_adapter_dir, tmp_path):
    data = write_jsonl(tmp_path / "export.jsonl", split_seed()[0][:60])
    run = train(cli, tiny_model_dir, data, tmp_path / "merged", "--lora", "--merge", "--version", "v-merged")
    assert run.returncode == 0, run.stderr
    merged = open_moderator(str(tmp_path / "merged"))
    assert ModelVersion.read(tmp_path / "merged").kind == "merged"
    adapter = open_moderator(str(tiny_model_dir), adapter=str(tiny_adapter_dir))
    assert adapter.name == ModelVersion.read(tiny_adapter_dir).name
    texts = [text for text, _ in FEW]
    assert merged.name == "v-merged" and [r.model for r in merged.moderate(texts)] == ["v-merged"] * 2
    base = open_moderator(str(tiny_model_dir)).moderate(texts)
    assert any(abs(a.scores[k] - b.scores[k]) > 1e-3 for a, b in zip(adapter.moderate(texts), base) for k in a.scores)


def test_an_adapter_on_another_model_is_refused_naming_both(tiny_adapter_dir, demo_model_dir):
    from moderation.errors import ModelLoadError

    with pytest.raises(ModelLoadError) as error:
        open_moderator(str(demo_model_dir), adapter=str(tiny_adapter_dir))
    message = str(error.value)
    assert f"was trained on {ModelVersion.read(tiny_adapter_dir).base_name}" in message
    assert f"not on {demo_model_dir}" in message and "start with --model" in message


def test_the_cli_serves_an_adapter_and_names_its_version(cli, tiny_adapter_dir):
    from moderation.__main__ import main

    run = cli(main, "--json", "--adapter", tiny_adapter_dir, "hello there")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["model"] == ModelVersion.read(tiny_adapter_dir).name


def test_the_apps_own_options_serve_an_adapter_on_its_base(tiny_model_dir, tiny_adapter_dir):
    from moderation.command_line import open_models
    from playground.server import parse_args

    adapter = ["--adapter", str(tiny_adapter_dir)]
    for argv in (adapter, ["--model", str(tiny_model_dir), *adapter]):  # without --model: the base it names
        (served,) = open_models(parse_args(argv))
        moderator = served.moderator
        assert moderator.name == moderator.version.name == ModelVersion.read(tiny_adapter_dir).name
        assert moderator.moderate(["hello there"])[0].model == moderator.name


class Sized:
    """Stands in for a model of ``count`` parameters where only the count matters."""

    def __init__(self, count: int):
        self.count = count

    def num_parameters(self) -> int:
        return self.count


def test_lora_is_the_default_over_1b_parameters_and_either_method_can_be_forced():
    assert [method_for(Sized(count), None) for count in (6_050_000_000, 1_000_000_001, 1_000_000_000)] == [
        "lora", "lora", "full"]
    assert method_for(Sized(6_050_000_000), "full") == "full" and method_for(Sized(1000), "lora") == "lora"
    assert learning_rate_for(Sized(6_050_000_000), "lora") == 2e-4 and learning_rate_for(Sized(1000), "lora") == 2e-3


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "holds no labelled texts"),
        ('{"text": "no record here"}\n', "export.jsonl: line 1: Not a record of the form"),
        ('{"text": "Input: hi\\nOutput: casual"}\n{"text": "Input: x\\nOutput: spam"}\n',
         "export.jsonl: line 2: Unknown label 'spam'"),
        ("not json\n", "export.jsonl: line 1: not valid JSON"),
        (json.dumps({"text": format_record(*FEW[0])}) + "\n", "too few to hold out"),
    ],
)
def test_bad_exports_are_refused_before_any_training(cli, tiny_model_dir, tmp_path, content, message):
    data = tmp_path / "export.jsonl"
    data.write_text(content)
    run = cli(train_main, "--model", tiny_model_dir, "--data", data, "--out", tmp_path / "out")
    assert run.returncode == 2 and message in run.stderr
    assert "step" not in run.stdout and not (tmp_path / "out").exists()


def test_an_existing_folder_is_replaced_only_with_force(cli, tiny_model_dir, tmp_path):
    data = write_jsonl(tmp_path / "export.jsonl", split_seed()[0][:60])
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    run = train(cli, tiny_model_dir, data, out)
    assert run.returncode == 2 and "already exists: choose another --out folder, or pass --force" in run.stderr
    assert (out / "keep.txt").read_text() == "mine"
    assert train(cli, tiny_model_dir, data, out, "--force", "--full").returncode == 0
    assert not (out / "keep.txt").exists() and ModelVersion.read(out).kind == "full"


def test_merge_needs_lora(cli, tiny_model_dir, tmp_path):
    data = write_jsonl(tmp_path / "export.jsonl", split_seed()[0][:60])
    run = train(cli, tiny_model_dir, data, tmp_path / "out", "--full", "--merge")
    assert run.returncode == 2 and "--merge puts a LoRA adapter into its base model" in run.stderr


def test_models_under_1b_parameters_are_fully_fine_tuned_by_default(cli, tiny_model_dir, tmp_path):
    data = write_jsonl(tmp_path / "export.jsonl", split_seed()[0][:60])
    run = train(cli, tiny_model_dir, data, tmp_path / "out")
    assert run.returncode == 0 and "Training full on" in run.stdout
    assert ModelVersion.read(tmp_path / "out").kind == "full"


def test_demo_model_reports_evaluates_figures_on_the_held_out_set(demo_model_dir, demo_moderator):
    metrics = json.loads((demo_model_dir / "metrics.json").read_text())
    seed, held_out = split_seed()
    assert metrics["train_records"] + metrics["validation_records"] == len(seed)
    assert metrics["held_out_records"] == len(held_out) and metrics["best_step"] <= metrics["steps"]
    assert metrics["temperature"] in DemoRecipe().temperatures
    figures = evaluate(demo_moderator, read_gold(HELDOUT_FILE))["metrics"]
    assert metrics["held_out"] == {key: round(figures[key], 4) for key in ("accuracy", "macro_f1", "ece")}
    assert metrics["held_out"]["accuracy"] >= 0.65 and metrics["held_out"]["ece"] <= 0.10, "the demo model's targets"


def test_calibration_keeps_the_temperature_with_the_lowest_log_loss(tiny_model_dir):
    model, tokenizer = load_model(str(tiny_model_dir))
    weight = model.lm_head.weight.detach().clone()
    records = split_seed()[0][:20]

    def log_loss_at(temperature):
        with torch.no_grad():
            model.lm_head.weight.copy_(weight / temperature)
            model.lm_head.bias.zero_()
        results = Moderator(LocalBackend(model, tokenizer), "tiny").moderate([text for text, _ in records])
        return -sum(math.log(result.scores[label]) for result, (_, label) in zip(results, records)) / len(records)

    losses = {temperature: log_loss_at(temperature) for temperature in (0.5, 1.0, 4.0)}
    model.lm_head.weight.data.copy_(weight)
    chosen = calibrate(model, tokenizer, records, (0.5, 1.0, 4.0))
    assert losses[chosen] == min(losses.values()) and len(set(losses.values())) == 3
    assert torch.allclose(model.lm_head.weight, weight / chosen), "the model keeps the chosen temperature"


@pytest.mark.slow
def test_demo_build_is_deterministic_and_shows_its_progress_on_stderr(tmp_path, capfd):
    """Two builds give the same bytes; the progress goes to stderr, so a command's stdout (its JSON) stays whole
    when the demo model is built on first use."""
    recipe = DemoRecipe(vocab_size=300, n_embd=16, n_layer=1, n_head=2, rotary_dim=4, temperatures=(1.0, 2.0),
                        validation_fraction=0.05,
                        training=Recipe(method="full", learning_rate=1e-3, max_steps=4, eval_steps=2))
    first = build_demo_model(tmp_path / "a", recipe, progress=False)
    capfd.readouterr()
    second = build_demo_model(tmp_path / "b", recipe, progress=True)
    shown = capfd.readouterr()
    assert shown.out == "" and "step 4/4" in shown.err
    assert first == second
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "a" / "tokenizer.json").read_bytes() == (tmp_path / "b" / "tokenizer.json").read_bytes()
