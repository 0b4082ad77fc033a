"""Gold sets: texts with the label each should get, read from a file or made from reviewers' accepted verdicts."""

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ..errors import InvalidInput
from ..labelled_files import HELDOUT_FILE, read_labelled
from ..policy import CARD, Policy
from ..prompt import NormalizedText, normalize_text, text_hash

HELDOUT_NAME = "held-out set"
ACCEPTED_NAME = "accepted verdicts"
GATE_NAME = "gate set"
FILE_SOURCE = "a file"
GOLD_SOURCES = (HELDOUT_NAME, ACCEPTED_NAME, FILE_SOURCE)
"""Where a gold set comes from: the shipped held-out set, the accepted verdicts, or a labelled file."""


@dataclass(frozen=True)
class Conflict:
    """A text that reviewers accepted with different labels: every label in the order accepted, and the one kept."""

    text: str
    labels: tuple[str, ...]
    kept: str


@dataclass(frozen=True)
class GoldSet:
    """Labelled texts to measure a model and a prompt on, in a fixed order, with a name to show, labelled with the
    labels of ``policy``.

    ``conflicts`` lists the texts whose accepted labels disagreed (only for a set made from verdicts).
    """

    name: str
    items: tuple[tuple[NormalizedText, str], ...]
    conflicts: tuple[Conflict, ...] = ()
    policy: Policy = CARD

    def __post_init__(self):
        if not self.items:
            raise InvalidInput(f"The {self.name} holds no labelled texts: nothing to evaluate on.")
        unknown = sorted({label for _, label in self.items} - set(self.policy.labels))
        if unknown:
            raise InvalidInput(f"The {self.name} has labels that are not the policy {self.policy.name!r}'s: "
                               f"{', '.join(map(repr, unknown))}; its labels are {', '.join(self.policy.listed)}.")

    @cached_property
    def hash(self) -> str:
        """A hash of the texts and labels in order: two runs with the same hash were measured on the same set."""
        return hashlib.sha256(json.dumps(self.items, ensure_ascii=False).encode()).hexdigest()

    @property
    def texts(self) -> list[NormalizedText]:
        """The texts, in order."""
        return [text for text, _ in self.items]

    @property
    def labels(self) -> list[str]:
        """The gold labels, in order."""
        return [label for _, label in self.items]

    def trained_on(self, hashes) -> int:
        """How many of the texts are among ``hashes`` (:func:`~moderation.prompt.text_hash`: texts a version trained
        on)."""
        hashes = set(hashes)
        return sum(text_hash(text) in hashes for text in self.texts)

    def without(self, hashes, trained_by: str) -> "GoldSet":
        """The set without the texts among ``hashes``, which ``trained_by`` (a version, or versions) trained on;
        InvalidInput when no text is left."""
        hashes = set(hashes)
        kept = tuple((text, label) for text, label in self.items if text_hash(text) not in hashes)
        if not kept:
            raise InvalidInput(f"{trained_by} trained on every text of the {self.name}: evaluate on texts it never "
                               "saw (the held-out set, or the test split), or include the trained texts (the figures "
                               "then say how many).")
        return GoldSet(self.name, kept, self.conflicts, self.policy)


def read_gold(path: str | Path, policy: Policy = CARD, name: str | None = None) -> GoldSet:
    """The gold set of a labelled file (jsonl or a JSON list; see :mod:`moderation.labelled_files`) in ``policy``.

    A broken line, a label that is not the policy's or a file without rows raises InvalidInput naming the file and
    the line (and every unknown label).
    """
    return GoldSet(name or Path(path).name, tuple(read_labelled(path, policy)), policy=policy)


def heldout_gold() -> GoldSet:
    """The project's shipped held-out set (in the card's policy), which no demo model is trained on."""
    return read_gold(HELDOUT_FILE, CARD, HELDOUT_NAME)


def gold_from_verdicts(accepted, policy: Policy = CARD) -> GoldSet:
    """The gold set of accepted verdicts, given as (text, label) pairs from the oldest accepted to the latest.

    Texts are deduplicated as the model sees them (normalised); the latest accepted label wins, and each text
    accepted with different labels is listed in ``conflicts``. No accepted verdict raises InvalidInput.
    """
    history: dict[NormalizedText, list[str]] = {}
    for text, label in accepted:
        history.setdefault(normalize_text(text), []).append(policy.check_label(label))
    if not history:
        raise InvalidInput("No accepted verdicts yet: accept some in the Review tab, or evaluate on a file.")
    conflicts = tuple(Conflict(text, tuple(labels), labels[-1]) for text, labels in history.items()
                      if len(set(labels)) > 1)
    return GoldSet(ACCEPTED_NAME, tuple((text, labels[-1]) for text, labels in history.items()), conflicts, policy)


def gate_gold(judging, held_out: GoldSet) -> GoldSet:
    """The gate set: the accepted verdicts that judge versions (the test split's, and those of the texts a shadow
    disagreed on; as (text, label) pairs, oldest first, read as :func:`gold_from_verdicts` reads them), then the texts
    of ``held_out`` that none of them has (one item a text: the reviewers' latest label wins)."""
    verdicts = gold_from_verdicts(judging, held_out.policy).items if judging else ()
    judged = {text for text, _ in verdicts}
    items = verdicts + tuple(item for item in held_out.items if item[0] not in judged)
    return GoldSet(f"{GATE_NAME} ({len(verdicts)} accepted texts and the {held_out.name})", items,
                   policy=held_out.policy)
