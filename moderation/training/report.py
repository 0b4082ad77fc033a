"""Before and after a fine-tune: the held-out records evaluated on the model training starts from and on the new
version (through :mod:`moderation.evaluate`), written beside the version as ``report.json`` and ``report.md``."""

import json
from pathlib import Path

from ..backends.local.backend import LocalBackend
from ..engine import Moderator
from ..evaluate import GoldSet, compare, evaluate
from ..evaluate.report import comparison_report
from ..markdown import markdown_text
from ..policy import Policy
from ..settings import Settings
from ..templates import Template
from ..versions import REPORT_JSON, REPORT_MD
from .data import LabelledText

GOLD_NAME = "held-out records"


def held_out_gold(records: list[LabelledText], policy: Policy) -> GoldSet:
    """The gold set of the records a fine-tune is judged on (never trained on), labelled in ``policy``."""
    return GoldSet(GOLD_NAME, tuple(records), policy=policy)


def measure(model, tokenizer, name: str, gold: GoldSet, template: Template) -> dict:
    """An Evaluate run of ``model`` (as it is now: call it before training changes it) on ``gold``, prompted with
    ``template`` (in the gold set's policy)."""
    model.eval()
    return evaluate(Moderator(LocalBackend(model, tokenizer), name), gold, Settings(template))


def write_report(folder: Path, before: dict, after: dict) -> dict:
    """``report.json`` (the figures before and after with their intervals and McNemar's test, the flipped items and
    the benign regressions) and ``report.md`` (the same, to read) in ``folder``; returns the report."""
    comparison = compare(before, after)
    report = {
        "gold": {"name": before["gold_name"], "size": before["gold_size"], "hash": before["gold_hash"]},
        "before": {"model": before["model"], **before["metrics"]},
        "after": {"model": after["model"], **after["metrics"]},
        "fixed": comparison["fixed"],
        "broken": comparison["broken"],
        "paired": comparison["paired"],
        "benign_regressions": comparison["benign_regressions"],
        "flipped": comparison["flipped"],
    }
    (folder / REPORT_JSON).write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    (folder / REPORT_MD).write_text(report_text(comparison), encoding="utf-8")
    return report


def report_text(comparison: dict) -> str:
    """The report as Markdown: a title, then the comparison of the version with the model it started from."""
    after = comparison["b"]
    return (f"# {markdown_text(after['version'] or after['model'])}: before and after training\n\n"
            + comparison_report(comparison, a="before", b="after") + "\n")
