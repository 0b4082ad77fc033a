import io
import json
import pathlib
import re
import tracemalloc

import pytest
import sqlite_utils

from feedback.__main__ import main as feedback_main
from feedback.export import export_jsonl, verdict_rows
from feedback.store import FeedbackStore
from moderation.labels import LABELS
from moderation.policy import CARD

SCORES = {label: 0.2 for label in LABELS}
OIG_LINE = re.compile(r"^Input: [^\n]+\nOutput: (" + "|".join(map(re.escape, LABELS)) + r")$")

REVIEWED = [
    # text, model label, verdict, reviewer's label
    ("I want to call in sick", "casual", "right", None),
    ("I hate my job and\n  I don't want to go there.", "casual", "wrong", "possibly needs caution"),
    ("Ça suffit, je démissionne 😡", "needs caution", "wrong", "probably needs caution"),
    ('He said "leave" :-x *', "needs intervention", "right", None),
    ("You're sitting in the wrong section of the bus.", "casual", "wrong", "needs caution"),
]


@pytest.fixture
def store(tmp_path):
    with FeedbackStore(tmp_path / "feedback.db") as store:
        for text, model_label, verdict, label in REVIEWED:
            prediction_id = store.save_prediction(
                text=text, label=model_label, scores=SCORES, prompt=f"Input: {text}\nOutput:", model="demo"
            )
            store.add_verdict(prediction_id, verdict=verdict, label=label, reviewer="ann")
        yield store


@pytest.fixture(scope="module")
def big_db(tmp_path_factory):
    """A database of 20,000 verdicts, filled in bulk through sqlite-utils."""
    path = tmp_path_factory.mktemp("big") / "feedback.db"
    FeedbackStore(path).close()
    filler = "some words to make the text longer " * 6
    prompt = "Possible labels:\n" + "\n".join(f"{n}. {label}" for n, label in enumerate(LABELS, 1)) * 3
    db = sqlite_utils.Database(path)
    with db.atomic():
        db["predictions"].insert_all(
            {
                "id": n,
                "created": "2026-11-01T00:00:00.000000+00:00",
                "text": f"text {n} {filler}",
                "label": LABELS[n % 5],
                "scores": json.dumps(SCORES),
                "prompt": prompt,
                "model": "demo",
                "mode": "score",
            }
            for n in range(1, 20_001)
        )
        db["verdicts"].insert_all(
            {
                "id": n,
                "prediction_id": n,
                "verdict": "wrong" if n % 3 == 0 else "right",
                "label": LABELS[(n + 1) % 5] if n % 3 == 0 else LABELS[n % 5],
                "reviewer": "bulk",
                "created": "2026-11-02T00:00:00.000000+00:00",
                "updated": "2026-11-02T00:00:00.000000+00:00",
            }
            for n in range(1, 20_001)
        )
    db.close()
    return path


