"""Short runs of the benchmarks against the app served in this process: bench/load.py loads both APIs, and every
acknowledged verdict is found in the database; bench/metrics_load.py times verdicts with /metrics scraped."""

import json

import pytest
from servers import running_in_process

from bench.load import main as load_main
from bench.metrics_load import main as metrics_main


@pytest.mark.slow
def test_load_bench_smoke(cli, tmp_path):
    with running_in_process(tmp_path) as app:
        run = cli(load_main, "--url", app.url, "--db", app.db_path, "--clients", "2", "--seconds", "2",
                  "--burst", "4", "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    figures = json.loads(run.stdout)
    assert figures["errors"] == 0 and figures["model"] == "fake-moderation"
    assert all(figures["kinds"][kind]["requests"] > 0 for kind in ("moderate", "flag", "rest"))
    verdicts = figures["verdicts"]
    assert verdicts["acknowledged"] == figures["kinds"]["flag"]["requests"] > 0
    assert verdicts["lost"] == verdicts["wrong"] == 0
    assert figures["burst"]["ok"] + figures["burst"]["busy"] == 4


@pytest.mark.slow
def test_metrics_bench_smoke(cli, tmp_path):
    with running_in_process(tmp_path) as app:
        run = cli(metrics_main, "--url", app.url, "--db", app.db_path, "--predictions", "200", "--verdicts", "3",
                  "--rounds", "1", "--scrapers", "2", "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    figures = json.loads(run.stdout)
    assert figures["alone"]["verdicts"] == figures["scraped"]["verdicts"] == 3
    assert figures["scrapes_per_s"] > 0 and figures["ratio_p50"] > 0
