import json

import torch
from safetensors.torch import load_file

from moderation.demo import DemoRecipe, build_demo_model, split_seed
from moderation.engine import Moderator
from moderation.prompt import format_record
from moderation.train import main as train_main


def test_demo_model_learns_its_training_set_and_reports_held_out_accuracy(demo_model_dir, demo_moderator):
    metrics = json.loads((demo_model_dir / "metrics.json").read_text())
    train, held_out = split_seed()
    assert metrics["train_records"] == len(train) and metrics["held_out_records"] == len(held_out)
    sample = train[:40]
    results = demo_moderator.moderate([text for text, _ in sample])
    right = sum(result.label == label for result, (_, label) in zip(results, sample))
    assert right >= 0.75 * len(sample), "five labels: chance is 20%"
    held = demo_moderator.moderate([text for text, _ in held_out])
    accuracy = sum(result.label == label for result, (_, label) in zip(held, held_out)) / len(held_out)
    assert metrics["held_out_accuracy"] == round(accuracy, 4) > 0.4


def test_demo_build_is_deterministic(tmp_path):
    recipe = DemoRecipe(vocab_size=300, n_embd=16, n_layer=1, n_head=2, rotary_dim=4, steps=3)
    first = build_demo_model(tmp_path / "a", recipe, progress=False)
    second = build_demo_model(tmp_path / "b", recipe, progress=False)
    assert first == second
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "a" / "tokenizer.json").read_bytes() == (tmp_path / "b" / "tokenizer.json").read_bytes()


def test_train_command_fine_tunes_a_checkpoint_on_jsonl(cli, tiny_model_dir, tmp_path):
    data = tmp_path / "feedback.jsonl"
    records = [("you are wonderful", "casual"), ("I will hurt them", "needs intervention")] * 10
    data.write_text("".join(json.dumps({"text": format_record(t, label)}) + "\n" for t, label in records))
    out = tmp_path / "tuned"
    run = cli(train_main, "--model", tiny_model_dir, "--data", data, "--out", out, "--steps", "60",
              "--learning-rate", "3e-3", "--warmup-steps", "5")
    assert run.returncode == 0, run.stderr
    assert "Trained on 20 records" in run.stdout
    tuned = Moderator.load(str(out))
    results = tuned.moderate(["you are wonderful", "I will hurt them"])
    assert [r.label for r in results] == ["casual", "needs intervention"]


def test_train_command_refuses_bad_data(cli, tiny_model_dir, tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"text": "no record here"}\n')
    run = cli(train_main, "--model", tiny_model_dir, "--data", data, "--out", tmp_path / "out")
    assert run.returncode == 2
    assert "bad.jsonl: line 1: Not a record of the form" in run.stderr
    assert not (tmp_path / "out").exists()
