"""The Review tab: every verdict, filtered, and the curation of the one selected."""

import gradio as gr

from feedback.rows import STATUSES
from moderation.labels import LABELS

from .common import ANY, Page, optional, shown_errors

COLUMNS = ["id", "time", "text", "model label", "reviewer label", "verdict", "status", "split", "reviewer", "note"]


def build(page: Page) -> None:
    """The tab and its events: /review (also when the tab opens), /accept, /discard and /relabel."""
    service = page.service
    with gr.Tab("Review") as tab:
        with gr.Row():
            status = gr.Dropdown([ANY, *STATUSES], value=ANY, label="Status")
            label = gr.Dropdown([ANY, *LABELS], value=ANY, label="Reviewer label")
            disagree = gr.Checkbox(label="Model label differs from reviewer label")
            search = gr.Textbox(label="Search texts")
        refresh = gr.Button("Refresh")
        table = gr.Dataframe(headers=COLUMNS, datatype="str", interactive=False, wrap=True, label="Verdicts")
        with gr.Row():
            verdict_id = gr.Number(label="Selected verdict")
            new_label = gr.Dropdown(list(LABELS), label="New label", value=None)
        with gr.Row():
            accept = gr.Button("Accept", variant="primary")
            discard = gr.Button("Discard", variant="stop")
            relabel_button = gr.Button("Relabel")
        result = gr.Textbox(label="Result", interactive=False)

    @shown_errors
    def review(status: str, label: str, disagree: bool, search: str):
        """The verdicts matching the filters, newest first, as table rows."""
        rows = service.verdicts(status=optional(status), label=optional(label), disagree=disagree, search=search)
        return [[row["id"], row["created"][:19].replace("T", " "), row["text"], row["model_label"] or "",
                 row["label"], row["verdict"], row["status"], row["split"] or "", row["reviewer"], row["note"]]
                for row in rows]

    @shown_errors
    def accept_verdict(verdict) -> str:
        """Accept the selected verdict for training."""
        return _status(service.set_status(verdict, "accepted"))

    @shown_errors
    def discard_verdict(verdict) -> str:
        """Keep the selected verdict out of training."""
        return _status(service.set_status(verdict, "discarded"))

    @shown_errors
    def relabel(verdict, label: str) -> str:
        """Give the selected verdict another correct label."""
        row = service.relabel(verdict, label)
        return f"Verdict #{row['id']} now says {row['label']} ({row['verdict']})."

    filters = [status, label, disagree, search]
    refresh.click(review, filters, table, api_name="review")
    tab.select(review, filters, table, api_visibility="private")
    table.select(_selected_id, None, verdict_id, api_visibility="private")
    for button, action, inputs, name in (
        (accept, accept_verdict, [verdict_id], "accept"),
        (discard, discard_verdict, [verdict_id], "discard"),
        (relabel_button, relabel, [verdict_id, new_label], "relabel"),
    ):
        button.click(action, inputs, result, api_name=name).success(review, filters, table, api_visibility="private")


def _status(row: dict) -> str:
    return f"Verdict #{row['id']} is now {row['status']}."


def _selected_id(event: gr.SelectData):
    return event.row_value[0]
