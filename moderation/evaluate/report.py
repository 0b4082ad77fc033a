"""Evaluation runs and comparisons as Markdown: the one formatter of the command line, the Evaluate tab and a
training report. User texts and names go through ``text`` (shown as text in a page: :func:`markdown_text`; as they
are in a terminal: ``str``)."""

from collections.abc import Callable

from ..markdown import markdown_text
from .compare import BROKEN, FIXED
from .intervals import CONFIDENCE, RESAMPLES, figures_of, run_intervals, severity_of
from .metrics import NO_LABEL

HEADLINE = ("accuracy", "macro_f1", "kappa_quadratic", "mean_severity_error", "ece", "flagged.f1", "intervene.f1")
"""The figures a report puts first."""

Text = Callable[[str], str]


def figure_text(value) -> str:
    """A figure as a report shows it: three decimals, a count as it is, ``-`` where it is undefined."""
    # + 0.0 shows a change that rounds to nothing as 0.000, not -0.000
    return "-" if value is None else f"{round(value, 3) + 0.0:.3f}" if isinstance(value, float) else str(value)


def describe(run: dict) -> str:
    """One line that tells a run apart: id, time, model (or version), template, threshold, mode and gold set (and how
    many of its texts the version trained on were left out, or kept)."""
    when = f"#{run['id']} {run['created'][:16].replace('T', ' ')} " if run.get("id") else ""
    model = f"{run['model']} (version {run['version']})" if run.get("version") else run["model"]
    return (f"{when}{model}, template {run['template']}, threshold {run['threshold']}, {run['mode']} on "
            f"{run['gold_name']} ({run['gold_size']} texts{trained_note(run)})")


def trained_note(run: dict) -> str:
    """What a run says of the gold texts its version trained on: left out, or kept (labelled as such)."""
    if run.get("trained_included"):
        return f", {run['trained_included']} of them trained on"
    if run.get("trained_left_out"):
        return f"; {run['trained_left_out']} texts it trained on left out"
    return ""


