"""The Export tab: the verdicts as a jsonl file to download."""

import gradio as gr

from feedback.export import FORMATS
from feedback.rows import STATUSES

from .common import ANY, Page, download, optional, shown_errors

UNITS = {"oig": "texts", "full": "verdicts"}
"""What one line of each export format is."""


def build(page: Page) -> None:
    """The tab and its event: /export."""
    with gr.Tab("Export"):
        with gr.Row():
            format_choice = gr.Radio(list(FORMATS), value="oig", label="Format",
                                     info="oig: one training record per text, with its curated label; "
                                          "full: every verdict with every field")
            status = gr.Dropdown([ANY, *STATUSES], value="accepted", label="Status")
            since = gr.Textbox(label="Since", placeholder="2026-11-29 (optional)")
        button = gr.Button("Export", variant="primary")
        rows = gr.Textbox(label="Rows", interactive=False)
        file = download(page, "jsonl file")

    @shown_errors
    def export(format: str, status: str, since: str, progress=gr.Progress()):
        """Write the verdicts as jsonl; returns the file to download and what it holds."""
        progress(0, desc="Exporting")
        path, count = page.service.export(format=format, status=optional(status), since=since)
        return str(path), f"{count} {UNITS[format]} exported as {format}."

    button.click(export, [format_choice, status, since], [file, rows], api_name="export")
