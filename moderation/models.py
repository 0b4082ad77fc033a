"""Which models serve, side by side: one spec per model, each with its own prompt format, policy and backend.

A spec is written on the command line as ``NAME=MODEL[,format=F][,policy=FILE][,backend=B][,base_url=URL]
[,adapter=DIR]`` (``--model`` repeated; a bare ``MODEL`` is one model named as it loads), or as a ``[[models]]``
table in a TOML file (``--models models.toml``). The first model is the default. A model whose format is not
given takes its family's (:data:`FAMILY_FORMATS`); one whose policy is not given takes the shared ``--policy``
(see :func:`open_served`).
"""

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .engine import Moderator
from .errors import InvalidInput
from .loader import open_moderator
from .policy import CARD, Policy, read_policy
from .settings import DEFAULT_INTERVENTION, Settings
from .templates import FORMATS, template_for
from .versions import ModelVersion

FAMILY_FORMATS = (("llama-guard", "llama-guard"), ("shieldgemma", "yes-no"), ("granite-guardian", "yes-no"))
"""(a word in a model's id or folder name, the format its family is prompted in); any other model: ``card``."""
OPTIONS = ("format", "policy", "backend", "base_url", "adapter")
"""What a spec may set besides its name and model."""
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""A model's name: what REST's ``model`` and the page's choice call it."""


@dataclass(frozen=True)
class ModelSpec:
    """One served model: its ``name`` (None: the name it loads with), the ``model`` to load (None: the default
    model), its prompt ``format`` and ``policy`` (None: see :func:`open_served`), and where it runs."""

    name: str | None
    model: str | None
    format: str | None = None
    policy: Policy | None = None
    backend: str = "local"
    base_url: str | None = None
    adapter: str | None = None


def family_format(model: str | None) -> str:
    """The format of ``model``'s family, by a word in its id or folder name (``card`` for any other)."""
    lowered = (model or "").lower()
    return next((format for word, format in FAMILY_FORMATS if word in lowered), "card")


def parse_spec(text: str, *, backend: str = "local", base_url: str | None = None) -> ModelSpec:
    """The spec ``NAME=MODEL[,key=value...]`` (or a bare ``MODEL``); ``backend`` and ``base_url`` are the shared
    options' values, which a spec's own override. InvalidInput naming the fix for anything else."""
    head, *pairs = text.split(",")
    name, model = head.split("=", 1) if "=" in head else (None, head)
    options = {"backend": backend, "base_url": base_url}
    for pair in pairs:
        key, found, value = pair.partition("=")
        if not found or key.strip() not in OPTIONS or not value.strip():
            raise InvalidInput(f"--model {text!r}: {pair!r} is not an option: write NAME=MODEL,format=F,"
                               f"policy=FILE (options: {', '.join(OPTIONS)}).", "model")
        options[key.strip()] = value.strip()
    return spec_from(name, model, options, f"--model {text!r}")


def spec_from(name: str | None, model: str | None, options: dict, where: str) -> ModelSpec:
    """A checked spec: its name well formed, its format known, its policy read."""
    if name is not None and not NAME.fullmatch(name.strip()):
        raise InvalidInput(f"{where}: the name {name!r} must be letters, digits, '.', '_' or '-' (64 at most), "
                           "starting with a letter or digit.", "model")
    model = (model or "").strip() or None
    format = options.get("format")
    if format is not None and format not in FORMATS:
        raise InvalidInput(f"{where}: unknown format {format!r}: choose one of {', '.join(FORMATS)}.", "format")
    policy = read_policy(options["policy"]) if options.get("policy") else None
    return ModelSpec(name=name.strip() if name else None, model=model, format=format, policy=policy,
                     backend=options.get("backend") or "local", base_url=options.get("base_url"),
                     adapter=options.get("adapter"))