def run_report(run: dict, *, conflicts=(), detail: bool = False, text: Text = markdown_text) -> str:
    """A stored run: what it measured and its headline figures (the first three with their 95% intervals); with
    ``detail``, each label's figures, the two decisions, the confusion matrix and the intervention at each threshold
    too. ``conflicts`` are the texts whose accepted labels disagreed (:class:`~moderation.evaluate.gold.Conflict`)."""
    metrics = run["metrics"]
    intervals = run_intervals([item["gold"] for item in run["items"]], [item["label"] for item in run["items"]],
                              severity_of(run))
    headline = [f"accuracy **{metrics['accuracy']:.1%}** {interval_text(intervals['accuracy'], percent=True)}",
                f"macro-F1 {metrics['macro_f1']:.3f} {interval_text(intervals['macro_f1'])}"]
    if "kappa_quadratic" in metrics:  # an ordinal policy's
        headline += [f"quadratic kappa {figure_text(metrics['kappa_quadratic'])} "
                     f"{interval_text(intervals['kappa_quadratic'])}",
                     f"mean severity error {metrics['mean_severity_error']:.3f}"]
    headline.append(f"ECE {metrics['ece']:.3f}" if "ece" in metrics else f"{NO_LABEL} {metrics['no_label']:.1%}")
    lines = [f"**Run #{run['id']}**: {' · '.join(headline)} (on {metrics['n']} texts)", "", intervals_note(metrics), "",
             text(describe(run))]
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
    breaks, the headline figures (``every_figure``: all of them) before and after, with the 95% intervals of the
    first three and of their changes, McNemar's test, each label's precision and recall with their changes, the
    benign regressions, and (``flips``) every text whose label changed. Each figure says how many texts it stands
    on."""
    runs = comparison["a"], comparison["b"]
    stored = f"run #{runs[0]['id']} → #{runs[1]['id']}; " if runs[0].get("id") and runs[1].get("id") else ""
    lines = [f"**{b[:1].upper() + b[1:]} fixes {comparison[FIXED]} and breaks {comparison[BROKEN]}** of "
             f"{runs[1]['gold_size']} texts on the {text(runs[1]['gold_name'])} against {a} ({stored}"
             f"{len(comparison['flipped'])} labels change).", "",
             f"- {a}: {text(describe(runs[0]))}", f"- {b}: {text(describe(runs[1]))}"]
    if not comparison["same_gold"]:
        lines += ["", "The runs were made on different gold sets: the figures are not measured on the same texts."]
    shown = comparison["metrics"] if every_figure else [name for name in HEADLINE if name in comparison["metrics"]]
    paired = comparison["paired"] or {"n": 0, "intervals": {}}
    lines += ["", f"{intervals_note(comparison['metrics'])} The intervals stand on the {paired['n']} texts both runs "
              "labelled, resampled in pairs.",
              "", _table(["figure", a, b, f"{b} - {a}"],
                         [_with_intervals(row, paired["intervals"].get(row[0])) for row in figure_rows(comparison)
                          if row[0] in shown])]
    if comparison["paired"]:
        lines += ["", mcnemar_text(paired["mcnemar"], a, b)]
    lines += ["", "Each label: precision on the texts a run gives it (how many, in brackets), recall on the texts gold "
              "gives it:", "", _table(*label_rows(comparison, a, b))]
    benign = comparison["benign_regressions"]
    lines += ["", f"**{len(benign)} benign regressions**: texts {a} labels {comparison['benign']}, as gold does, that "
              f"{b} flags" + (":" if benign else ".")]
    if benign:
        lines += ["", _table(["text", b], [[text(flip["text"]), flip["b"]] for flip in benign])]
    if flips and comparison["flipped"]:
        lines += ["", "Texts whose label changed:", "",
                  _table(["text", "gold", a, b, "outcome"],
                         [[text(row[0]), *row[1:]] for row in flip_rows(comparison)])]
    return "\n".join(lines)


def gate_report(decision: dict, *, text: Text = markdown_text) -> str:
    """The gate's decision (:func:`~moderation.evaluate.gate.gate`): allowed or refused, every reason with its figures
    and texts, then the comparison of the candidate with the serving model."""
    runs = decision["comparison"]["a"], decision["comparison"]["b"]
    candidate, serving = (text(run["version"] or run["model"]) for run in reversed(runs))
    rules = decision["rules"]
    if decision["allowed"]:
        head = [f"**The gate allows {candidate}** against the serving {serving}: no headline figure is worse with its "
                f"interval below zero, {len(decision['comparison']['benign_regressions'])} benign regressions (at most "
                f"{rules['max_benign_regressions']}), on {decision['comparison']['paired']['n']} texts (at least "
                f"{rules['min_gate_texts']})."]
    else:
        head = [f"**The gate refuses {candidate}** against the serving {serving}:", ""]
        head += [f"- {text(reason)}" for reason in decision["reasons"]]
    return "\n".join(head + ["", comparison_report(decision["comparison"], a="serving", b="candidate", flips=False,
                                                   text=text)])


LEADERBOARD_COLUMNS = ["model", "accuracy", "macro-F1", "AUPRC flagged", "benign flags", "p50 ms (one text)",
                       "labels/s", "run"]
"""The header of the leaderboard's table of figures."""


def leaderboard_report(board: dict, *, text: Text = markdown_text) -> str:
    """The leaderboard (:func:`~moderation.evaluate.leaderboard.leaderboard`): a row a model, best macro-F1 first,
    then every text some model gets wrong with each model's label."""
    lines = [leaderboard_headline(board, text=text), "", _table(LEADERBOARD_COLUMNS, [
        [text(row[0]), *row[1:]] for row in leaderboard_rows(board)])]
    if board["wrong"]:
        header, rows = wrong_rows(board)
        lines += ["", f"Texts some model gets wrong ({len(board['wrong'])}):", "",
                  _table([*header[:2], *map(text, header[2:])], [[text(row[0]), *row[1:]] for row in rows])]
    return "\n".join(lines)


def leaderboard_headline(board: dict, *, text: Text = markdown_text) -> str:
    """What the leaderboard ranks: how many models, on which gold set and how many texts."""
    gold, models = board["gold"], len(board["rows"])
    return (f"**{models} model{'s' if models != 1 else ''} on the {text(gold['name'])}** ({gold['size']} texts), best "
            "macro-F1 first:")


