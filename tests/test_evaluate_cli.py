"""``python -m moderation.evaluate``, run in this process: its figures against scikit-learn's on the labels of
``python -m moderation``, comparisons of two prompts, gold sets from accepted verdicts, and the refusals."""

import contextlib
import io
import json

import pytest
import sqlite_utils
from servers import make_service
from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score

from moderation.__main__ import main as moderate_main
from moderation.evaluate import heldout_gold
from moderation.evaluate.__main__ import main as evaluate_main
from moderation.labelled_files import HELDOUT_FILE, SEED_FILE, read_labelled
from moderation.labels import SEVERITY
from moderation.policy import CARD
from moderation.prompt import text_hash
from moderation.training.__main__ import main as train_main
from moderation.versions import ModelVersion

TWO_EXAMPLES = [{"text": "Have a lovely day", "label": "casual"},
                {"text": "I will hurt you", "label": "needs intervention"}]


@pytest.fixture
def evaluate(cli):
    return lambda *args: cli(evaluate_main, *args)


def moderation_labels(*args) -> list[str]:
    """The labels ``python -m moderation --json`` gives the held-out texts."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert moderate_main(["--json", *map(str, args), *heldout_gold().texts]) == 0
    return [json.loads(line)["label"] for line in out.getvalue().splitlines()]


@pytest.fixture(scope="module")
def card_labels(demo_model_dir):
    return moderation_labels("--model", "demo")


@pytest.fixture
def two_examples(tmp_path):
    path = tmp_path / "examples.jsonl"
    path.write_text("".join(json.dumps(example) + "\n" for example in TWO_EXAMPLES))
    return path


def test_a_run_of_a_trained_version_records_its_name(evaluate, tiny_model_dir, tiny_adapter_dir, tmp_path):
    db = tmp_path / "runs.db"
    run = evaluate("--data", HELDOUT_FILE, "--model", tiny_model_dir, "--adapter", tiny_adapter_dir, "--db", db,
                   "--json")
    assert run.returncode == 0, run.stderr
    version = ModelVersion.read(tiny_adapter_dir)
    name = version.name
    assert (json.loads(run.stdout)["model"], json.loads(run.stdout)["version"]) == (version.base_name, name)
    assert version.base_name == str(tiny_model_dir) and " (version " + name + ")" in evaluate(
        "--data", HELDOUT_FILE, "--model", tiny_model_dir, "--adapter", tiny_adapter_dir, "--db", db).stdout
    assert sqlite_utils.Database(db)["evaluation_runs"].get(1)["version"] == name
    base = json.loads(evaluate("--data", HELDOUT_FILE, "--model", tiny_model_dir, "--db", db, "--json").stdout)
    assert (base["model"], base["version"]) == (str(tiny_model_dir), None)


def test_json_figures_are_scikit_learns_on_the_labels_of_the_moderation_command(evaluate, card_labels, tmp_path):
    run = evaluate("--data", HELDOUT_FILE, "--model", "demo", "--db", tmp_path / "runs.db", "--json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    gold = heldout_gold().labels
    assert report["accuracy"] == accuracy_score(gold, card_labels)
    assert report["macro_f1"] == f1_score(gold, card_labels, labels=SEVERITY, average="macro", zero_division=0)
    assert report["kappa_quadratic"] == cohen_kappa_score(gold, card_labels, labels=SEVERITY, weights="quadratic")
    assert (report["run_id"], report["n"], report["model"], report["mode"]) == (1, 129, "playground-demo-gptj", "score")
    assert {"per_label", "confusion", "flagged", "intervene", "mean_severity_error", "ece", "sweep"} <= set(report)
    assert sum(map(sum, report["confusion"]["matrix"])) == 129
    assert "Demo model in use." in run.stderr


def test_compare_of_two_prompts_lists_exactly_the_texts_whose_label_changed(evaluate, card_labels, two_examples,
                                                                           tmp_path):
    db = tmp_path / "runs.db"
    for extra in ([], ["--examples", two_examples]):
        assert evaluate("--data", HELDOUT_FILE, "--model", "demo", "--db", db, *extra).returncode == 0
    run = evaluate("--compare", 1, 2, "--db", db, "--json")
    assert run.returncode == 0, run.stderr
    comparison = json.loads(run.stdout)
    drafted = moderation_labels("--model", "demo", "--examples", two_examples)
    changed = [(text, gold, a, b) for (text, gold), a, b in zip(heldout_gold().items, card_labels, drafted) if a != b]
    assert changed, "the two prompts must label some texts differently for this test to mean anything"
    assert [(f["text"], f["gold"], f["a"], f["b"]) for f in comparison["flipped"]] == changed
    assert all(f["outcome"] == ("fixed" if f["b"] == f["gold"] else "broken" if f["a"] == f["gold"] else "still wrong")
               for f in comparison["flipped"])
    accuracy = comparison["metrics"]["accuracy"]
    assert accuracy["delta"] == pytest.approx(accuracy["b"] - accuracy["a"])
    assert accuracy["b"] - accuracy["a"] == pytest.approx((comparison["fixed"] - comparison["broken"]) / 129)
    assert comparison["same_gold"] and comparison["a"]["template"] != comparison["b"]["template"]


def test_readable_reports(evaluate, tiny_model_dir, tmp_path):
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps({"text": f"Input: {text}\nOutput: {label}"}) + "\n"
                            for text, label in heldout_gold().items[:2]))
    db = tmp_path / "runs.db"
    run = evaluate("--data", gold, "--model", tiny_model_dir, "--db", db, "--mode", "generate")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("**Run #1**: accuracy ") and "no label " in run.stdout
    assert "(on 2 texts)\n\nIn brackets, the 95% bootstrap interval of accuracy, macro_f1, kappa_quadratic (2000 " \
        "resamples of the texts, seeded)." in run.stdout
    assert "\n#1 " in run.stdout and f" {tiny_model_dir}, template " in run.stdout
    assert ", generate on gold.jsonl (2 texts)" in run.stdout
    assert "Confusion (rows: gold, columns: predicted):" in run.stdout
    assert "| gold | casual | possibly needs caution" in run.stdout and "| no label |\n" in run.stdout
    assert "- from needs intervention: precision" in run.stdout
    run = evaluate("--data", gold, "--model", tiny_model_dir, "--db", db, "--threshold", "never")
    assert run.returncode == 0 and "ECE " in run.stdout and "Intervene at never: " in run.stdout
    run = evaluate("--compare", 1, 2, "--db", db)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("**B fixes ") and "against A (run #1 → #2; " in run.stdout
    assert "\n- A: #1 " in run.stdout and "\n- B: #2 " in run.stdout
    assert "| intervene.support | 2 | 0 | -2 |\n" in run.stdout, "both texts intervene at needs caution"


def test_accepted_verdicts_are_a_gold_set_with_their_conflicts(evaluate, tiny_model_dir, tmp_path):
    service = make_service(tmp_path)
    shown = service.moderate(["You idiot", "You\nidiot", "lovely weather"])
    for prediction, label in zip(shown, ["casual", "needs caution", "casual"]):
        verdict = (service.confirm(prediction.id, reviewer="ana") if label == prediction.result.label else
                   service.flag(prediction.id, label, reviewer="ana"))
        service.set_status(verdict["id"], "accepted")
    service.store.close()
    run = evaluate("--accepted", "--model", tiny_model_dir, "--db", tmp_path / "feedback.db", "--json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert (report["gold_name"], report["n"]) == ("accepted verdicts", 2)
    assert report["conflicts"] == [{"text": "You idiot", "labels": ["casual", "needs caution"],
                                    "kept": "needs caution"}]


@pytest.mark.parametrize("content, message", [
    ('{"text": "fine", "label": "casual"}\n{"text": "rude", "label": "offensive"}\n',
     "gold.jsonl: line 2: Unknown label 'offensive'"),
    ('{"text": "fine", "label": "casual"}\n{"text": "cut off\n', "gold.jsonl: line 2: not valid JSON"),
    ("", "gold.jsonl holds no labelled texts"),
])
def test_a_bad_gold_file_is_refused_and_no_run_is_written(evaluate, tmp_path, content, message):
    gold = tmp_path / "gold.jsonl"
    gold.write_text(content)
    db = tmp_path / "runs.db"
    run = evaluate("--data", gold, "--model", tmp_path / "no-model", "--db", db)
    assert run.returncode == 2
    assert message in run.stderr and "Traceback" not in run.stderr
    assert not db.exists()


def test_an_unknown_run_is_refused_with_the_recent_runs(evaluate, tmp_path):
    service = make_service(tmp_path)
    first = service.evaluate(heldout_gold())
    service.store.close()
    run = evaluate("--compare", first["id"], 9, "--db", tmp_path / "feedback.db")
    assert run.returncode == 2
    assert run.stderr == ("error: No evaluation run 9. The latest runs:\n#1 " + first["created"][:16].replace("T", " ")
                          + " fake-moderation, template 1a1b5b81a154, threshold needs caution, score on held-out set "
                          "(129 texts)\n")
    assert sqlite_utils.Database(tmp_path / "feedback.db")["evaluation_runs"].count == 1
    run = evaluate("--compare", 2**64, first["id"], "--db", tmp_path / "feedback.db")
    assert run.returncode == 2 and run.stderr == f"error: No run {2**64}: run ids are whole numbers from 1 up.\n"


@pytest.mark.parametrize("args", [["--accepted"], ["--compare", "1", "2"]])
def test_without_the_database_nothing_is_created(evaluate, tmp_path, args):
    run = evaluate(*args, "--db", tmp_path / "missing.db")
    assert run.returncode == 2 and "no feedback database at" in run.stderr
    assert not (tmp_path / "missing.db").exists()


def test_a_version_is_evaluated_without_the_texts_it_trained_on(evaluate, tiny_model_dir, tmp_path):
    """A version trained on 10 texts of the held-out set (and 20 of the seed's): evaluating it on the held-out set
    leaves those 10 out and says so; --include-trained keeps them, and says that too."""
    heldout = read_labelled(HELDOUT_FILE, CARD)
    seed = read_labelled(SEED_FILE, CARD)
    data, chooser = tmp_path / "train.jsonl", tmp_path / "choose.jsonl"
    for path, records in ((data, heldout[:10] + seed[:20]), (chooser, seed[20:30])):
        path.write_text("".join(json.dumps({"text": text, "label": label}) + "\n" for text, label in records))
    adapter = tmp_path / "adapter"
    assert train_main(["--model", str(tiny_model_dir), "--data", str(data), "--eval-data", str(chooser), "--out",
                       str(adapter), "--lora", "--max-steps", "2", "--replay-ratio", "0", "--started-by", "ana"]) == 0
    version = ModelVersion.read(adapter)
    assert version.started_by == "ana"
    assert set(version.trained_texts) == {text_hash(text) for text, _ in heldout[:10] + seed[:20]}
    db = tmp_path / "runs.db"
    left_out = evaluate("--data", HELDOUT_FILE, "--adapter", adapter, "--db", db, "--json")
    assert left_out.returncode == 0, left_out.stderr
    run = json.loads(left_out.stdout)
    assert (run["gold_size"], run["n"], run["trained_left_out"], run["trained_included"]) == (119, 119, 10, 0)
    shown = evaluate("--data", HELDOUT_FILE, "--adapter", adapter, "--db", db).stdout
    assert "on heldout.jsonl (119 texts; 10 texts it trained on left out)" in shown
    kept = evaluate("--data", HELDOUT_FILE, "--adapter", adapter, "--db", db, "--include-trained")
    assert "on heldout.jsonl (129 texts, 10 of them trained on)" in kept.stdout
    stored = sqlite_utils.Database(db)["evaluation_runs"].get(3)
    assert (stored["gold_size"], stored["trained_left_out"], stored["trained_included"]) == (129, 0, 10)
    trained_only = tmp_path / "trained.jsonl"
    trained_only.write_text(data.read_text())
    refused = evaluate("--data", trained_only, "--adapter", adapter, "--db", db)
    assert refused.returncode == 2 and f"The version {version.name} trained on every text of the trained.jsonl" \
        in refused.stderr
