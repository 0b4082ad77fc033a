"""Model versions: what a fine-tune writes beside its weights (``version.json``), so that what serves a
prediction can be named, and an adapter is only ever put on the model it was trained on."""

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .errors import ModelLoadError
from .policy import CARD, Policy, policy_from

VERSION_FILE = "version.json"
REPORT_JSON, REPORT_MD = "report.json", "report.md"
"""The held-out records evaluated before and after the training that made a version (see
:mod:`moderation.training.report`)."""
KINDS = ("lora", "merged", "full")
"""lora: an adapter folder for the base model; merged: the base with the adapter merged in; full: all weights
fine-tuned. The last two are whole models, served with ``--model DIR``."""


@dataclass(frozen=True)
class ModelVersion:
    """A trained version: its name, what kind of folder holds it, and the base model it was trained from.

    ``base_model`` is what loads the base (a Hugging Face id, a folder, or ``demo``), ``base_name`` how
    results name it, and ``base_fingerprint`` identifies its weights (see :mod:`moderation.backends.local.adapters`).
    ``training`` holds the figures of the run that made it, ``trained_texts`` the hashes of the texts it trained on
    (:func:`~moderation.prompt.text_hash`: an evaluation of the version leaves them out), ``started_by`` who started
    the training (when known), ``policy`` the policy it was trained in (its
    :meth:`~moderation.policy.Policy.fields`; None for a version made before policies: the card's) and ``format``
    the prompt format.
    """

    name: str
    kind: str
    base_model: str
    base_name: str
    base_fingerprint: str
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    training: dict = field(default_factory=dict)
    trained_texts: list[str] = field(default_factory=list)
    started_by: str | None = None
    policy: dict | None = None
    format: str = "card"
    """The prompt format it learned to answer in."""

    @property
    def trained_policy(self) -> Policy:
        """The policy the version was trained in: the one it serves with."""
        return policy_from(self.policy) if self.policy else CARD

    def write(self, folder: str | Path) -> None:
        """Write ``version.json`` into ``folder``."""
        (Path(folder) / VERSION_FILE).write_text(json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n")

    @classmethod
    def read(cls, folder: str | Path) -> "ModelVersion":
        """The version written in ``folder``; ModelLoadError when it holds none."""
        path = Path(folder) / VERSION_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**data)
        except FileNotFoundError:
            raise ModelLoadError(f"{folder} holds no {VERSION_FILE}: give a folder written by "
                                 "python -m moderation.training.") from None
        except (ValueError, TypeError) as error:
            raise ModelLoadError(f"{path} is not a version file written by python -m moderation.training "
                                 f"({error}).") from None

    @classmethod
    def find(cls, folder: str | Path) -> "ModelVersion | None":
        """The version written in ``folder``, or None when it holds none (a plain checkpoint)."""
        return cls.read(folder) if (Path(folder) / VERSION_FILE).is_file() else None


def version_name(base_name: str, kind: str, when: datetime | None = None) -> str:
    """A new version's default name: the base's last path part, the kind, and the UTC time, like
    ``GPT-JT-Moderation-6B-lora-20260514T120301``."""
    stamp = (when or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%S")
    return f"{Path(base_name.rstrip('/')).name}-{kind}-{stamp}"


def model_reference(model: str) -> str:
    """How a version records the model it was trained from: a folder as its absolute path, else as given."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.is_dir() else model


def other_base(version: ModelVersion, folder: str | Path, loaded: str) -> ModelLoadError:
    """The error for an adapter put on another model than the one it was trained on; it names both."""
    trained_on = version.base_name if version.base_name == version.base_model else (
        f"{version.base_name} ({version.base_model})")
    return ModelLoadError(
        f"The adapter {version.name} in {folder} was trained on {trained_on}, not on {loaded}, the model loaded "
        f"here: start with --model {version.base_model}, or give an adapter trained on {loaded}."
    )
