"""Stream verdicts out of a feedback store as jsonl, for retraining or for analysis."""

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from moderation.errors import InvalidInput
from moderation.prompt import format_record


def oig_record(row: dict) -> dict:
    """The training example for a verdict: ``Input: <text>\\nOutput: <reviewer's label>``."""
    return {"text": format_record(row["text"], row["label"])}


FORMATS = {"oig": oig_record, "full": dict}
"""Export formats: one training example per verdict, or every field of the verdict and prediction."""


def export_lines(store, *, format="oig", status=None, since=None) -> Iterator[str]:
    """The store's verdicts as jsonl lines, streamed; arguments are checked before the first line."""
    if format not in FORMATS:
        raise InvalidInput(f"Unknown format {format!r}: choose one of {', '.join(FORMATS)}.", "format")
    record = FORMATS[format]
    rows = store.iter_export_rows(status=status, since=since)
    return (json.dumps(record(row), ensure_ascii=False) + "\n" for row in rows)


def export_jsonl(store, out: TextIO, **filters) -> int:
    """Write the store's verdicts to ``out`` as jsonl, one line each; return how many were written."""
    count = 0
    for count, line in enumerate(export_lines(store, **filters), 1):
        out.write(line)
    return count


def write_export(store, path: str | Path, **filters) -> int:
    """Export into the file ``path``, which appears only once it is complete and on disk; returns the count.

    The file is created readable by its owner alone: an export holds texts, notes and names.
    """
    path = Path(path)
    partial = path.with_name(path.name + ".tmp")
    try:
        with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as out:
            count = export_jsonl(store, out, **filters)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return count
