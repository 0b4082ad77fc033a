"""What a fine-tune learns from and is judged on: curated records, replayed base examples, a held-out split,
and the packed sequences the model sees.

In the card's format, records are packed under the policy's header, several to a sequence, so the model
learns exactly the format it is prompted with; the targets are the label continuations (`` <label>\\n``)
alone. In another format each record gives a sequence a query it answers, its prompt as the model is asked it and
the answer (``unsafe`` and the category, or Yes and No) as the target. Nothing here needs torch: the application
checks data with it before it starts a training process.
"""

import math
import random
from collections import Counter
from dataclasses import dataclass

from sklearn.model_selection import train_test_split

from ..errors import InvalidInput
from ..prompt import OUTPUT, continuation, normalize_text, record_start, request
from ..templates import Template

IGNORE = -100
"""The target of a token that is not learned (the header, texts, padding)."""
HELD_OUT_FRACTION = 0.2
"""The share of the curated records held out when no held-out data is given."""

LabelledText = tuple[str, str]
"""A text and its label."""


@dataclass(frozen=True)
class TrainingData:
    """The records trained on and the held-out records judged on (never trained on)."""

    train: list[LabelledText]
    held_out: list[LabelledText]
    replayed: int = 0
    """How many of ``train`` are replayed base examples."""
    dropped: int = 0
    """Training records left out because their text is held out (or, replayed, because it is curated)."""


def prepare(curated: list[LabelledText], *, held_out: list[LabelledText] | None = None,
            held_out_fraction: float = HELD_OUT_FRACTION,
            replay: list[LabelledText] = (), replay_ratio: float = 0.0, seed: int = 0) -> TrainingData:
    """Curated records, mixed with ``replay_ratio`` replayed examples per curated one, against a held-out set.

    Without ``held_out``, a label-stratified ``held_out_fraction`` of ``curated`` is held out. No text that
    is held out is trained on, and a replayed example never overrides a curated text's label.
    """
    if replay_ratio < 0:
        raise InvalidInput(f"The replay ratio is {replay_ratio}: give 0 (no replay) or more.", "replay_ratio")
    if held_out is None:
        curated, held_out = stratified_split(curated, held_out_fraction, seed)
    judged = {text for text, _ in held_out}
    kept = [record for record in curated if record[0] not in judged]
    if not kept:
        raise InvalidInput("Every training text is also in the held-out data: nothing is left to train on.")
    seen = judged | {text for text, _ in kept}
    pool = [record for record in replay if record[0] not in seen]
    replayed = random.Random(seed).sample(pool, min(len(pool), round(replay_ratio * len(kept))))
    return TrainingData(kept + replayed, held_out, len(replayed), len(curated) - len(kept))


def stratified_split(records: list[LabelledText], fraction: float,
                     seed: int = 0) -> tuple[list[LabelledText], list[LabelledText]]:
    """(train, held out): ``fraction`` of ``records`` held out with each label in the same share (scikit-learn).

    InvalidInput when there are too few records to give each label a place on both sides.
    """
    if not 0 < fraction < 1:
        raise InvalidInput(f"The held-out fraction is {fraction}: give a number between 0 and 1.", "eval_fraction")
    counts = Counter(label for _, label in records)
    held = math.ceil(fraction * len(records))
    if min(counts.values()) < 2 or held < len(counts) or len(records) - held < len(counts):
        shown = ", ".join(f"{label}: {count}" for label, count in sorted(counts.items()))
        raise InvalidInput(
            f"{len(records)} records ({shown}) are too few to hold out a label-stratified {fraction:.0%}: each "
            f"label needs at least 2 records and {len(counts)} on each side. Add records, or pass the held-out "
            "data as --eval-data FILE."
        )
    train, held_out = train_test_split(records, test_size=held, stratify=[label for _, label in records],
                                       random_state=seed)
    return train, held_out


class WordDropout:
    """Records whose texts lose each word with probability ``rate`` whenever they are read (a dataset for the
    Trainer): a model that starts from nothing cannot learn the texts by heart, only the words that tell."""

    def __init__(self, records: list[LabelledText], rate: float, seed: int = 0):
        self.records = records
        self.rate = rate
        self.rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> LabelledText:
        text, label = self.records[index]
        words = text.split(" ")
        return " ".join([word for word in words if self.rng.random() >= self.rate] or words), label


def pack_records(tokenizer, records: list[LabelledText], per_sequence: int, max_length: int,
                 header: str) -> list[tuple[list, list]]:
    """Token ids and targets of ``records`` packed in order, at most ``per_sequence`` to a sequence of at most
    ``max_length`` tokens: the policy's ``header``, then the records in the card's layout; the targets are the
    labels' tokens alone (:data:`IGNORE` elsewhere).

    Each piece is tokenized as the Moderator tokenizes a prompt, so training and scoring agree. A record too
    long for a sequence of its own has its text cut to fit.
    """

    def encode(text):
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    header = encode(header + "\n")
    sequences = []
    for text, label in records:
        answer = encode(continuation(label))
        if sequences and sequences[-1][2] < per_sequence:
            ids, targets, count = sequences[-1]
            context = encode(record_start(first=False)) + encode(request(text))
            if len(ids) + len(context) + len(answer) <= max_length:
                sequences[-1] = (ids + context + answer, targets + [IGNORE] * len(context) + answer, count + 1)
                continue
        context = encode(record_start(first=True)) + encode(request(text))
        room = max_length - len(header) - len(answer)
        if len(context) > room:
            tail = encode(OUTPUT)
            context = (encode(record_start(first=True)) + encode(f" {text}"))[: room - len(tail)] + tail
        sequences.append((header + context + answer, [IGNORE] * (len(header) + len(context)) + answer, 1))
    return [(ids, targets) for ids, targets, _ in sequences]


def training_sequences(tokenizer, records: list[LabelledText], per_sequence: int, max_length: int,
                       template: Template) -> list[tuple[list, list]]:
    """Token ids and targets of ``records`` in ``template``'s format: packed under the header in the card's
    (:func:`pack_records`), a sequence a query otherwise (:func:`answer_sequences`)."""
    if template.format == "card":
        return pack_records(tokenizer, records, per_sequence, max_length, template.policy.header)
    return answer_sequences(tokenizer, records, max_length, template)


def answer_sequences(tokenizer, records: list[LabelledText], max_length: int,
                     template: Template) -> list[tuple[list, list]]:
    """For each record, a sequence per query its label answers: the query's prompt (prefix and request tokenized
    apart, as the Moderator does) and the answer, whose tokens alone are the targets. A text too long for the
    model's context is cut, a tenth at a time, until its longest query fits."""

    def encode(text):
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    sequences = []
    for text, label in records:
        answers = template.answers(label)
        text = normalize_text(text)
        while True:
            pairs = [(encode(query.prefix) + encode(query.request), encode(answer))
                     for query, answer in zip(template.queries(text), answers, strict=True) if answer is not None]
            if all(len(prompt) + len(answer) <= max_length for prompt, answer in pairs):
                break
            if len(text) < 2:
                raise InvalidInput(f"The {template.format} prompt fills the model's {max_length} tokens: give the "
                                   "policy fewer or shorter labels and descriptions.", "policy")
            text = normalize_text(text[: len(text) * 9 // 10])
        sequences += [(prompt + answer, [IGNORE] * len(prompt) + answer) for prompt, answer in pairs]
    return sequences
