"""An evaluation run's figures as pictures (plotly): the confusion matrix, F1 per label, and reliability."""

import plotly.graph_objects as go

LAYOUT = dict(height=380, margin=dict(l=10, r=10, t=40, b=10))


def confusion_heatmap(metrics: dict) -> go.Figure:
    """Counts of gold labels (rows) against predicted labels (columns), with each count written in its cell."""
    labels = metrics["confusion"]["labels"]
    rows = metrics["confusion"]["matrix"][: len(metrics["per_label"])]  # gold is never "no label"
    figure = go.Figure(go.Heatmap(z=rows, x=labels, y=labels[: len(rows)], colorscale="Blues", texttemplate="%{z}",
                                  hovertemplate="gold %{y}<br>predicted %{x}<br>%{z} texts<extra></extra>"))
    figure.update_layout(title="Confusion matrix", xaxis_title="predicted", yaxis_title="gold",
                         yaxis_autorange="reversed", **LAYOUT)
    return figure


def f1_bars(metrics: dict) -> go.Figure:
    """F1 of each label, with its support in the hover."""
    per_label = metrics["per_label"]
    figure = go.Figure(go.Bar(x=list(per_label), y=[s["f1"] for s in per_label.values()],
                              customdata=[s["support"] for s in per_label.values()],
                              hovertemplate="%{x}<br>F1 %{y:.3f}<br>%{customdata} in the gold set<extra></extra>"))
    figure.update_layout(title=f"F1 per label (macro {metrics['macro_f1']:.3f})", yaxis_range=[0, 1], **LAYOUT)
    return figure


def reliability_diagram(metrics: dict) -> go.Figure | None:
    """Accuracy against the top label's mean probability in each confidence bin (score mode only)."""
    if "calibration" not in metrics:
        return None
    bins = metrics["calibration"]
    figure = go.Figure([
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dash", color="grey"), name="calibrated"),
        go.Scatter(x=[b["confidence"] for b in bins], y=[b["accuracy"] for b in bins], mode="lines+markers",
                   customdata=[b["count"] for b in bins], name="model",
                   hovertemplate="confidence %{x:.2f}<br>accuracy %{y:.2f}<br>%{customdata} texts<extra></extra>"),
    ])
    figure.update_layout(title=f"Reliability (ECE {metrics['ece']:.3f})", xaxis_title="top label's probability",
                         yaxis_title="accuracy", xaxis_range=[0, 1], yaxis_range=[0, 1], **LAYOUT)
    return figure
