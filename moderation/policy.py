"""A moderation policy as data: its labels from least to most severe (the first means nothing is wrong), the order
the prompt lists them in, a description for each, whether the order is ordinal, the default intervention threshold,
and the few-shot examples. A policy is a TOML file (``policies/``); the model card's own is built in, byte for
byte, and is the default.

    name = "community"
    ordinal = false
    threshold = "harassment"          # the least severe label that intervenes by default, or "never"
    listed = ["ok", "spam", ...]      # optional: the order the prompt lists the labels in (default: as below)

    [[labels]]                        # least severe first
    name = "ok"
    description = "Nothing wrong."

    [[examples]]
    text = "Buy followers now, cheap!"
    label = "spam"
"""

import hashlib
import json
import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import tomli_w

from .errors import InvalidInput
from .prompt import Example

NEVER = "never"
"""The intervention threshold that never intervenes (observe only)."""
MIN_LABELS, MAX_LABELS = 2, 9
"""How many labels a policy may have (the Queue gives each a number key, 1 to 9)."""
POLICIES = Path(__file__).resolve().parent.parent / "policies"
"""The policies that ship with the project."""


@dataclass(frozen=True)
class Policy:
    """What a model is asked to apply: ``labels`` from least to most severe, ``listed`` in the prompt's order,
    ``descriptions`` (label -> text, optional), ``ordinal`` (whether severity is an order that distances measure),
    the default intervention ``threshold`` and the few-shot ``examples``. InvalidInput saying what to fix when any
    of it is wrong."""

    name: str
    labels: tuple[str, ...]
    threshold: str
    examples: tuple[Example, ...] = ()
    listed: tuple[str, ...] = ()
    descriptions: tuple[tuple[str, str], ...] = ()
    ordinal: bool = True
    source: str = field(default="", compare=False)
    """Where the policy was read from (a file's name), for messages; not part of what the policy is."""

    def __post_init__(self):
        object.__setattr__(self, "labels", tuple(self.labels))
        object.__setattr__(self, "listed", tuple(self.listed) or self.labels)
        object.__setattr__(self, "descriptions", tuple(dict(self.descriptions).items()))
        object.__setattr__(self, "examples", tuple(self.examples))
        for problem in self.problems():
            raise InvalidInput(f"{self.source or 'The policy'}: {problem}", "policy")

    def problems(self) -> list[str]:
        """What is wrong with this policy, each with its fix (none when it is sound)."""
        found = []
        if not isinstance(self.name, str) or not self.name.strip() or _breaks(self.name):
            found.append("give the policy a name, on one line.")
        if not MIN_LABELS <= len(self.labels) <= MAX_LABELS:
            found.append(f"it has {len(self.labels)} labels: give {MIN_LABELS} to {MAX_LABELS}, least severe first.")
        for label in self.labels:
            if not isinstance(label, str) or not label.strip() or label != label.strip() or _breaks(label):
                found.append(f"the label {label!r} is empty, has spaces around it or breaks a line: name each label "
                             "on one line, without spaces around it.")
        folded = [_folded(label) for label in self.labels if isinstance(label, str)]
        for label in sorted({label for label in folded if folded.count(label) > 1}):
            found.append(f"the label {label!r} is given twice (case aside): name each label once.")
        for shorter, longer in ((a, b) for a in folded for b in folded if a != b and b.startswith(a + " ")):
            found.append(f"the label {shorter!r} starts the label {longer!r}: a model that writes the first could be "
                         "starting the second; rename one of them.")
        if sorted(self.listed) != sorted(self.labels):
            found.append(f"`listed` names {', '.join(self.listed)}; it must name each label once: "
                         f"{', '.join(self.labels)}.")
        for label, _ in self.descriptions:
            if label not in self.labels:
                found.append(f"a description is given for {label!r}, which is no label of the policy.")
        if self.threshold != NEVER and self.threshold not in self.labels:
            found.append(f"the threshold {self.threshold!r} is no label: give the least severe label that "
                         f"intervenes ({', '.join(self.labels)}) or {NEVER!r}.")
        for number, example in enumerate(self.examples, 1):
            if example.label not in self.labels:
                found.append(f"example {number}: Unknown label {example.label!r:.80}: choose one of "
                             f"{', '.join(self.listed)}.")
        return found

    @property
    def harmless(self) -> str:
        """The least severe label: the one that means nothing is wrong (a result with any other is flagged)."""
        return self.labels[0]

    def check_label(self, label) -> str:
        """``label`` if it is one of this policy's labels; InvalidInput naming them otherwise."""
        if label not in self.labels:
            given = f"{label!r:.80}" if isinstance(label, str) else f"(a {type(label).__name__}, not text)"
            raise InvalidInput(f"Unknown label {given}: choose one of {', '.join(self.listed)}.")
        return label

    def check_threshold(self, threshold) -> str:
        """``threshold`` if it is a label of this policy or ``never``; InvalidInput otherwise."""
        if threshold != NEVER and threshold not in self.labels:
            raise InvalidInput(f"Unknown intervention threshold {threshold!r}: choose a label "
                               f"({', '.join(self.labels)}) or {NEVER!r}.")
        return threshold

    def severity(self, label: str) -> int:
        """The rank of ``label``: 0 for the least severe."""
        return self.labels.index(self.check_label(label))

    def is_flagged(self, label: str) -> bool:
        """Whether ``label`` says something is wrong: any label but the least severe."""
        return self.check_label(label) != self.harmless

    def intervenes(self, label: str, threshold: str) -> bool:
        """Whether ``label`` reaches the intervention ``threshold`` (``never`` never does)."""
        if self.check_threshold(threshold) == NEVER:
            return False
        return self.severity(label) >= self.severity(threshold)

    def parse_label(self, generated: str) -> str | None:
        """The label that generated text names (its first line, spaces and case aside), or None."""
        first_line = _folded(generated.split("\n", 1)[0])
        return next((label for label in self.labels if _folded(label) == first_line), None)

    def description(self, label: str) -> str | None:
        """What ``label`` means, when the policy says."""
        return dict(self.descriptions).get(label)

    @property
    def header(self) -> str:
        """The prompt's list of labels, in the prompt's order: ``Possible labels:\\n1. <label>\\n...``."""
        return "Possible labels:\n" + "".join(f"{n}. {label}\n" for n, label in enumerate(self.listed, 1))

    def with_examples(self, examples) -> "Policy":
        """This policy with other few-shot ``examples`` (each checked against its labels)."""
        return Policy(**{**self.fields(), "examples": tuple(examples)}, source=self.source)

    def fields(self) -> dict:
        """Everything the policy is, as plain values (what :func:`policy_from` reads back)."""
        return {"name": self.name, "labels": list(self.labels), "threshold": self.threshold,
                "examples": [{"text": example.text, "label": example.label} for example in self.examples],
                "listed": list(self.listed), "descriptions": dict(self.descriptions), "ordinal": self.ordinal}

    @cached_property
    def id(self) -> str:
        """A short, stable hash of what the policy is: the same policy always has the same id."""
        return hashlib.sha256(json.dumps(self.fields(), ensure_ascii=False, sort_keys=True).encode()).hexdigest()[:12]

    def to_toml(self) -> str:
        """The policy as a policy file (what :func:`read_policy` reads back)."""
        document = {"name": self.name, "ordinal": self.ordinal, "threshold": self.threshold}
        if self.listed != self.labels:
            document["listed"] = list(self.listed)
        document["labels"] = [{"name": label, **({"description": self.description(label)}
                                                  if self.description(label) else {})} for label in self.labels]
        document["examples"] = [{"text": example.text, "label": example.label} for example in self.examples]
        return tomli_w.dumps(document)