def leaderboard_rows(board: dict) -> list[list[str]]:
    """One row per model, best macro-F1 first: its figures (:data:`LEADERBOARD_COLUMNS`) and its stored run."""
    return [[row["model"], f"{row['accuracy']:.1%}", figure_text(row["macro_f1"]), figure_text(row["auprc_flagged"]),
             str(row["benign_flags"]), f"{row['p50_ms']:.1f}", f"{row['labels_per_second']:.1f}", f"#{row['run']}"]
            for row in board["rows"]]


def wrong_rows(board: dict) -> tuple[list[str], list[list[str]]]:
    """The header (text, gold, then each model in the board's order) and one row per text some model gets wrong:
    gold's label and each model's (``-`` where its run left the text out or gave no label)."""
    names = [row["model"] for row in board["rows"]]
    return ["text", "gold", *names], [[item["text"], item["gold"], *(item["labels"][name] or "-" for name in names)]
                                      for item in board["wrong"]]


def mcnemar_text(test: dict, a: str, b: str) -> str:
    """McNemar's exact test in words: how many texts only each run gets right, and the p-value."""
    return (f"McNemar's exact test: only {a} is right on {test['a_only']} texts, only {b} on {test['b_only']}; "
            f"p = {test['p']:.3g} (the chance of a split this uneven if neither were better).")


def label_rows(comparison: dict, a: str, b: str) -> tuple[list[str], list[list[str]]]:
    """The header and rows of each label's precision (with how many texts each run gives the label) and recall (with
    how many texts gold gives it) in both runs, and their changes."""
    figures, given = comparison["metrics"], comparison["given"]
    header = ["label", "gold texts", f"precision {a}", b, f"{b} - {a}", f"recall {a}", b, f"{b} - {a}"]
    rows = []
    for label in comparison["labels"]:
        precision, recall = (figures[f"per_label.{label}.{kind}"] for kind in ("precision", "recall"))
        rows.append([label, figure_text(figures[f"per_label.{label}.support"]["b"]),
                     *(f"{figure_text(precision[side])} ({given[side].get(label, 0)})" for side in ("a", "b")),
                     figure_text(precision["delta"]), *(figure_text(recall[key]) for key in ("a", "b", "delta"))])
    return header, rows


def intervals_note(metrics: dict) -> str:
    """What the brackets of a report mean, for the figures of ``metrics`` that have intervals."""
    return (f"In brackets, the {CONFIDENCE:.0%} bootstrap interval of {', '.join(figures_of(metrics))} ({RESAMPLES} "
            "resamples of the texts, seeded).")


def interval_text(interval: list[float] | None, *, percent: bool = False) -> str:
    """A 95% interval as a report shows it: ``[low, high]``, ``[-]`` where it is undefined."""
    if interval is None:
        return "[-]"
    return "[" + ", ".join(f"{value:.1%}" if percent else figure_text(value) for value in interval) + "]"


def flip_rows(comparison: dict) -> list[list[str]]:
    """One row per flipped text: text, gold label, both labels, and whether it was fixed or broken."""
    return [[flip["text"], flip["gold"], flip["a"] or NO_LABEL, flip["b"] or NO_LABEL, flip["outcome"]]
            for flip in comparison["flipped"]]


def figure_rows(comparison: dict) -> list[list[str]]:
    """Every figure of both runs, with its change."""
    return [[name, *(figure_text(figure[key]) for key in ("a", "b", "delta"))]
            for name, figure in comparison["metrics"].items()]


def _with_intervals(row: list[str], intervals: dict | None) -> list[str]:
    """A figure row, each value followed by its 95% interval where the figure has one."""
    if intervals is None:
        return row
    return [row[0], *(f"{value} {interval_text(intervals[key])}" for value, key in zip(row[1:], ("a", "b", "delta")))]


def _decision(title: str, scores: dict) -> str:
    return (f"{title}: precision {scores['precision']:.3f}, recall {scores['recall']:.3f}, f1 {scores['f1']:.3f} "
            f"({scores['support']} in the gold set)")


def _table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table of these cells (as they are: user texts come through ``text``)."""
    return "\n".join("| " + " | ".join(map(str, line)) + " |" for line in [header, ["---"] * len(header), *rows])
