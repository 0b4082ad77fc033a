"""Evaluation runs and comparisons as Markdown: the one formatter of the command line, the Evaluate tab and a
training report. User texts and names go through ``text`` (shown as text in a page: :func:`markdown_text`; as they
are in a terminal: ``str``)."""

from collections.abc import Callable

from ..markdown import markdown_text
from .compare import BROKEN, FIXED
from .metrics import NO_LABEL

HEADLINE = ("accuracy", "macro_f1", "kappa_quadratic", "mean_severity_error", "ece", "flagged.f1", "intervene.f1")
"""The figures a report puts first."""

Text = Callable[[str], str]


def figure_text(value) -> str:
    """A figure as a report shows it: three decimals, a count as it is, ``-`` where it is undefined."""
    # + 0.0 shows a change that rounds to nothing as 0.000, not -0.000
    return "-" if value is None else f"{round(value, 3) + 0.0:.3f}" if isinstance(value, float) else str(value)


def describe(run: dict) -> str:
    """One line that tells a run apart: id, time, model (or version), template, threshold, mode and gold set."""
    when = f"#{run['id']} {run['created'][:16].replace('T', ' ')} " if run.get("id") else ""
    model = f"{run['model']} (version {run['version']})" if run.get("version") else run["model"]
    return (f"{when}{model}, template {run['template']}, threshold {run['threshold']}, {run['mode']} on "
            f"{run['gold_name']} ({run['gold_size']} texts)")


def run_report(run: dict, *, conflicts=(), detail: bool = False, text: Text = markdown_text) -> str:
    """A stored run: what it measured and its headline figures; with ``detail``, each label's figures, the two
    decisions, the confusion matrix and the intervention at each threshold too. ``conflicts`` are the texts whose
    accepted labels disagreed (:class:`~moderation.evaluate.gold.Conflict`)."""
    metrics = run["metrics"]
    headline = [f"accuracy **{metrics['accuracy']:.1%}**", f"macro-F1 {metrics['macro_f1']:.3f}"]
    if "kappa_quadratic" in metrics:  # an ordinal policy's
        headline += [f"quadratic kappa {figure_text(metrics['kappa_quadratic'])}",
                     f"mean severity error {metrics['mean_severity_error']:.3f}"]
    headline.append(f"ECE {metrics['ece']:.3f}" if "ece" in metrics else f"{NO_LABEL} {metrics['no_label']:.1%}")
    lines = [f"**Run #{run['id']}**: {' · '.join(headline)}", "", text(describe(run))]
    if detail:
        lines += ["", _table(["label", "precision", "recall", "F1", "support"],
                             [[label, *(figure_text(s[key]) for key in ("precision", "recall", "f1", "support"))]
                              for label, s in metrics["per_label"].items()]),
                  "", _decision("Flagged (not the least severe label)", metrics["flagged"]),
                  _decision(f"Intervene at {run['threshold']}", metrics["intervene"]),
                  "", "Confusion (rows: gold, columns: predicted):", "",
                  _table(["gold", *metrics["confusion"]["labels"]],
                         [[gold, *map(str, row)] for gold, row in zip(metrics["confusion"]["labels"],
                                                                      metrics["confusion"]["matrix"])
                          if gold != NO_LABEL]),
                  "", "Intervention at each threshold:", ""]
        lines += ["- " + _decision(f"from {step['threshold']}", step) for step in metrics["sweep"]]
    if conflicts:
        lines += ["", f"{len(conflicts)} texts were accepted with different labels; the latest was kept:"]
        lines += [f"- {' → '.join(conflict.labels)}: {text(conflict.text)}" for conflict in conflicts]
    return "\n".join(lines)


def comparison_report(comparison: dict, *, a: str = "A", b: str = "B", every_figure: bool = False,
                      flips: bool = True, text: Text = markdown_text) -> str:
    """Run ``b`` against run ``a`` (see :func:`~moderation.evaluate.compare.compare`): how many texts it fixes and
    breaks, the headline figures (``every_figure``: all of them) before and after, and (``flips``) every text whose
    label changed."""
    runs = comparison["a"], comparison["b"]
    stored = f"run #{runs[0]['id']} → #{runs[1]['id']}; " if runs[0].get("id") and runs[1].get("id") else ""
    lines = [f"**{b[:1].upper() + b[1:]} fixes {comparison[FIXED]} and breaks {comparison[BROKEN]}** of "
             f"{runs[1]['gold_size']} texts on the {text(runs[1]['gold_name'])} against {a} ({stored}"
             f"{len(comparison['flipped'])} labels change).", "",
             f"- {a}: {text(describe(runs[0]))}", f"- {b}: {text(describe(runs[1]))}"]
    if not comparison["same_gold"]:
        lines += ["", "The runs were made on different gold sets: the figures are not measured on the same texts."]
    shown = comparison["metrics"] if every_figure else [name for name in HEADLINE if name in comparison["metrics"]]
    lines += ["", _table(["figure", a, b, f"{b} - {a}"],
                         [row for row in figure_rows(comparison) if row[0] in shown])]
    if flips and comparison["flipped"]:
        lines += ["", "Texts whose label changed:", "",
                  _table(["text", "gold", a, b, "outcome"],
                         [[text(row[0]), *row[1:]] for row in flip_rows(comparison)])]
    return "\n".join(lines)


def flip_rows(comparison: dict) -> list[list[str]]:
    """One row per flipped text: text, gold label, both labels, and whether it was fixed or broken."""
    return [[flip["text"], flip["gold"], flip["a"] or NO_LABEL, flip["b"] or NO_LABEL, flip["outcome"]]
            for flip in comparison["flipped"]]


def figure_rows(comparison: dict) -> list[list[str]]:
    """Every figure of both runs, with its change."""
    return [[name, *(figure_text(figure[key]) for key in ("a", "b", "delta"))]
            for name, figure in comparison["metrics"].items()]


def _decision(title: str, scores: dict) -> str:
    return (f"{title}: precision {scores['precision']:.3f}, recall {scores['recall']:.3f}, f1 {scores['f1']:.3f} "
            f"({scores['support']} in the gold set)")


def _table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table of these cells (as they are: user texts come through ``text``)."""
    return "\n".join("| " + " | ".join(map(str, line)) + " |" for line in [header, ["---"] * len(header), *rows])
