"""Files of labelled texts: few-shot examples, training data and gold sets all share one reader.

A file is jsonl (one object per line) or a JSON list; each object is ``{"text", "label"}`` or a record
``{"text": "Input: <text>\\nOutput: <label>"}``. Every error names the file (by its name) and the line, and says
what is wrong without repeating the file's content.
"""

import json
from pathlib import Path

from .errors import InvalidInput
from .policy import Policy
from .prompt import Example, NormalizedText, labelled_item

DATA = Path(__file__).parent / "data"
SEED_FILE = DATA / "seed.jsonl"
"""The project's own labelled examples, written for it: what the demo model trains on."""
HELDOUT_FILE = DATA / "heldout.jsonl"
"""The project's held-out set: never trained on, the set every model and prompt is measured on."""
POOL_FILE = DATA / "pool.jsonl"
"""A pool of labelled texts shared with neither set above: corrections for the retraining proof are drawn from it."""


def read_labelled(path: str | Path, policy: Policy) -> list[tuple[NormalizedText, str]]:
    """The (text, label) pairs of ``path``, in file order, each label one of ``policy``'s; InvalidInput naming the
    file and line otherwise (and, for labels that are not the policy's, every such label)."""
    name = Path(path).name
    try:
        content = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InvalidInput(f"{name} is not UTF-8 text ({error}): save it as utf-8.") from None
    if content.lstrip().startswith("["):
        items = enumerate(_json(content, name, "the list"), 1)
        where = "item"
    else:
        items = ((number, _json(line, name, f"line {number}")) for number, line in enumerate(content.split("\n"), 1)
                 if line.strip())
        where = "line"
    pairs, unknown = [], {}
    for number, item in items:
        try:
            text, label = labelled_item(item)
        except InvalidInput as error:
            raise InvalidInput(f"{name}: {where} {number}: {error}") from None
        if label not in policy.labels:
            unknown.setdefault(label, number)
        pairs.append((text, label))
    if unknown:
        (label, number), *more = unknown.items()
        also = f" (and {', '.join(f'{other!r:.80} on {where} {at}' for other, at in more)})" if more else ""
        raise InvalidInput(f"{name}: {where} {number}: Unknown label {label!r:.80}{also}: choose one of "
                           f"{', '.join(policy.listed)}.")
    if not pairs:
        raise InvalidInput(f"{name} holds no labelled texts: give one example a line, like "
                           '{"text": "I want to call in sick", "label": "casual"}.')
    return pairs


def _json(text: str, name: str, where: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidInput(f"{name}: {where}: not valid JSON ({error}).") from None
    except RecursionError:
        raise InvalidInput(f"{name}: {where}: JSON nested too deeply: give flat objects, like "
                           '{"text": "I want to call in sick", "label": "casual"}.') from None


def read_examples(path: str | Path, policy: Policy) -> Policy:
    """``policy`` with the labelled texts of ``path`` as its few-shot examples."""
    return policy.with_examples(Example(text, label) for text, label in read_labelled(path, policy))