def read_specs(path: str | Path, *, backend: str = "local", base_url: str | None = None) -> list[ModelSpec]:
    """The ``[[models]]`` of the TOML file ``path`` (each a ``name``, a ``model`` and the options); policy files
    are found beside it. InvalidInput naming the file and the model otherwise."""
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise InvalidInput(f"{path.name}: not TOML ({error}): write a [[models]] table a model.", "models") from None
    tables = document.get("models")
    if not tables or not isinstance(tables, list) or not all(isinstance(item, dict) for item in tables):
        raise InvalidInput(f'{path.name}: no [[models]] tables: write one a model, with name = "..." and '
                           'model = "...".', "models")
    specs = []
    for number, table in enumerate(tables, 1):
        where = f"{path.name}, model {number}"
        unknown = table.keys() - {"name", "model", *OPTIONS}
        if unknown or not all(isinstance(value, str) for value in table.values()):
            raise InvalidInput(f"{where}: give strings for name, model and {', '.join(OPTIONS)} only"
                               + (f" (not {', '.join(sorted(unknown))})" if unknown else "") + ".", "models")
        if not table.get("name"):
            raise InvalidInput(f'{where}: give it a name = "...".', "models")
        options = {"backend": backend, "base_url": base_url, **table}
        if options.get("policy"):
            options["policy"] = str(path.parent / options["policy"])
        specs.append(spec_from(table["name"], table.get("model"), options, where))
    return specs


def check_names(names: list[str]) -> list[str]:
    """``names`` if no two models share one, else InvalidInput naming it."""
    seen = set()
    for name in names:
        if name in seen:
            raise InvalidInput(f"Two models are named {name!r}: give each its own name (--model NAME=MODEL).",
                               "model")
        seen.add(name)
    return names


@dataclass(frozen=True)
class ServedModel:
    """A model that serves: its name, the Moderator that runs it, and the settings it moderates with (its format
    and policy)."""

    name: str
    moderator: Moderator
    settings: Settings

    def describe(self) -> str:
        """One line for the log: what it is, its format and policy, and the memory its weights take."""
        memory = self.moderator.backend.memory_bytes
        where = f"{memory / 2**20:,.0f} MiB of weights" if memory is not None else "weights on the server"
        return (f"{self.name}: {self.moderator.name}, format {self.settings.template.format}, policy "
                f"{self.settings.policy.name}, {where}, loaded in {self.moderator.load_seconds or 0:.1f} s")


def open_served(spec: ModelSpec, policy: Policy | None = None, *, threshold: str | None = None,
                intervention: str = DEFAULT_INTERVENTION, **options) -> ServedModel:
    """The model ``spec`` names, loaded (:func:`~moderation.loader.open_moderator`), with the settings it moderates
    with, checked against it: the spec's format, else a trained version's, else its family's; the spec's policy,
    else the shared ``policy`` (with ``threshold``), else a trained version's, else the card's."""
    moderator = open_moderator(spec.model, backend=spec.backend, base_url=spec.base_url, adapter=spec.adapter,
                               name=spec.name, **options)
    return served_as(spec, moderator, policy, threshold=threshold, intervention=intervention)


def served_as(spec: ModelSpec, moderator: Moderator, policy: Policy | None = None, *, threshold: str | None = None,
              intervention: str = DEFAULT_INTERVENTION) -> ServedModel:
    """``moderator``, loaded as ``spec`` says, with the settings :func:`open_served` gives it."""
    version = moderator.version
    format = spec.format or (version.format if version else family_format(spec.model))
    chosen = chosen_policy(spec, policy, version)
    settings = Settings(template_for(format, chosen), None if spec.policy else threshold, intervention)
    return ServedModel(spec.name or moderator.name, moderator, moderator.check_settings(settings))


def chosen_policy(spec: ModelSpec, policy: Policy | None = None,
                  version: ModelVersion | None = None) -> Policy:
    """The policy a model serves in: the spec's, else the shared ``policy``, else its trained ``version``'s, else the
    card's."""
    return spec.policy or policy or (version.trained_policy if version else CARD)


def declared_policy(spec: ModelSpec, policy: Policy | None = None) -> Policy:
    """The policy :func:`open_served` will give ``spec``, known before it loads (a trained version's is read from its
    ``version.json``): what a gold set is checked against before a model is loaded."""
    folder = spec.adapter or (spec.model if spec.model and Path(spec.model).is_dir() else None)
    return chosen_policy(spec, policy, ModelVersion.find(folder) if folder else None)
