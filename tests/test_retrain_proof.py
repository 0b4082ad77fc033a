"""bench/retrain_proof.py stays runnable: on the tiny model it finds the corrections, trains an adapter on them,
measures both sets before and after (the held-out set with intervals) and reports the gate's decision; a pool that
shares a text with the held-out set is refused."""

import json

from bench.retrain_proof import main
from moderation.demo.recipe import split_seed
from moderation.prompt import format_record

RECORDS = split_seed()[0]
TRAIN = ["--max-steps", "4", "--eval-steps", "2", "--replay-ratio", "0"]


def write(path, records):
    path.write_text("".join(json.dumps({"text": format_record(text, label)}) + "\n" for text, label in records))
    return path


def test_the_proof_trains_on_the_corrections_and_measures_before_and_after(cli, tiny_model_dir, tmp_path):
    pool, held_out = write(tmp_path / "pool.jsonl", RECORDS[:60]), write(tmp_path / "held.jsonl", RECORDS[60:80])
    run = cli(main, "--pool", pool, "--held-out", held_out, "--model", tiny_model_dir, "--corrections", 10,
              "--out", tmp_path / "proof", "--json", *TRAIN)
    assert run.returncode == 0, run.stderr
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    assert (figures["corrections"], figures["held_out"]) == (10, 20)
    assert figures["corrections_before"] == {"accuracy": 0.0, "macro_f1": 0.0}, "every correction was wrong"
    assert figures["version"] != figures["model"] and set(figures["held_out_after"]) == {"accuracy", "macro_f1"}
    low, high = figures["held_out_intervals"]["accuracy"]["a"]
    assert low <= figures["held_out_before"]["accuracy"] <= high
    assert figures["gate"]["allowed"] is False and figures["gate"]["reasons"][0].startswith(
        "the gate set holds 20 texts, fewer than the 50 it needs"), "20 held-out texts are too few to decide on"
    shown = cli(main, "--pool", pool, "--held-out", held_out, "--model", tiny_model_dir, "--corrections", 10,
                "--out", tmp_path / "again", *TRAIN).stdout
    assert "  held_out    accuracy " in shown and ", change [" in shown
    assert "The gate refuses " in shown and "on the held-out set: the gate set holds 20 texts" in shown
    trained_on = (tmp_path / "proof" / "corrections.jsonl").read_text().splitlines()
    chose_on = (tmp_path / "proof" / "rest-of-pool.jsonl").read_text().splitlines()
    assert len(trained_on) == 10 and len(chose_on) == 50 and not set(trained_on) & set(chose_on)
    assert (tmp_path / "proof" / "adapter" / "report.json").exists()


def test_a_pool_that_shares_a_text_with_the_held_out_set_is_refused(cli, tiny_model_dir, tmp_path):
    pool, held_out = write(tmp_path / "pool.jsonl", RECORDS[:20]), write(tmp_path / "held.jsonl", RECORDS[19:30])
    run = cli(main, "--pool", pool, "--held-out", held_out, "--model", tiny_model_dir, "--out", tmp_path / "proof")
    assert run.returncode == 2 and "The pool and the held-out set share 1 texts" in run.stderr
    assert not (tmp_path / "proof").exists()
