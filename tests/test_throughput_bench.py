"""bench/throughput.py stays runnable: a short run on the small random GPT-J prints every path's labels/s, and the
scored labels of one request at a time and of 32 queued at once are the same."""

import json

import pytest

from bench.throughput import main


@pytest.mark.slow
def test_the_throughput_bench_measures_every_path(cli):
    run = cli(main, "--size", "small", "--texts", 8, "--json")
    assert run.returncode == 0, run.stderr[-3000:]
    rows = json.loads(run.stdout)["rows"]
    assert {"baseline", "uncached", "concurrency_1", "queued_32"} <= set(rows)
    assert all(rows[path]["labels_per_s"] > 0 for path in ("baseline", "uncached", "concurrency_1", "queued_32"))
