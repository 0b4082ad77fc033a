"""Batch files: a file of texts in, one labelled row per text out, both streamed so memory stays flat.

Input is CSV with a ``text`` column, jsonl with a ``"text"`` field, or plain text with one text a line (told
apart by the file's suffix, UTF-8). Output is jsonl or CSV, one row per input row, in order: the text, its
label, the five probabilities, ``flagged`` and ``intervene``; or the text and an ``error`` for a row that is
empty, too long or unreadable, and the run goes on. The file is read twice: once to check it (encoding, text
column, rows), so that a bad file is refused before anything is labelled or recorded, then to label it.
"""

import csv
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .atomic_writes import written_atomically
from .errors import InvalidInput
from .policy import CARD, Policy
from .prompt import NormalizedText, normalize_text
from .results import ModerationResult

MAX_ROWS = 100_000
"""The most rows one batch file may hold."""
MAX_CHARS = 20_000
"""The longest text one row (or one request) may hold, in characters."""
RECORD_EVERY = 256
"""Results kept a transaction at a time when a batch is recorded: fewer syncs to disk, a small loss at a crash."""
INPUTS = (".csv", ".jsonl", ".txt")
OUTPUTS = ("jsonl", "csv")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""How a CSV cell that a spreadsheet would run as a formula starts."""
_FIELD_LIMIT = 16 * 1024 * 1024

Labeller = Callable[[list[NormalizedText]], list[ModerationResult]]


@dataclass(frozen=True)
class Row:
    """One row of an input file: its text (None when the row has none), or why it cannot be labelled."""

    text: str | None
    error: str | None = None


@dataclass(frozen=True)
class BatchRun:
    """What a run did: rows read, rows labelled, rows with an error, the seconds it took, how many rows got each
    label, and its first output rows (as jsonl has them), when it was asked to keep some."""

    rows: int
    labelled: int
    errors: int
    seconds: float
    labels: dict[str, int] = field(default_factory=dict)
    first: list[dict] = field(default_factory=list)


def output_format(path: str | Path, chosen: str | None = None) -> str:
    """The output format: ``chosen``, else csv for a ``.csv`` file, else jsonl."""
    if chosen is not None:
        if chosen not in OUTPUTS:
            raise InvalidInput(f"Unknown output format {chosen!r}: choose {' or '.join(OUTPUTS)}.", "format")
        return chosen
    return "csv" if Path(path).suffix.lower() == ".csv" else "jsonl"


def count_rows(path: str | Path, *, max_rows: int = MAX_ROWS) -> int:
    """How many rows ``path`` holds, once it is checked: UTF-8, a text column (CSV) or field (jsonl), at least
    one row and at most ``max_rows``. InvalidInput saying what to fix otherwise."""
    rows, texts = 0, 0
    for rows, row in enumerate(read_rows(path), 1):
        texts += row.text is not None
        if rows > max_rows:
            raise InvalidInput(f"{_name(path)} has more than {max_rows:,} rows: split it into smaller files.")
    if not rows:
        raise InvalidInput(f"{_name(path)} holds no rows: give one text a row.")
    if not texts:
        raise InvalidInput(f'No line of {_name(path)} has a "text" field: write one object a line, like '
                           '{"text": "I want to call in sick"}.')
    return rows


def read_rows(path: str | Path) -> Iterator[Row]:
    """The rows of ``path``, streamed; InvalidInput for a file that is not UTF-8 or has no text column."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in INPUTS:
        raise InvalidInput(f"{_name(path)}: use a .csv file with a text column, a .jsonl file with a \"text\" "
                           "field, or a .txt file with one text a line.")
    readers = {".csv": _csv_rows, ".jsonl": _jsonl_rows, ".txt": _txt_rows}
    with open(path, "rb") as raw:
        yield from readers[suffix](_decoded(raw, path), path)


def label_file(
    path: str | Path,
    out_path: str | Path,
    label: Labeller,
    *,
    format: str | None = None,
    max_chars: int = MAX_CHARS,
    max_rows: int = MAX_ROWS,
    chunk_size: int = 32,
    record: Callable[[list[ModerationResult]], object] | None = None,
    record_every: int = RECORD_EVERY,
    progress: Callable[[int, int], object] | None = None,
    first: int = 0,
    policy: Policy = CARD,
) -> BatchRun:
    """Label every row of ``path`` with ``label`` (texts in, results out, ``chunk_size`` rows at a time, labels of
    ``policy``) into ``out_path``, which appears once it is complete. ``record`` gets the results to keep,
    ``record_every`` at a time (the last ones before the file appears); ``progress(done, total)`` hears after each
    chunk; the run keeps its ``first`` output rows. A bad file is refused before anything is labelled."""
    started = time.perf_counter()
    format = output_format(out_path, format)
    total = count_rows(path, max_rows=max_rows)
    done = labelled = 0
    labels, kept = Counter(), []
    with written_atomically(out_path, newline="" if format == "csv" else None) as out:
        write = _writer(out, format, policy.listed)
        pending: list[tuple[Row, NormalizedText | None]] = []
        texts: list[NormalizedText] = []
        unrecorded: list[ModerationResult] = []

        def keep(at_least: int):
            if unrecorded and len(unrecorded) >= at_least:
                record(list(unrecorded))
                unrecorded.clear()

        def flush():
            nonlocal done, labelled
            results = iter(label(texts) if texts else [])
            shown = [(row, None if text is None else next(results)) for row, text in pending]
            if record is not None:
                unrecorded.extend(result for _, result in shown if result is not None)
                keep(record_every)
            for row, result in shown:
                write(row, result)
                if result is not None:
                    labels[result.label] += 1
                if len(kept) < first:
                    kept.append(output_item(row, result))
            done, labelled = done + len(pending), labelled + len(texts)
            pending.clear()
            texts.clear()
            if progress is not None:
                progress(done, total)

        for row in read_rows(path):
            row, text = _checked(row, max_chars)
            pending.append((row, text))
            if text is not None:
                texts.append(text)
            if len(pending) == chunk_size:
                flush()
        if pending:
            flush()
        keep(1)
    return BatchRun(done, labelled, done - labelled, time.perf_counter() - started, dict(labels), kept)


