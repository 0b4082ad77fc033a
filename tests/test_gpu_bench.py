"""bench/gpu.py stays runnable: its dry run builds the tiny config on the CPU and runs the same measurements."""

import json

from bench.gpu import BATCHES, main


def test_the_gpu_benchmark_dry_run_measures_both_ways_at_each_batch_size(capsys):
    assert main(["--dry-run", "--texts", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dry_run"] is True and report["dtype"] == "torch.float32" and report["goal_met"] is None
    for way in ("card_pipeline", "ours"):
        assert list(report["results"][way]) == [str(size) for size in BATCHES]
        for row in report["results"][way].values():
            assert row["texts"] == 2 and row["labels_per_s"] > 0
    assert all(row["labelled"] == 2 for row in report["results"]["ours"].values()), "our path always labels"
