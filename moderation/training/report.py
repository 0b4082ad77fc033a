"""Before and after a fine-tune: the held-out records evaluated on the model training starts from and on the new
version (through :mod:`moderation.evaluate`), written beside the version as ``report.json`` and ``report.md``."""

import json
from pathlib import Path

from ..backends.local.backend import LocalBackend
from ..engine import Moderator
from ..evaluate import GoldSet, compare, evaluate
from ..evaluate.compare import figure_text
from ..markdown import markdown_text
from ..versions import REPORT_JSON, REPORT_MD
from .data import Record

GOLD_NAME = "held-out records"
HEADLINE = ("accuracy", "macro_f1", "kappa_quadratic", "mean_severity_error", "ece", "flagged.f1", "intervene.f1")
"""The figures report.md puts first."""


def held_out_gold(records: list[Record]) -> GoldSet:
    """The gold set of the records a fine-tune is judged on (never trained on)."""
    return GoldSet(GOLD_NAME, tuple(records))


def measure(model, tokenizer, name: str, gold: GoldSet) -> dict:
    """An Evaluate run of ``model`` (as it is now: call it before training changes it) on ``gold``, with the card's
    prompt."""
    model.eval()
    return evaluate(Moderator(LocalBackend(model, tokenizer), name), gold)


def write_report(folder: Path, before: dict, after: dict) -> dict:
    """``report.json`` (the figures before and after, and the flipped items) and ``report.md`` (the same, to
    read) in ``folder``; returns the report."""
    comparison = compare(before, after)
    report = {
        "gold": {"name": before["gold_name"], "size": before["gold_size"], "hash": before["gold_hash"]},
        "before": {"model": before["model"], **before["metrics"]},
        "after": {"model": after["model"], **after["metrics"]},
        "fixed": comparison["fixed"],
        "broken": comparison["broken"],
        "flipped": comparison["flipped"],
    }
    (folder / REPORT_JSON).write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    (folder / REPORT_MD).write_text(report_text(report, comparison["metrics"]), encoding="utf-8")
    return report


def report_text(report: dict, figures: dict) -> str:
    """The report as Markdown: the headline figures before and after, then every flipped text (texts and names
    shown as they are, never as markup)."""
    before, after = markdown_text(report["before"]["model"]), markdown_text(report["after"]["model"])
    lines = [f"# {after}: before and after training", "",
             f"On the {report['gold']['size']} {markdown_text(report['gold']['name'])} (never trained on), "
             f"{before} before and {after} after. The new version fixes "
             f"{report['fixed']} and breaks {report['broken']} of them.", "",
             "| figure | before | after | change |", "| --- | --- | --- | --- |"]
    lines += [f"| {name} | {figure_text(figures[name]['a'])} | {figure_text(figures[name]['b'])} | "
              f"{figure_text(figures[name]['delta'])} |" for name in HEADLINE if name in figures]
    if report["flipped"]:
        lines += ["", "## Texts whose label changed", "", "| text | gold | before | after | outcome |",
                  "| --- | --- | --- | --- | --- |"]
        lines += [f"| {markdown_text(item['text'])} | {item['gold']} | {item['a']} | {item['b']} | {item['outcome']} |"
                  for item in report["flipped"]]
    return "\n".join(lines) + "\n"
