"""bench/shadow.py stays runnable: on the tiny model, with its adapter as the shadow, a short run prints the p50s with
and without the shadow, their ratio, and what the shadow labelled."""

import json

import pytest
from servers import in_own_thread

from bench.shadow import main


@pytest.mark.slow
def test_the_shadow_bench_measures_both_arms(cli, tiny_model_dir, tiny_adapter_dir):
    run = in_own_thread(cli, main, "--model", tiny_model_dir, "--adapter", tiny_adapter_dir, "--requests", 20,
                        "--rounds", 1, "--json")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    assert figures["p50_ms"]["with"] > 0 and figures["p50_ms"]["without"] > 0 and figures["ratio"] > 0
    shadow = figures["last_round_shadow"]
    assert shadow["labelled"] + shadow["dropped"] == 20 + 20, "every answered text (the warm-up too) is counted"