def policy_from(fields: dict, source: str = "") -> Policy:
    """A policy from :meth:`Policy.fields` (as stored in the database)."""
    return Policy(name=fields["name"], labels=tuple(fields["labels"]), threshold=fields["threshold"],
                  examples=tuple(Example(item["text"], item["label"]) for item in fields["examples"]),
                  listed=tuple(fields.get("listed") or ()), descriptions=tuple(fields.get("descriptions", {}).items()),
                  ordinal=fields.get("ordinal", True), source=source)


def read_policy(path: str | Path) -> Policy:
    """The policy in the TOML file ``path``; InvalidInput naming the file, the line and the fix otherwise."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{path.name} is not UTF-8 text: save the policy as UTF-8.", "policy") from None
    except OSError as error:
        raise InvalidInput(f"{path}: cannot read the policy ({error.strerror or error}): give the path of a TOML "
                           "policy file, like those in policies/.", "policy") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InvalidInput(f"{path.name}: not TOML ({error}): see policies/ for policy files that work.",
                           "policy") from None
    lines = Lines(path.name, text)
    known = {"name", "ordinal", "threshold", "listed", "labels", "examples"}
    for key in document.keys() - known:
        raise lines.error(f"^{re.escape(key)}\\s*=", f"unknown key {key!r}: a policy has {', '.join(sorted(known))}.")
    labels, descriptions = [], {}
    for number, item in enumerate(lines.tables(document, "labels"), 1):
        if not isinstance(item.get("name"), str):
            raise lines.error(r"^\s*\[\[labels\]\]", f"label {number} has no name: write name = \"...\".", number)
        labels.append(item["name"])
        if "description" in item:
            descriptions[item["name"]] = item["description"]
    examples = []
    for number, item in enumerate(lines.tables(document, "examples"), 1):
        if not isinstance(item.get("text"), str) or not isinstance(item.get("label"), str):
            raise lines.error(r"^\s*\[\[examples\]\]", f"example {number} needs a text and a label, both strings.",
                              number)
        try:
            examples.append(Example(item["text"], item["label"]))
        except InvalidInput as error:
            raise lines.error(r"^\s*\[\[examples\]\]", f"example {number}: {error}", number) from None
    try:
        return Policy(name=document.get("name", path.stem), labels=tuple(labels),
                      threshold=document.get("threshold", NEVER), examples=tuple(examples),
                      listed=tuple(document.get("listed", ())), descriptions=tuple(descriptions.items()),
                      ordinal=document.get("ordinal", True), source=path.name)
    except InvalidInput as error:
        raise lines.located(str(error)) from None


class Lines:
    """Where things stand in a policy file's text, so that an error can name its line."""

    def __init__(self, name: str, text: str):
        self.name, self.lines = name, text.splitlines()

    def tables(self, document: dict, key: str) -> list[dict]:
        """The ``[[key]]`` tables of the document; InvalidInput when ``key`` is not a list of tables."""
        value = document.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise self.error(rf"^\s*{key}\s*=", f"{key} must be a list of [[{key}]] tables.")
        return value

    def line_of(self, pattern: str, occurrence: int = 1) -> int | None:
        """The number of the line where ``pattern`` matches for the ``occurrence``-th time."""
        matches = [n for n, line in enumerate(self.lines, 1) if re.search(pattern, line)]
        return matches[occurrence - 1] if len(matches) >= occurrence else None

    def error(self, pattern: str, message: str, occurrence: int = 1) -> InvalidInput:
        """``message`` as an InvalidInput naming the file and the line where ``pattern`` matches."""
        line = self.line_of(pattern, occurrence)
        where = f"{self.name}:{line}" if line else self.name
        return InvalidInput(f"{where}: {message}", "policy")

    def located(self, message: str) -> InvalidInput:
        """A policy's own refusal, with the line of what it names (an example, a label or the threshold)."""
        problem = message.split(": ", 1)[1] if ": " in message else message
        example = re.match(r"example (\d+)", problem)
        label = re.search(r"the label '([^']*)'", problem)
        if example:
            return self.error(r"^\s*\[\[examples\]\]", problem, int(example[1]))
        if label:
            return self.error(rf"name\s*=\s*\"{re.escape(label[1])}\"", problem)
        for key in ("threshold", "listed", "name"):
            if problem.startswith((f"the {key}", f"`{key}`", f"give the policy a {key}")):
                return self.error(rf"^{key}\s*=", problem)
        return InvalidInput(f"{self.name}: {problem}", "policy")


