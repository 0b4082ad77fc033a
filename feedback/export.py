"""Stream feedback out of a feedback store as jsonl: curated texts for retraining, or every verdict for analysis.
Each line names the policy its label is in (``"policy": {"name", "id"}``)."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from moderation.atomic_writes import written_atomically
from moderation.errors import InvalidInput
from moderation.policy import Policy
from moderation.prompt import format_record

from .rows import JOINED, filters, where


def oig_record(row: dict, policy: Policy) -> dict:
    """The training example for a text: ``Input: <text>\nOutput: <curated label>``, its split (train, test, or
    None before it is accepted) and the ``policy`` its label is in."""
    return {"text": format_record(row["text"], row["label"]), "split": row["split"], "policy": policy_named(policy)}


def policy_named(policy: Policy) -> dict:
    """How an exported line names its policy: ``{"name", "id"}`` (the id changes with any change of the policy)."""
    return {"name": policy.name, "id": policy.id}


def verdict_rows(store, *, status=None, since=None, split=None, batch_size=1000):
    """Every verdict joined with its prediction, streamed in id order, ``batch_size`` rows at a time (``since``: a
    date or ISO datetime, UTC unless it says otherwise; ``split``: the texts of a split). Arguments are checked on
    the call, before any row is read."""
    clauses, params = filters(status=status, since=since, split=split)
    return store.connection.batches(JOINED + where(clauses + ["verdicts.id > ?"]) + " order by verdicts.id limit ?",
                                    params, batch_size)


FORMATS = {
    "oig": (lambda store, chosen: store.curation.curated_labels(**chosen), oig_record),
    "full": (lambda store, chosen: verdict_rows(store, **chosen),
             lambda row, policy: {**row, "policy": policy_named(policy)}),
}
"""Export formats, each the rows it reads and the line it makes of a row in its policy: one training example per text
with its curated label (see ``Curation.curated_labels``: a text judged several times appears once), or every field of
every verdict and its prediction."""


def export_lines(store, *, format="oig", status=None, since=None, split=None, policy: Policy | None = None
                 ) -> Iterator[str]:
    """The store's feedback as jsonl lines, streamed (with ``policy``, only the lines made in a policy with its
    labels); arguments are checked before the first line."""
    if format not in FORMATS:
        raise InvalidInput(f"Unknown format {format!r}: choose one of {', '.join(FORMATS)}.", "format")
    read, line = FORMATS[format]
    rows = read(store, {"status": status, "since": since, "split": split})
    made = ((row, store.policy(row["template"])) for row in rows)
    return (json.dumps(line(row, in_policy), ensure_ascii=False) + "\n" for row, in_policy in made
            if policy is None or in_policy.labels == policy.labels)


def export_jsonl(store, out: TextIO, **filters) -> int:
    """Write the store's feedback to ``out`` as jsonl, one line each; return how many were written."""
    count = 0
    for count, line in enumerate(export_lines(store, **filters), 1):
        out.write(line)
    return count


def write_export(store, path: str | Path, **filters) -> int:
    """Export into the file ``path``, which appears only once it is complete and on disk; returns the count.

    The file is created readable by its owner alone: an export holds texts, notes and names.
    """
    with written_atomically(path) as out:
        return export_jsonl(store, out, **filters)
