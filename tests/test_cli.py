"""``python -m moderation``: run in this process on the trained demo model, and once as its own process."""

import json
import subprocess
import sys

import pytest
from conftest import ROOT

from moderation.__main__ import main
from moderation.labels import LABELS

KEYS = {"text", "label", "scores", "flagged", "intervene", "prompt", "model"}


@pytest.fixture
def moderate(cli):
    return lambda *args: cli(main, *args)


def test_json_output_one_object_per_text(moderate, demo_model_dir):
    run = moderate("--json", "--model", demo_model_dir, "I want to call in sick", "You idiot.")
    assert run.returncode == 0, run.stderr
    first, second = map(json.loads, run.stdout.splitlines())
    assert set(first) == KEYS
    assert first["text"] == "I want to call in sick" and second["text"] == "You idiot."
    assert set(first["scores"]) == set(LABELS) and abs(sum(first["scores"].values()) - 1) < 1e-6
    assert first["label"] == max(first["scores"], key=first["scores"].get)
    assert first["prompt"].endswith("Input: I want to call in sick\nOutput:")


@pytest.mark.slow
def test_the_entry_point_runs_the_default_model_offline_without_a_gpu(demo_model_dir):
    """The one run in a process of its own: ``python -m moderation`` as a user types it."""
    run = subprocess.run([sys.executable, "-m", "moderation", "--json", "I want to call in sick"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["model"] == "playground-demo-gptj"
    assert "Demo model in use." in run.stderr


def test_text_output_shows_label_and_probabilities_and_the_prompt_on_request(moderate, demo_model_dir):
    run = moderate("--model", demo_model_dir, "--threshold", "never", "Let's grab lunch", "See you")
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("Label: ") == 2 and "intervene: no" in run.stdout
    assert all(run.stdout.count(label) >= 2 for label in LABELS)
    assert "Possible labels:" not in run.stdout and len(run.stdout.splitlines()) == 2 * 9
    run = moderate("--model", demo_model_dir, "--show-prompt", "Let's grab lunch")
    assert "  | Possible labels:" in run.stdout and "  | Input: Let's grab lunch" in run.stdout


def test_generate_mode_in_json_adds_the_generated_text(moderate, demo_model_dir):
    run = moderate("--json", "--mode", "generate", "--model", demo_model_dir, "hello there")
    assert run.returncode == 0, run.stderr
    assert set(json.loads(run.stdout)) == KEYS | {"generated"}


def test_examples_file_sets_the_prompt(moderate, tiny_model_dir, tmp_path):
    examples = tmp_path / "examples.jsonl"
    examples.write_text(json.dumps({"text": "Have a nice day", "label": "casual"}) + "\n")
    run = moderate("--json", "--model", tiny_model_dir, "--examples", examples, "hi")
    assert run.returncode == 0, run.stderr
    assert "Input: Have a nice day\nOutput: casual\n\nInput: hi\nOutput:" in json.loads(run.stdout)["prompt"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "{tmp}/missing", "hello"], "folder holding config.json"),
        (["--model", "{tiny}", "   "], "The text is empty"),
        (["--model", "{tiny}", "--examples", "{tmp}/none.jsonl", "hi"], "No such file"),
        (["--backend", "vllm", "hi"], "--base-url"),
    ],
)
def test_bad_input_is_a_clear_error_without_traceback(moderate, tiny_model_dir, tmp_path, args, message):
    run = moderate(*(arg.format(tmp=tmp_path, tiny=tiny_model_dir) for arg in args))
    assert run.returncode == 2
    assert message in run.stderr and "Traceback" not in run.stderr
