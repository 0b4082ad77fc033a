"""The Dashboard tab: the feedback's figures, the same as ``python -m feedback stats --json``, drawn with plotly."""

import html

import gradio as gr
import plotly.graph_objects as go

from feedback.stats import as_figure, as_share
from moderation.markdown import markdown_text

from .common import Page, shown_errors

PAIR_COLUMNS = ["reviewer a", "reviewer b", "texts both judged", "Cohen's kappa"]


def build(page: Page) -> None:
    """The tab and its event: /dashboard (also when the page loads and when the tab opens)."""
    with gr.Tab("Dashboard") as tab:
        refresh = gr.Button("Refresh")
        overview = gr.Markdown()
        with gr.Row():
            mix = gr.Plot(label="Label mix")
            confusion = gr.Plot(label="Model against reviewers")
        with gr.Row():
            agreement = gr.Plot(label="Agreement between reviewers")
            flags = gr.Plot(label="Flag rate")
        shadow = gr.Plot(label="Serving model against its shadow", elem_id="shadow-plot")
        with gr.Row():
            reviewers = gr.Plot(label="Verdicts per reviewer", elem_id="reviewers-plot")
            pairs = gr.Dataframe(headers=PAIR_COLUMNS, interactive=False, label="Agreement of each pair")

    @shown_errors
    def dashboard():
        """Every figure, refreshed."""
        stats = page.service.stats()
        return (_overview(stats), _mix(stats), _confusion(stats), _by_day(stats, "krippendorff_alpha", "alpha"),
                _by_day(stats, "flag_rate", "share of verdicts that find the label wrong"), _shadow(stats),
                _reviewers(stats), [[pair["a"], pair["b"], pair["n"], as_figure(pair["cohen_kappa"])]
                                    for pair in stats["agreement"]["pairs"]])

    outputs = [overview, mix, confusion, agreement, flags, shadow, reviewers, pairs]
    refresh.click(dashboard, None, outputs, api_name="dashboard")
    tab.select(dashboard, None, outputs, api_visibility="private")
    gr.on(None, dashboard, None, outputs, api_visibility="private")  # no triggers and no inputs: when the page loads


def _overview(stats: dict) -> str:
    agreement, shadow = stats["agreement"], stats["shadow"]
    level = "ordinal" if stats["ordinal"] else "nominal"
    overview = (f"**{stats['predictions']}** predictions, **{stats['queue']}** awaiting a first verdict · "
                f"**{stats['verdicts']}** verdicts, the model's label right in {as_share(stats['model_agreement'])} · "
                f"Krippendorff's alpha ({level}) **{as_figure(agreement['krippendorff_alpha'])}** on "
                f"{agreement['items']} texts judged by several reviewers")
    if shadow:
        overview += (f" · the shadow {markdown_text(shadow['model'])} agrees with the serving model on "
                     f"**{as_share(shadow['agree'])}** of the {shadow['texts']} texts it labelled")
    return overview


def _mix(stats: dict) -> go.Figure:
    labels = stats["labels"]
    figure = go.Figure([go.Bar(name=who, x=_plot_labels(labels), y=[stats["label_mix"][who][label] for label in labels])
                        for who in ("model", "reviewers")])
    return figure.update_layout(barmode="group", title="Labels of judged predictions: model and reviewers")


def _confusion(stats: dict) -> go.Figure:
    title = "Verdicts: model label (rows) against reviewer label (columns)"
    return _heatmap(stats["confusion"]).update_layout(title=title, xaxis_title="reviewer", yaxis_title="model")


def _shadow(stats: dict) -> go.Figure:
    shadow = stats["shadow"]
    if shadow is None:
        return go.Figure().update_layout(title="No shadow has labelled a text yet (Retrain tab: Shadow this version)")
    title = f"Serving model (rows) against the shadow {_plot_text(shadow['model'])} (columns), {shadow['texts']} texts"
    return _heatmap(shadow["confusion"]).update_layout(title=title, xaxis_title="shadow", yaxis_title="serving")


def _heatmap(confusion: dict[str, dict[str, int]]) -> go.Figure:
    """Counts of one label (rows) against another (columns), over the labels the figures hold, least severe first."""
    labels = list(confusion)
    counts = [[confusion[row][column] for column in labels] for row in labels]
    return go.Figure(go.Heatmap(z=counts, x=_plot_labels(labels), y=_plot_labels(labels), text=counts,
                                texttemplate="%{text}", colorscale="Blues"))


def _plot_labels(labels) -> list[str]:
    return [_plot_text(label) for label in labels]


def _by_day(stats: dict, key: str, title: str) -> go.Figure:
    days = [day for day in stats["by_day"] if day[key] is not None]
    values = [day[key] for day in days]
    figure = go.Figure(go.Scatter(x=[day["day"] for day in days], y=values, mode="lines+markers"))
    return figure.update_layout(title=f"{title}, by day", yaxis_range=[min([0, *values]), 1], xaxis_type="category")


def _reviewers(stats: dict) -> go.Figure:
    counts = stats["by_reviewer"]
    figure = go.Figure(go.Bar(x=[_plot_text(name) for name in counts], y=list(counts.values())))
    return figure.update_layout(title="Verdicts per reviewer", xaxis_type="category")


def _plot_text(value: str) -> str:
    """A user's string as plotly shows it literally: plotly draws a subset of HTML in labels and hover text
    (links included) and decodes the entities that escape it."""
    return html.escape(value, quote=False)
