"""Stream verdicts out of a feedback store as jsonl, for retraining or for analysis."""

import json
import re
from collections.abc import Iterator
from typing import TextIO

_NEWLINE_RUN = re.compile(r"\s*[\r\n]\s*")


def oig_record(row: dict) -> dict:
    """The training example for a verdict: ``Input: <text>\\nOutput: <reviewer's label>``."""
    text = _NEWLINE_RUN.sub(" ", row["text"]).strip()
    return {"text": f"Input: {text}\nOutput: {row['label']}"}


FORMATS = {"oig": oig_record, "full": dict}
"""Export formats: one training example per verdict, or every field of the verdict and prediction."""


def export_lines(store, *, format="oig", status=None, since=None) -> Iterator[str]:
    """The store's verdicts as jsonl lines, streamed; arguments are checked before the first line."""
    if format not in FORMATS:
        raise ValueError(f"Unknown format {format!r}: choose one of {', '.join(FORMATS)}.")
    record = FORMATS[format]
    rows = store.iter_export_rows(status=status, since=since)
    return (json.dumps(record(row), ensure_ascii=False) + "\n" for row in rows)


def export_jsonl(store, out: TextIO, *, format="oig", status=None, since=None) -> int:
    """Write the store's verdicts to ``out`` as jsonl, one line each; return how many were written."""
    count = 0
    for line in export_lines(store, format=format, status=status, since=since):
        out.write(line)
        count += 1
    return count