def read_lines(path):
    return [json.loads(line) for line in pathlib.Path(path).read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def run_cli(cli):
    """``python -m feedback ARGS``, run in this process."""
    return lambda *args: cli(feedback_main, *args)


@pytest.mark.slow
@pytest.mark.xdist_group("big-db")  # one worker fills the database for both
@pytest.mark.parametrize("format", ["full", "oig"])
def test_export_streams_with_bounded_memory(big_db, tmp_path, format):
    out_path = tmp_path / f"{format}.jsonl"
    with FeedbackStore(big_db) as store, open(out_path, "w", encoding="utf-8") as out:
        tracemalloc.start()
        try:
            count = export_jsonl(store, out, format=format)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    size = out_path.stat().st_size
    assert count == 20_000
    assert sum(1 for _ in open(out_path, encoding="utf-8")) == 20_000
    assert size > 5_000_000, size
    assert peak < 3_000_000, f"peak {peak} bytes for a {size} byte export"


def test_full_export_has_every_field(store):
    out = io.StringIO()
    assert export_jsonl(store, out, format="full") == 5
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert out.getvalue().endswith("\n")
    assert [row["id"] for row in rows] == [1, 2, 3, 4, 5]
    assert rows[2]["scores"] == SCORES
    assert rows[2]["text"] == REVIEWED[2][0]
    assert (rows[2]["model_label"], rows[2]["label"], rows[2]["verdict"]) == (
        "needs caution",
        "probably needs caution",
        "wrong",
    )
    assert {"prompt", "model", "reviewer", "status", "note", "created", "prediction_id"} <= set(rows[0])


def test_oig_lines(store, tmp_path, monkeypatch):
    path = tmp_path / "oig.jsonl"
    with open(path, "w", encoding="utf-8") as out:
        assert export_jsonl(store, out) == 5
    rows = read_lines(path)
    expected = [label or model_label for _, model_label, _, label in REVIEWED]
    for row, label in zip(rows, expected):
        assert list(row) == ["text", "split", "policy"] and row["split"] is None, "no text is accepted: no split yet"
        assert row["policy"] == {"name": "prosocial", "id": CARD.id}, "made without a template: the card's policy"
        assert OIG_LINE.match(row["text"]), row["text"]
        assert row["text"].endswith(f"\nOutput: {label}")
    folded = "Input: I hate my job and I don't want to go there.\nOutput: possibly needs caution"
    assert rows[1]["text"] == folded
    assert "Ça suffit, je démissionne 😡" in path.read_text(encoding="utf-8")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    import datasets

    dataset = datasets.load_dataset(
        "json", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf-cache")
    )
    assert dataset.num_rows == 5
    assert dataset["text"] == [row["text"] for row in rows]


def test_status_and_since_filters(store):
    store.curation.set_status(2, "accepted")
    store.curation.set_status(4, "accepted")
    store.curation.set_status(5, "discarded")
    for verdict_id, created in enumerate(
        ["2026-01-01T00:00:00", "2026-02-01T00:00:00", "2026-03-01T00:00:00", "2026-03-02T12:00:00"], 1
    ):
        store.db["verdicts"].update(verdict_id, {"created": created + ".000000+00:00"})

    def ids(**filters):
        out = io.StringIO()
        count = export_jsonl(store, out, format="full", **filters)
        rows = [json.loads(line) for line in out.getvalue().splitlines()]
        assert count == len(rows)
        return [row["id"] for row in rows]

    assert ids(status="accepted") == [2, 4]
    assert ids(status="discarded") == [5]
    assert ids(since="2026-03-01") == [3, 4, 5]
    assert ids(since="2026-03-02T11:00") == [4, 5]
    assert ids(since="2026-03-02T13:00:00+02:00") == [4, 5]
    assert ids(since="2026-03-02T13:00:00+00:00") == [5]
    assert ids(status="accepted", since="2026-02-15") == [4]
    assert [row["id"] for row in verdict_rows(store, batch_size=2)] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    "filters, hint",
    [
        ({"format": "csv"}, "oig, full"),
        ({"status": "done"}, "pending, accepted, discarded"),
        ({"since": "yesterday"}, "2026-11-29"),
    ],
)
def test_bad_export_arguments_write_nothing(store, filters, hint):
    out = io.StringIO()
    with pytest.raises(ValueError, match=hint):
        export_jsonl(store, out, **filters)
    assert out.getvalue() == ""


def test_cli_export(run_cli, store, tmp_path):
    store.curation.set_status(1, "accepted")
    path = tmp_path / "out" / "train.jsonl"
    path.parent.mkdir()
    result = run_cli("export", "--db", str(store.path), str(path))
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == f"Exported 5 rows to {path}"
    assert [row["text"] for row in read_lines(path)][0] == "Input: I want to call in sick\nOutput: casual"
    assert sorted(p.name for p in path.parent.iterdir()) == ["train.jsonl"]

    result = run_cli("export", "--db", str(store.path), "--format", "full", "--status", "accepted", "-")
    assert result.returncode == 0, result.stderr
    [row] = [json.loads(line) for line in result.stdout.splitlines()]
    assert (row["id"], row["scores"]) == (1, SCORES)
    assert "Exported 1 rows to stdout" in result.stderr


def test_cli_stats(run_cli, store):
    result = run_cli("stats", "--db", str(store.path), "--json")
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert (stats["predictions"], stats["verdicts"], stats["model_agreement"]) == (5, 5, 0.4)
    result = run_cli("stats", "--db", str(store.path))
    assert result.returncode == 0, result.stderr
    assert "Verdicts: 5" in result.stdout


def test_cli_missing_db(run_cli, tmp_path):
    missing = tmp_path / "missing.db"
    export = ["export", "--db", str(missing), str(tmp_path / "out.jsonl")]
    for args in (export, ["stats", "--db", str(missing)]):
        result = run_cli(*args)
        assert result.returncode == 2
        assert f"No feedback database at {missing}" in result.stderr
        assert "Traceback" not in result.stderr
        assert list(tmp_path.iterdir()) == []


def test_cli_bad_since(run_cli, store, tmp_path):
    path = tmp_path / "out.jsonl"
    result = run_cli("export", "--db", str(store.path), "--since", "last week", str(path))
    assert result.returncode == 2
    assert "2026-11-29" in result.stderr
    assert "Traceback" not in result.stderr
    assert not path.exists()
    assert not list(tmp_path.glob("out.jsonl*")), "a partial file was left behind"
