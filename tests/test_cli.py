import json
import subprocess
import sys
from pathlib import Path

from moderation.labels import LABELS

ROOT = Path(__file__).parent.parent
KEYS = {"text", "label", "scores", "flagged", "intervene", "prompt", "model"}


def moderate(*args):
    return subprocess.run(
        [sys.executable, "-m", "moderation", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_json_output_one_object_per_text(demo_model_dir):
    run = moderate("--json", "--model", str(demo_model_dir), "I want to call in sick", "You idiot.")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 2
    first, second = map(json.loads, lines)
    assert set(first) == KEYS
    assert first["text"] == "I want to call in sick" and second["text"] == "You idiot."
    assert set(first["scores"]) == set(LABELS)
    assert abs(sum(first["scores"].values()) - 1) < 1e-6
    assert first["label"] == max(first["scores"], key=first["scores"].get)
    assert first["prompt"].endswith("Input: I want to call in sick\nOutput:")


def test_default_model_offline_without_gpu_is_the_demo_model(demo_model_dir):
    run = moderate("--json", "I want to call in sick")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert "demo" in result["model"]
    assert "demo model is in use" in run.stderr


def test_text_output_shows_label_probabilities_and_prompt(demo_model_dir):
    run = moderate("--model", str(demo_model_dir), "--threshold", "never", "Let's grab lunch")
    assert run.returncode == 0, run.stderr
    assert "Label: " in run.stdout and "intervene: no" in run.stdout
    assert all(label in run.stdout for label in LABELS)
    assert "  | Possible labels:" in run.stdout and "  | Input: Let's grab lunch" in run.stdout


def test_generate_mode_in_json_adds_the_generated_text(demo_model_dir):
    run = moderate("--json", "--mode", "generate", "--model", str(demo_model_dir), "hello there")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert set(result) == KEYS | {"generated"}


def test_bad_model_is_a_clear_error_without_traceback(tmp_path):
    run = moderate("--model", str(tmp_path / "missing"), "hello")
    assert run.returncode == 2
    assert "folder holding config.json" in run.stderr
    assert "Traceback" not in run.stderr


def test_empty_text_is_a_clear_error(demo_model_dir):
    run = moderate("--model", str(demo_model_dir), "   ")
    assert run.returncode == 2
    assert "empty" in run.stderr and "Traceback" not in run.stderr
