"""A short run of bench/load.py: it starts the app, loads both APIs, and finds every verdict in the database."""

import json
import subprocess
import sys

from conftest import ROOT


def test_load_bench_smoke(demo_model_dir):
    command = [sys.executable, "bench/load.py", "--clients", "2", "--seconds", "3", "--burst", "4", "--json"]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    figures = json.loads(run.stdout)
    assert figures["errors"] == 0 and figures["model"] == "playground-demo-gptj"
    assert all(figures["kinds"][kind]["requests"] > 0 for kind in ("moderate", "flag", "rest"))
    verdicts = figures["verdicts"]
    assert verdicts["acknowledged"] == figures["kinds"]["flag"]["requests"] > 0
    assert verdicts["lost"] == verdicts["wrong"] == 0
    assert figures["burst"]["ok"] + figures["burst"]["busy"] == 4
