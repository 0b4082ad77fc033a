"""Batch files: the streaming module on the fake backend (formats, bad rows, bad files), and
``python -m moderation --input FILE --output FILE`` on a small GPT-J."""

import csv
import fcntl
import json
import os
import re
import select
import struct
import sys
import termios
import tracemalloc

import pytest
from fakes import expected_scores, fake_moderator

from feedback.store import FeedbackStore
from moderation.__main__ import main as moderation_main
from moderation.batch_files import csv_columns, label_file
from moderation.errors import InvalidInput
from moderation.labels import LABELS
from moderation.policy import CARD

EMPTY = "The text is empty"


@pytest.fixture
def label():
    moderator = fake_moderator()
    return lambda texts: moderator.moderate(texts)


def run(tmp_path, name, content, label, **options):
    """Label a file holding ``content`` (text, or bytes as they are) into out.jsonl; returns (run, output rows)."""
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    out = tmp_path / options.pop("out", "out.jsonl")
    done = label_file(path, out, label, **options)
    if out.suffix == ".csv":
        with open(out, newline="", encoding="utf-8") as rows:
            return done, list(csv.DictReader(rows))
    return done, [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def test_csv_rows_in_order_with_errors_on_empty_and_too_long_rows(tmp_path, label):
    content = 'id,Text\n1,I will hurt you\n2,""\n3,"two\nlines of hate"\n4,' + "x" * 30 + "\n5,fine\n"
    done, rows = run(tmp_path, "rows.csv", content, label, max_chars=20, chunk_size=2)
    assert (done.rows, done.labelled, done.errors) == (5, 3, 2)
    assert [row["text"] for row in rows] == ["I will hurt you", "", "two\nlines of hate", "x" * 30, "fine"]
    assert rows[0] == {"text": "I will hurt you", "label": "needs intervention", "scores": pytest.approx(
        expected_scores("hurt")), "flagged": True, "intervene": True}
    assert EMPTY in rows[1]["error"] and "label" not in rows[1]
    assert rows[2]["label"] == "possibly needs caution"
    assert rows[3] == {"text": "x" * 30, "error": "The text has 30 characters; the limit is 20."}
    assert (rows[4]["label"], rows[4]["flagged"], rows[4]["intervene"]) == ("casual", False, False)


def test_jsonl_and_txt_inputs_and_csv_output(tmp_path, label):
    jsonl = '{"text": "you idiot"}\n\nnot json\n{"txt": "no text"}\n[1]\n{"text": 3}\n{"text": "ok"}\n'
    _, rows = run(tmp_path, "rows.jsonl", jsonl, label)
    assert [row.get("label") for row in rows] == ["probably needs caution", None, None, None, None, "casual"]
    assert "Not a JSON line" in rows[1]["error"] and rows[1]["text"] is None
    assert all('no "text" string' in row["error"] for row in rows[2:5])

    done, rows = run(tmp_path, "rows.txt", "\ufeffhello\n\nI hate mondays\r\n", label, out="out.csv")
    assert done.rows == 3 and list(rows[0]) == list(csv_columns(CARD.listed))
    assert [(row["text"], row["label"], row["error"][:17]) for row in rows] == [
        ("hello", "casual", ""), ("", "", EMPTY), ("I hate mondays", "possibly needs caution", "")]
    assert float(rows[2]["possibly needs caution"]) == pytest.approx(0.6) and rows[2]["flagged"] == "True"


def test_a_line_of_deeply_nested_json_is_a_row_with_an_error(tmp_path, label):
    jsonl = '{"text": "fine"}\n' + "[" * 100_000 + "]" * 100_000 + '\n{"text": "' + "{" * 5_000 + '"}\n'
    done, rows = run(tmp_path, "rows.jsonl", jsonl, label)
    assert (done.rows, done.labelled, done.errors) == (3, 2, 1)
    assert rows[1] == {"text": None, "error": 'This line is JSON nested too deeply: write {"text": "..."}.'}
    assert rows[2]["text"] == "{" * 5_000 and rows[2]["label"]


@pytest.mark.parametrize("content, line", [
    ('text\nfine\n"never closed, and the rest of the file\nwould be\none text\n', 3),
    ('id,text\n1,fine\n2,"two\nlines"\n3,"never closed\n4,more\n', 5),
])
def test_a_quote_that_is_never_closed_is_an_error_naming_its_line(tmp_path, label, content, line):
    with pytest.raises(InvalidInput) as refused:
        run(tmp_path, "rows.csv", content, label)
    assert str(refused.value) == (f"rows.csv is not CSV: the row that starts on line {line}: a quote opened in it is "
                                  'never closed: close it, or write a quote inside a quoted text as two ("").')


def test_csv_output_neutralises_cells_a_spreadsheet_would_run_as_formulas(tmp_path, label):
    texts = ["=HYPERLINK(\"http://evil.example\",\"click\")", "+1+2", "-2+3", "@SUM(A1:A2)", "\tcmd", "\r=1",
             "a = b", "plain"]
    content = "text\n" + "".join('"' + text.replace('"', '""') + '"\n' for text in texts)
    _, rows = run(tmp_path, "rows.csv", content, label, out="out.csv")
    assert [row["text"] for row in rows] == ["'" + text for text in texts[:6]] + texts[6:]
    assert all(row["label"] for row in rows)
    _, rows = run(tmp_path, "rows.csv", content, label, out="out.jsonl")
    assert [row["text"] for row in rows] == texts, "jsonl keeps the texts as they are"


def test_progress_follows_the_chunks_and_recording_keeps_every_result_a_few_chunks_at_a_time(tmp_path, label):
    heard, kept = [], []
    run(tmp_path, "rows.txt", "".join(f"text {n}\n" for n in range(7)) + "\n", label, chunk_size=3,
        progress=lambda done, total: heard.append((done, total)), record=lambda results: kept.append(len(results)),
        record_every=5)
    assert heard == [(3, 8), (6, 8), (8, 8)]
    assert kept == [6, 1], "two chunks reach 5 results; the rest is kept before the file appears; no empty row"


@pytest.mark.parametrize("record", [None, lambda results: None], ids=["labelled", "recorded"])
def test_memory_stays_flat_as_the_file_grows(tmp_path, label, record):
    peaks = []
    for rows in (1_000, 4_000):
        path = tmp_path / f"rows-{rows}.txt"
        path.write_text("".join(f"text number {n}\n" for n in range(rows)), encoding="utf-8")
        tracemalloc.start()
        label_file(path, tmp_path / f"out-{rows}.jsonl", label, record=record)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < 1.5 * peaks[0], f"peaks of {peaks} bytes for 1,000 and 4,000 rows: the rows are streamed"


@pytest.mark.parametrize("name, content, message", [
    ("latin.csv", "text\ncaf\xe9\n".encode("latin-1"), "latin.csv is not UTF-8 text (line 2): save it as UTF-8."),
    ("late.txt", b"fine\n" * 5 + b"caf\xe9\n", "late.txt is not UTF-8 text (line 6)"),
    ("columns.csv", "message,author\nhello,ana\n", "has no text column"),
    ("fields.jsonl", '{"message": "hello"}\n', 'No line of fields.jsonl has a "text" field'),
    ("empty.txt", "", "holds no rows"),
    ("header.csv", "text\n", "holds no rows"),
    ("many.txt", "a\nb\nc\nd\n", "more than 3 rows: split it"),
    ("rows.xlsx", "text\nhello\n", "use a .csv file with a text column"),
])
def test_a_bad_file_is_refused_before_anything_is_labelled(tmp_path, name, content, message):
    calls = []
    with pytest.raises(InvalidInput, match=re.escape(message)):
        run(tmp_path, name, content, calls.append, max_rows=3 if name == "many.txt" else 100_000,
            record=calls.append)
    assert calls == [] and sorted(path.name for path in tmp_path.iterdir()) == [name]


def test_the_command_line_labels_a_csv_file_into_jsonl(cli, tiny_model_dir, tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_text('text\nI want to call in sick\n""\nYou idiot\n' + "y" * 50 + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    ran = cli(moderation_main, "--model", tiny_model_dir, "--input", rows, "--output", out, "--max-chars", 40)
    assert ran.returncode == 0, ran.stderr
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [line["text"] for line in lines] == ["I want to call in sick", "", "You idiot", "y" * 50]
    assert [set(line) for line in lines] == [{"text", "label", "scores", "flagged", "intervene"}, {"text", "error"},
                                             {"text", "label", "scores", "flagged", "intervene"}, {"text", "error"}]
    assert lines[0]["label"] in LABELS and set(lines[0]["scores"]) == set(LABELS)
    assert "Labelled 2 of 4 rows" in ran.stderr and "(2 with an error)" in ran.stderr


def test_recorded_batch_rows_join_the_queue_and_a_bad_file_records_nothing(cli, tiny_model_dir, tmp_path):
    db = tmp_path / "feedback.db"
    good, bad = tmp_path / "good.txt", tmp_path / "bad.jsonl"
    good.write_text("first text\n\nsecond text\n", encoding="utf-8")
    bad.write_text('{"message": "no text here"}\n', encoding="utf-8")
    base = ["--model", tiny_model_dir, "--record", "--db", db, "--output"]
    ran = cli(moderation_main, *base, tmp_path / "bad-out.jsonl", "--input", bad)
    assert ran.returncode == 2 and 'has a "text" field' in ran.stderr and "Traceback" not in ran.stderr
    assert not (tmp_path / "bad-out.jsonl").exists()
    with FeedbackStore(db) as store:
        assert store.db["predictions"].count == 0
    ran = cli(moderation_main, *base, tmp_path / "out.csv", "--input", good)
    assert ran.returncode == 0, ran.stderr
    with FeedbackStore(db) as store:
        assert [row["text"] for row in store.db["predictions"].rows] == ["first text", "second text"]
        assert store.queue.size("ana") == 2 and store.queue.next("ana")["margin"] is not None


def test_the_command_line_shows_a_progress_bar_at_a_terminal_only(cli, tiny_model_dir, tmp_path, monkeypatch):
    """At a terminal, stderr shows tqdm's bar up to the last row; piped into a file or log, only the summary."""
    rows = tmp_path / "rows.txt"
    rows.write_text("first text\nsecond text\nthird text\n", encoding="utf-8")
    args = ["--model", tiny_model_dir, "--input", rows, "--output", tmp_path / "out.jsonl"]
    piped = cli(moderation_main, *args)
    assert piped.returncode == 0, piped.stderr
    assert "Labelled 3 of 3 rows" in piped.stderr and "labelling" not in piped.stderr

    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 24 rows of 100 columns
    with open(follower, "w", encoding="utf-8") as terminal, monkeypatch.context() as patch:
        patch.setattr(sys, "stderr", terminal)
        ran = cli(moderation_main, *args)
        terminal.flush()
        shown = b""
        while select.select([leader], [], [], 0.5)[0]:
            shown += os.read(leader, 65536)
    os.close(leader)
    assert ran.returncode == 0
    shown = shown.decode("utf-8")
    assert re.search(r"labelling: 100%\S* 3/3 \[", shown), shown
    assert "Labelled 3 of 3 rows" in shown


def test_format_overrides_the_outputs_suffix(cli, tiny_model_dir, tmp_path):
    rows = tmp_path / "rows.txt"
    rows.write_text("see you soon\n\n", encoding="utf-8")
    base = ["--model", tiny_model_dir, "--input", rows, "--output"]
    ran = cli(moderation_main, *base, tmp_path / "out.jsonl", "--format", "csv")
    assert ran.returncode == 0, ran.stderr
    with open(tmp_path / "out.jsonl", newline="", encoding="utf-8") as out:
        table = list(csv.DictReader(out))
    assert list(table[0]) == list(csv_columns(CARD.listed)) and [row["text"] for row in table] == ["see you soon", ""]
    assert table[0]["label"] in LABELS and EMPTY in table[1]["error"]

    ran = cli(moderation_main, *base, tmp_path / "out.csv", "--format", "jsonl")
    assert ran.returncode == 0, ran.stderr
    lines = [json.loads(line) for line in (tmp_path / "out.csv").read_text(encoding="utf-8").splitlines()]
    assert [line["text"] for line in lines] == ["see you soon", ""]
    assert lines[0]["label"] in LABELS and EMPTY in lines[1]["error"]


@pytest.mark.parametrize("args, message", [
    ([], "give texts to moderate, or --input FILE"),
    (["--input", "x.txt", "--output", "y.jsonl", "--format", "xml"], "invalid choice: 'xml'"),
    (["hello", "--input", "x.txt", "--output", "y.jsonl"], "not both"),
    (["--input", "x.txt"], "--input needs --output"),
])
def test_the_command_line_says_what_it_needs(cli, args, message):
    ran = cli(moderation_main, *args)
    assert ran.returncode == 2 and message in ran.stderr
