"""The pieces of the card's few-shot prompt: texts as the model sees them, and the record layout.

The model was trained on records ``Input: <text>\\nOutput: <label>`` joined by blank lines under a header that
lists the labels; :class:`~moderation.templates.PromptTemplate` assembles a policy's prompt from these pieces.
"""

import hashlib
import re
import unicodedata
from dataclasses import dataclass

from .errors import InvalidInput

INPUT = "Input:"
OUTPUT = "\nOutput:"
TRUNCATION_MARKER = " [...]"

_INVISIBLE = {"Cc", "Cf", "Cs", "Zs", "Zl", "Zp"}
_RECORD = re.compile(r"\AInput: (?P<text>.*)\nOutput: (?P<label>.*)\Z", re.DOTALL)
_LINE_BREAKS = re.compile(r"\s*[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]+\s*")


class NormalizedText(str):
    """A text as the model sees it. Only :func:`normalize_text` makes one (and the engine, when it cuts one),
    so a text that is already one is never checked or folded again."""


def normalize_text(text: str) -> NormalizedText:
    """The text as the model sees it: on one line, without control characters, trimmed.

    Line breaks (with the spaces around them) fold into one space and tabs become spaces, so a
    text can never start a line of its own and forge an ``Input:`` or ``Output:`` record.
    Raises InvalidInput when nothing is left to moderate.
    """
    if isinstance(text, NormalizedText):
        return text
    if not isinstance(text, str):
        raise InvalidInput(f"Text must be a string, not {type(text).__name__}.")
    folded = _LINE_BREAKS.sub(" ", text).replace("\t", " ")
    cleaned = "".join(ch for ch in folded if unicodedata.category(ch) not in ("Cc", "Cs")).strip()
    if is_blank(cleaned):
        raise InvalidInput("The text is empty: type the message you want to moderate.")
    return NormalizedText(cleaned)


def text_hash(text: str) -> str:
    """What names a text wherever it is kept apart (a version's training texts, its split): the SHA-256 of the text
    as the model sees it, in hex. The same text, however its spaces and line breaks were typed, has one hash."""
    return hashlib.sha256(normalize_text(text).encode("utf-8")).hexdigest()


def is_blank(text: str) -> bool:
    """Whether ``text`` shows nothing: only spaces, line breaks, control or zero-width characters."""
    return all(unicodedata.category(ch) in _INVISIBLE for ch in text)


def record_start(first: bool) -> str:
    """What opens a record: ``Input:``, after a blank line unless it is the first (the record before ends with the
    newline of its continuation)."""
    return INPUT if first else "\n" + INPUT


def request(text: str) -> str:
    """The part of a record that belongs to its text: `` <text>\\nOutput:``."""
    return f" {normalize_text(text)}{OUTPUT}"


def continuation(label: str) -> str:
    """How the model continues a record's request for ``label``: `` <label>\\n`` (what scoring measures, and what
    training teaches)."""
    return f" {label}\n"


def format_record(text: str, label: str) -> str:
    """One record in the card's layout, as a training file holds it: ``Input: <text>\\nOutput: <label>``."""
    return record_start(first=True) + request(text) + continuation(label).rstrip("\n")


def parse_record(record: str) -> tuple[NormalizedText, str]:
    """The (text, label) of an ``Input: ...\\nOutput: ...`` record; InvalidInput if it is not one."""
    match = _RECORD.match(record)
    if not match:
        raise InvalidInput("Not a record of the form 'Input: <text>\\nOutput: <label>'.")
    return normalize_text(match["text"]), label_text(match["label"].strip())


def label_text(label) -> str:
    """``label`` if it can be a label (a string that shows something); whether it is one of a policy's labels is the
    policy's to say. InvalidInput otherwise."""
    if not isinstance(label, str):
        raise InvalidInput(f"A label must be a text, not a {type(label).__name__}: give one of the policy's labels.",
                           "label")
    if is_blank(label):
        raise InvalidInput("A label is empty: give one of the policy's labels.", "label")
    return label


@dataclass(frozen=True)
class Example:
    """One few-shot example: a text and its label."""

    text: str
    label: str

    def __post_init__(self):
        object.__setattr__(self, "text", normalize_text(self.text))
        object.__setattr__(self, "label", label_text(self.label))


def labelled_item(item) -> tuple[NormalizedText, str]:
    """(text, label) of ``{"text", "label"}`` or of a ``{"text": "Input: ...\\nOutput: ..."}`` record."""
    if not isinstance(item, dict) or not isinstance(item.get("text"), str):
        raise InvalidInput('An example must be an object with a "text" string and a "label", or a "text" record '
                           "'Input: ...\\nOutput: ...'.")
    if "label" in item:
        return normalize_text(item["text"]), label_text(item["label"])
    return parse_record(item["text"])