def _breaks(text: str) -> bool:
    """Whether ``text`` breaks a line (a newline, a carriage return, a line or paragraph separator...)."""
    return any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in text)


def _folded(text: str) -> str:
    return " ".join(text.split()).casefold()


CARD_LABELS = ("casual", "needs caution", "needs intervention", "possibly needs caution", "probably needs caution")
"""The model card's labels in the card's order: the order its prompt lists them in."""
CARD = Policy(
    name="prosocial",
    labels=("casual", "possibly needs caution", "probably needs caution", "needs caution", "needs intervention"),
    threshold="needs caution",
    examples=(
        Example("I want to call in sick", "casual"),
        Example("I hate my job and I don't want to go there.", "possibly needs caution"),
        Example("It's so hard to deal with this. I hate this job and I want to quit.", "possibly needs caution"),
        Example("Something tells me that you're sitting in the wrong section of the Stormfront bus.", "needs caution"),
    ),
    listed=CARD_LABELS,
    descriptions=(
        ("casual", "An ordinary message: nothing to watch."),
        ("possibly needs caution", "Frustration or a hint of distress that may need a careful reply."),
        ("probably needs caution", "Hostility or distress that likely needs a careful reply."),
        ("needs caution", "Abuse, slurs or harmful intent: reply with care, do not go along."),
        ("needs intervention", "Danger to the writer or others: a human should step in."),
    ),
    ordinal=True,
)
"""The model card's policy, built in and the default: its five labels from casual to needs intervention, listed
in the card's order, and its four examples, byte for byte (the card gives no descriptions: these say what each
label is for, for the formats that show them). ``policies/prosocial.toml`` is the same policy as a file."""