def _checked(row: Row, max_chars: int) -> tuple[Row, NormalizedText | None]:
    """The row with its text ready for the model, or with the error that keeps it from the model."""
    if row.error is not None:
        return row, None
    if len(row.text) > max_chars:
        return Row(row.text, f"The text has {len(row.text):,} characters; the limit is {max_chars:,}."), None
    try:
        return row, normalize_text(row.text)
    except InvalidInput as error:
        return Row(row.text, str(error)), None


def _decoded(raw, path) -> Iterator[str]:
    """The lines of a binary file as text (a leading byte order mark dropped); InvalidInput naming the first line
    that is not UTF-8."""
    for number, line in enumerate(raw, 1):
        try:
            yield line.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(f"{_name(path)} is not UTF-8 text (line {number}): save it as UTF-8.") from None


def _csv_rows(lines, path) -> Iterator[Row]:
    csv.field_size_limit(_FIELD_LIMIT)
    records = _csv_records(csv.reader(lines, strict=True), path)
    header = next(records, None)
    columns = [name.strip().lower() for name in header or []]
    if "text" not in columns:
        raise InvalidInput(f"{_name(path)} has no text column: its first line must name the columns, one of them "
                           f"'text' (found: {', '.join(header or []) or 'nothing'}).")
    index = columns.index("text")
    for values in records:
        if values:
            yield Row(values[index]) if index < len(values) else Row(None, "This row has no text column.")


def _csv_records(reader, path) -> Iterator[list[str]]:
    """The records of a CSV reader; InvalidInput naming the line where a broken record starts (a quote that is
    never closed would otherwise take the rest of the file into one text)."""
    while True:
        start = reader.line_num + 1
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            problem = ("a quote opened in it is never closed: close it, or write a quote inside a quoted text as two "
                       '("")') if "unexpected end of data" in str(error) else str(error)
            raise InvalidInput(f"{_name(path)} is not CSV: the row that starts on line {start}: {problem}.") from None


def _jsonl_rows(lines, path) -> Iterator[Row]:
    for line in lines:
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            yield Row(None, f"Not a JSON line ({error}).")
            continue
        except RecursionError:
            yield Row(None, 'This line is JSON nested too deeply: write {"text": "..."}.')
            continue
        if isinstance(item, dict) and isinstance(item.get("text"), str):
            yield Row(item["text"])
        else:
            yield Row(None, 'This line has no "text" string: write {"text": "..."}.')


def _txt_rows(lines, path) -> Iterator[Row]:
    for line in lines:
        yield Row(line.removesuffix("\n").removesuffix("\r"))


def csv_columns(labels: tuple[str, ...]) -> tuple[str, ...]:
    """The columns of a CSV output: the text, its label, a probability column per label, the decisions, an error."""
    return ("text", "label", *labels, "flagged", "intervene", "error")


def _writer(out, format: str, labels: tuple[str, ...]) -> Callable[[Row, ModerationResult | None], None]:
    if format == "csv":
        table = csv.writer(out)
        table.writerow(csv_columns(labels))

        def write_csv(row: Row, result: ModerationResult | None):
            if result is None:
                cells = [row.text or "", "", *[""] * len(labels), "", "", row.error]
            else:
                cells = [row.text, result.label, *(result.scores[label] for label in labels), result.flagged,
                         result.intervene, ""]
            table.writerow([_as_text(cell) for cell in cells])

        return write_csv

    def write_jsonl(row: Row, result: ModerationResult | None):
        out.write(json.dumps(output_item(row, result), ensure_ascii=False) + "\n")

    return write_jsonl


def output_item(row: Row, result: ModerationResult | None) -> dict:
    """An output row as jsonl has it: the text and its result, or the text and its error."""
    if result is None:
        return {"text": row.text, "error": row.error}
    return {"text": row.text, "label": result.label, "scores": result.scores, "flagged": result.flagged,
            "intervene": result.intervene}


def _as_text(cell):
    """A cell that a spreadsheet shows as it is: a text that starts like a formula gets a single quote before it
    (OWASP's guidance on CSV injection)."""
    return "'" + cell if isinstance(cell, str) and cell.startswith(FORMULA_STARTS) else cell


def _name(path) -> str:
    return Path(path).name
