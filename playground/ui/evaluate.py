"""The Evaluate tab (a gold set labelled with this session's settings, its figures as pictures, two stored runs
compared) and the Prompt tab's workbench (a draft measured against the server's default before it is published)."""

import gradio as gr

from moderation.evaluate import ACCEPTED_NAME, GOLD_SOURCES, HELDOUT_NAME
from moderation.evaluate.report import (
    LEADERBOARD_COLUMNS,
    comparison_report,
    describe,
    figure_rows,
    flip_rows,
    leaderboard_headline,
    leaderboard_rows,
    run_report,
    wrong_rows,
)
from moderation.results import MODES

from .common import DEFAULT_MODEL, Page, shown_errors
from .figures import confusion_heatmap, f1_bars, reliability_diagram

FIGURE_COLUMNS = ["figure", "A", "B", "B - A"]
FLIP_COLUMNS = ["text", "gold", "A", "B", "outcome"]
FLIP_WIDTHS = ["40%", "15%", "15%", "15%", "15%"]


def build(page: Page) -> None:
    """The tab and its events: /evaluate, /leaderboard, /runs (also when the tab opens) and /compare_runs."""
    service = page.service
    with gr.Tab("Evaluate") as tab:
        gr.Markdown("Label a gold set with the model and this session's prompt; every run is stored. Then pick "
                    "two runs to see what changed, text by text.")
        with gr.Row():
            source = gr.Radio(list(GOLD_SOURCES), value=HELDOUT_NAME, label="Gold set")
            upload = gr.File(label="Gold file (jsonl of {text, label} lines)", file_types=[".jsonl", ".json"],
                             type="filepath")
            mode = gr.Radio(list(MODES), value="score", label="Mode")
        button = gr.Button("Evaluate", variant="primary")
        summary = gr.Markdown(elem_id="evaluation-summary")
        with gr.Row():
            confusion = gr.Plot(label="Confusion matrix", elem_id="confusion")
            f1 = gr.Plot(label="F1 per label", elem_id="f1")
            reliability = gr.Plot(label="Reliability", elem_id="reliability")
        gr.Markdown("### Leaderboard\nEvery served model on the gold set above, each in its own prompt and policy (the "
                    "gold set's labels must be the default model's policy); each run is stored.")
        rank_button = gr.Button("Rank every served model")
        ranked = gr.Markdown(elem_id="leaderboard-summary")
        board = gr.Dataframe(headers=LEADERBOARD_COLUMNS, datatype="str", interactive=False, label="Models",
                             elem_id="leaderboard")
        wrong = gr.Dataframe(headers=["text", "gold"], datatype="str", interactive=False, wrap=True,
                             label="Where each model is wrong", elem_id="leaderboard-wrong")
        gr.Markdown("### Compare two runs")
        with gr.Row():
            run_a = gr.Dropdown([], label="Run A (before)", allow_custom_value=True)
            run_b = gr.Dropdown([], label="Run B (after)", allow_custom_value=True)
            compare_button = gr.Button("Compare")
        verdict = gr.Markdown(elem_id="comparison-summary")
        flipped = gr.Dataframe(headers=FLIP_COLUMNS, datatype="str", interactive=False, wrap=True, label="Flipped",
                               column_widths=FLIP_WIDTHS, elem_id="flipped")
        figures = gr.Dataframe(headers=FIGURE_COLUMNS, datatype="str", interactive=False, label="Figures")

    def runs(a=None, b=None):
        """Both run pickers, listing the stored runs (newest first)."""
        choices = [(describe(run), run["id"]) for run in service.runs()]
        return gr.Dropdown(choices=choices, value=a), gr.Dropdown(choices=choices, value=b)

    @shown_errors
    def evaluate(source: str, path: str | None, mode: str, draft, model: str = DEFAULT_MODEL, progress=gr.Progress()):
        """Label the gold set with the model chosen in this session's settings and store the run; returns its
        summary, the three figures, and the run pickers set to the previous run and this one."""
        progress(0, desc="Evaluating")
        settings = page.settings(draft, model)
        gold = service.gold_set(source, path, settings.policy)
        run = service.evaluate(gold, settings=settings, mode=mode, model=model or None,
                               progress=lambda done, total: progress((done, total), desc="Evaluating", unit="texts"))
        previous = next((other["id"] for other in service.runs(2) if other["id"] != run["id"]), None)
        metrics = run["metrics"]
        return (run_report(run, conflicts=gold.conflicts), confusion_heatmap(metrics), f1_bars(metrics),
                reliability_diagram(metrics), *runs(previous, run["id"]))

    @shown_errors
    def leaderboard(source: str, path: str | None, progress=gr.Progress()):
        """Every served model on the gold set (in the default's policy), each run stored: what was ranked, the
        figures a model, where each is wrong, and the run pickers set to the runner-up's run and the best one's."""
        progress(0, desc="Ranking")
        ranking = service.leaderboard(service.gold_set(source, path), progress=lambda done, total: progress(
            (done, total), desc="Ranking", unit="texts"))
        best, *others = (row["run"] for row in ranking["rows"])
        header, rows = wrong_rows(ranking)
        return (leaderboard_headline(ranking), leaderboard_rows(ranking), {"headers": header, "data": rows},
                *runs(others[0] if others else None, best))

    @shown_errors
    def compare_runs(a, b):
        """Run B against run A: what changed, the flipped texts, and every figure side by side."""
        comparison = service.compare(a, b)
        return comparison_report(comparison, flips=False), flip_rows(comparison), figure_rows(comparison)

    button.click(evaluate, [source, upload, mode, page.draft, page.model],
                 [summary, confusion, f1, reliability, run_a, run_b], api_name="evaluate")
    rank_button.click(leaderboard, [source, upload], [ranked, board, wrong, run_a, run_b], api_name="leaderboard")
    tab.select(runs, [run_a, run_b], [run_a, run_b], api_name="runs")
    compare_button.click(compare_runs, [run_a, run_b], [verdict, flipped, figures], api_name="compare_runs")


def build_workbench(page: Page, examples: gr.Dataframe, threshold: gr.Dropdown, to_examples) -> None:
    """Below the Prompt tab's editor: the examples and threshold as edited, measured against the server's default
    on a gold set (event /evaluate_draft). ``to_examples`` turns the table's rows into ``{"text", "label"}`` items."""
    service = page.service
    gr.Markdown("### Before you use it for everyone\nSee what the examples and threshold above fix and break against "
                "the server's default on a gold set (both runs are stored: compare them in Evaluate).")
    with gr.Row(equal_height=True):
        source = gr.Radio([HELDOUT_NAME, ACCEPTED_NAME], value=HELDOUT_NAME, label="Gold set")
        button = gr.Button("Evaluate against the default")
    verdict = gr.Markdown(elem_id="workbench-summary")
    flipped = gr.Dataframe(headers=["text", "gold", "default", "draft", "outcome"], datatype="str", interactive=False,
                           wrap=True, column_widths=FLIP_WIDTHS, label="Texts the draft labels differently")

    @shown_errors
    def evaluate_draft(rows, level: str, source: str, progress=gr.Progress()):
        """The edited examples and threshold against the server's default on the gold set."""
        progress(0, desc="Evaluating")
        draft = service.draft(to_examples(rows), level)
        comparison = service.try_settings(draft, service.gold_set(source),
                                          progress=lambda done, total: progress((done, total), desc="Evaluating",
                                                                                unit="texts"))
        return comparison_report(comparison, a="the default", b="the draft", flips=False), flip_rows(comparison)

    button.click(evaluate_draft, [examples, threshold, source], [verdict, flipped], api_name="evaluate_draft")
