"""The leaderboard of several models on one gold set: its figures checked by hand on small runs (AUPRC for
flagged-or-not, benign false flags, the ranking, the texts each model gets wrong), in the card's policy and in a
nominal one, and a timed run on the fake backend."""

import json

import pytest
import sqlite_utils
from conftest import ROOT
from fakes import fake_moderator

from moderation.evaluate.__main__ import main as evaluate_main
from moderation.evaluate.gold import GoldSet
from moderation.evaluate.leaderboard import LATENCY_TEXTS, auprc_flagged, benign_flags, leaderboard, timed_run
from moderation.evaluate.metrics import compute_metrics
from moderation.policy import CARD, read_policy
from moderation.prompt import normalize_text
from moderation.settings import Settings

COMMUNITY = read_policy(ROOT / "policies" / "community.toml")
C, CAUTION = "casual", "needs caution"
SPEED = {"p50_ms": 12.0, "labels_per_second": 50.0}


def run(gold, labels, flagged, policy=CARD, texts=("a", "b", "c", "d")) -> dict:
    """A run of ``labels`` against ``gold``, whose probability of being flagged is ``flagged`` for each text."""
    harmless = policy.harmless
    items = [{"text": text, "gold": g, "label": label, "generated": None,
              "scores": {harmless: 1 - p, **{other: p / (len(policy.labels) - 1) for other in policy.labels[1:]}}}
             for text, g, label, p in zip(texts, gold, labels, flagged)]
    return {"gold_name": "gold", "gold_size": len(items), "items": items,
            "metrics": compute_metrics(list(gold), list(labels), None, policy.threshold, policy)}


def test_auprc_and_benign_flags_by_hand():
    gold = [C, CAUTION, "needs intervention", C]
    one = run(gold, [C, CAUTION, C, CAUTION], [0.1, 0.8, 0.4, 0.6])
    # flagged by gold: b and c. Ranked by P(flagged): b (0.8) right, d (0.6) wrong, c (0.4) right, a (0.1):
    # precision 1 at recall 1/2, then 2/3 at recall 1: AP = 1/2 * 1 + 1/2 * 2/3
    assert auprc_flagged(one) == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert [item["text"] for item in benign_flags(one)] == ["d"], "d is casual for gold, and flagged"
    assert auprc_flagged(run([C] * 4, [C] * 4, [0.1] * 4)) is None, "nothing to find: no AUPRC"


def test_models_are_ranked_by_macro_f1_and_each_texts_mistakes_are_listed():
    ok, spam, harassment = COMMUNITY.labels[:3]
    gold = [ok, spam, harassment, ok]
    right = run(gold, gold, [0.0, 1.0, 1.0, 0.0], COMMUNITY)
    loose = run(gold, [ok, spam, spam, spam], [0.1, 0.9, 0.9, 0.8], COMMUNITY)
    board = leaderboard([("loose", loose, SPEED), ("right", right, {"p50_ms": 30.0, "labels_per_second": 9.0})])
    assert [row["model"] for row in board["rows"]] == ["right", "loose"]
    assert board["rows"][0] == {"model": "right", "run": None, "accuracy": 1.0, "macro_f1": pytest.approx(3 / 5),
                                "auprc_flagged": 1.0, "benign_flags": 0, "p50_ms": 30.0, "labels_per_second": 9.0}
    assert board["rows"][1]["benign_flags"] == 1 and board["rows"][1]["accuracy"] == 0.5
    assert board["wrong"] == [{"text": "c", "gold": harassment, "labels": {"loose": spam, "right": harassment}},
                              {"text": "d", "gold": ok, "labels": {"loose": spam, "right": ok}}]
    assert board["gold"] == {"name": "gold", "size": 4}


def test_a_timed_run_measures_the_whole_set_and_single_texts():
    texts = [f"text {n}" for n in range(LATENCY_TEXTS + 4)] + ["I will hurt you"]
    gold = GoldSet("gold", tuple((normalize_text(text), C) for text in texts))
    moderator = fake_moderator()
    settings = Settings()
    run_, speed = timed_run(moderator, gold, settings)
    assert run_["gold_size"] == len(texts) and run_["metrics"]["accuracy"] == pytest.approx(20 / 21)
    assert speed["labels_per_second"] > 0 and speed["p50_ms"] > 0
    singles = [calls for calls in moderator.backend.calls if calls[1] == 1]
    assert len(singles) >= LATENCY_TEXTS, "the latency is that of texts labelled one at a time"


def test_the_command_line_ranks_three_formats_on_one_gold_file_and_stores_each_run(cli, family_model_dirs, tmp_path):
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps({"text": example.text, "label": example.label}) + "\n"
                            for example in COMMUNITY.examples))
    checkpoints = {**family_model_dirs, "card": family_model_dirs["yes-no"]}  # a small checkpoint takes any format
    models = [f"{format}={checkpoints[format]},format={format}" for format in ("card", "llama-guard", "yes-no")]
    db = tmp_path / "runs.db"
    run = cli(evaluate_main, "--data", gold, *(arg for model in models for arg in ("--model", model)),
              "--policy", ROOT / "policies" / "community.toml", "--db", db, "--json")
    assert run.returncode == 0, run.stderr
    board = json.loads(run.stdout)
    assert sorted(row["model"] for row in board["rows"]) == ["card", "llama-guard", "yes-no"]
    f1 = [row["macro_f1"] for row in board["rows"]]
    assert f1 == sorted(f1, reverse=True) and all(row["labels_per_second"] > 0 for row in board["rows"])
    assert board["gold"]["size"] == len(COMMUNITY.examples)
    stored = {row["model"]: row for row in sqlite_utils.Database(db)["evaluation_runs"].rows}
    assert {row["run"] for row in board["rows"]} == {row["id"] for row in stored.values()}, "a stored run a model"
    wrong = {item["text"] for item in board["wrong"]}
    for row in board["rows"]:
        figures = json.loads(sqlite_utils.Database(db)["evaluation_runs"].get(row["run"])["metrics"])
        assert figures["accuracy"] == pytest.approx(row["accuracy"])
        assert figures["accuracy"] == 1 or wrong, "a model that errs has its texts listed"
    text = cli(evaluate_main, "--data", gold, "--model", models[0], "--model", models[2], "--policy",
               ROOT / "policies" / "community.toml", "--db", db)
    assert text.returncode == 0 and "**2 models on the gold.jsonl** (8 texts), best macro-F1 first:" in text.stdout


def test_a_gold_file_in_another_policy_is_refused_before_any_model_loads(cli, tmp_path):
    gold = tmp_path / "gold.jsonl"
    gold.write_text(json.dumps({"text": "buy followers", "label": "spam"}) + "\n")
    run = cli(evaluate_main, "--data", gold, "--model", f"a={tmp_path / 'none'}", "--model", f"b={tmp_path / 'none'}")
    assert run.returncode == 2 and "gold.jsonl: line 1: Unknown label 'spam'" in run.stderr
