"""The feedback database's rows as its modules read and check them: times, the statuses and verdicts a row may
have, the join of verdicts with their predictions, the filters on it, and the lookups of one row."""

import datetime
import json
import unicodedata

from sqlite_utils.db import NotFoundError

from moderation.errors import InvalidInput, NotFound
from moderation.prompt import is_blank

from .ids import row_id

VERDICTS = ("right", "wrong")
STATUSES = ("pending", "accepted", "discarded")
"""A verdict's curation status: pending until a curator accepts or discards it."""
SPLITS = ("train", "test")
"""Where an accepted text belongs: trained on, or kept for testing (see :mod:`feedback.splits`)."""

JOINED = """
select verdicts.id, verdicts.created, verdicts.updated, verdicts.reviewer, verdicts.status,
  verdicts.verdict, verdicts.label, predictions.label as model_label, verdicts.note,
  verdicts.prediction_id, predictions.text, predictions.scores, predictions.model,
  predictions.mode, predictions.generated, predictions.role, predictions.template, predictions.prompt,
  predictions.created as prediction_created, final_labels.label as final_label, final_labels.curator as final_label_by,
  splits.split
from verdicts join predictions on predictions.id = verdicts.prediction_id
  left join final_labels on final_labels.text = predictions.text
  left join splits on splits.text = predictions.text
"""
"""Each verdict with its prediction, the final label a curator set for its text (if any) and its text's split: what
the Review tab lists and the ``full`` export writes."""
QUOTED_CHARS = 40
"""How much of a text a message quotes to name its record."""


def now() -> str:
    """The current time in UTC, as stored in ``created`` and ``updated``."""
    return iso(datetime.datetime.now(datetime.timezone.utc))


def iso(moment: datetime.datetime) -> str:
    """``moment`` as stored: UTC, to the microsecond."""
    return moment.astimezone(datetime.timezone.utc).isoformat(timespec="microseconds")


def parse_since(since: str) -> str:
    """The stored-time form of ``since``, a date or ISO datetime (UTC unless it says otherwise). A time that is
    before year 1 or after year 9999 in UTC (a few hours away, in another time zone) is the first or last moment."""
    try:
        moment = datetime.datetime.fromisoformat(since)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"Bad date {since!r}: use a date like 2026-11-29 or a time like 2026-11-29T14:30."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    try:
        return iso(moment)
    except OverflowError:
        return iso((datetime.datetime.min if moment.year == 1 else datetime.datetime.max).replace(
            tzinfo=datetime.timezone.utc))


def choice(value, choices, what):
    """``value`` if it is one of ``choices``; InvalidInput naming them otherwise."""
    if value not in choices:
        raise InvalidInput(f"Unknown {what} {value!r}: choose one of {', '.join(choices)}.")
    return value


def filters(*, status=None, label=None, disagree=False, search=None, since=None,
            split=None) -> tuple[list[str], list]:
    """The ``where`` clauses (on :data:`JOINED`) and their parameters: a status, a reviewer's label, verdicts whose
    label differs from the model's, a phrase in the text (full-text search), verdicts given since a time, texts of a
    split (train or test)."""
    clauses, params = [], []
    if status is not None:
        clauses.append("verdicts.status = ?")
        params.append(choice(status, STATUSES, "status"))
    if label is not None:
        if not isinstance(label, str) or is_blank(label):
            raise InvalidInput(f"Bad label filter {label!r:.80}: choose a label from the list, or none.", "label")
        clauses.append("verdicts.label = ?")
        params.append(label)
    if disagree:
        clauses.append("verdicts.label is not predictions.label")
    if search is not None and search.strip():
        clauses.append(
            "predictions.id in (select rowid from predictions_fts where predictions_fts match ?)"
        )
        visible = "".join(ch for ch in search if unicodedata.category(ch) != "Cc")
        params.append('"' + visible.replace('"', '""') + '"')
    if since is not None:
        clauses.append("verdicts.created >= ?")
        params.append(parse_since(since))
    if split is not None:
        clauses.append("splits.split = ?")
        params.append(choice(split, SPLITS, "split"))
    return clauses, params


def where(clauses: list[str]) -> str:
    """``clauses`` as a ``where`` (none: nothing)."""
    return " where " + " and ".join(clauses) if clauses else ""


def decode(row: dict) -> dict:
    """A row with its scores decoded."""
    return {**row, "scores": json.loads(row["scores"])}


def prediction(db, prediction_id) -> dict:
    """The prediction row ``prediction_id``, its scores decoded; InvalidInput when there is none."""
    prediction_id = row_id(prediction_id, "prediction", "Name the prediction to give a verdict on.")
    try:
        return decode(db["predictions"].get(prediction_id))
    except NotFoundError:
        raise InvalidInput(f"No prediction {prediction_id}: moderate the text first, then give your verdict on "
                           "it.") from None


def verdict(db, verdict_id) -> dict:
    """The verdict row ``verdict_id``; NotFound when there is none."""
    verdict_id = row_id(verdict_id, "verdict", "Pick a verdict from the list of verdicts.")
    try:
        return db["verdicts"].get(verdict_id)
    except NotFoundError:
        raise NotFound(f"No verdict {verdict_id}: pick one from the list of verdicts.") from None


def named(row: dict) -> str:
    """A verdict as a message names it: its id and the start of its text, quoted (``verdict #53 ("I hate my…")``)."""
    return f"verdict #{row['id']} ({quoted(row['text'])})"


def quoted(text: str) -> str:
    """The start of ``text`` in quotes, on one line: at most :data:`QUOTED_CHARS` characters, then an ellipsis."""
    line = " ".join(text.split())
    return f'"{line}"' if len(line) <= QUOTED_CHARS else f'"{line[:QUOTED_CHARS].rstrip()}…"'

