"""Ids of the feedback database's rows (predictions, verdicts, evaluation runs): what counts as one, checked in this
one place wherever a caller names one."""

import math
import numbers

from moderation.errors import InvalidInput

LARGEST = 2**63 - 1
"""The largest id SQLite can hold."""


def row_id(value, what: str, missing: str) -> int:
    """``value`` as the id of a ``what`` (prediction, verdict, run): a whole number from 1 to :data:`LARGEST`
    (``2`` or ``2.0``, never rounded from ``2.7``); InvalidInput saying ``missing`` when none is given, and what an id
    is otherwise."""
    if value is None or value == "":
        raise InvalidInput(missing, what)
    whole = (isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
             and value == int(value))
    if not whole or not 0 < value <= LARGEST:
        raise InvalidInput(f"No {what} {value!r}: {what} ids are whole numbers from 1 up.", what)
    return int(value)
