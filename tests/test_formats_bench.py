"""bench/formats.py stays runnable: on a small checkpoint, a short run prints each format's labels/s, milliseconds
per text and prompts per text (Llama Guard's two answers come from one prompt; yes-no asks one prompt a label
after the first), and its cost against the card's layout."""

import json

from bench.formats import main


def test_the_formats_bench_measures_every_format(cli, family_model_dirs):
    run = cli(main, "--model", family_model_dirs["yes-no"], "--texts", 8, "--rounds", 1, "--json")
    assert run.returncode == 0, run.stderr
    figures = json.loads(run.stdout)
    formats = figures["formats"]
    assert set(formats) == {"card", "llama-guard", "yes-no"} and figures["labels"] == 5
    assert [formats[name]["queries_per_text"] for name in ("card", "llama-guard", "yes-no")] == [1, 2, 4]
    assert formats["card"]["cost_against_card"] == 1 and all(f["labels_per_second"] > 0 for f in formats.values())
    assert figures["weights_mib"] > 0
    assert formats["card"]["tokens_per_text"] < formats["llama-guard"]["tokens_per_text"], "the card asks the text"
