"""The Batch tab: a file of texts (CSV, jsonl or txt) labelled row by row into a file to download."""

import gradio as gr

from moderation.batch_files import MAX_ROWS, OUTPUTS
from moderation.settings import Settings

from .common import Page, download, shown_errors


def build(page: Page) -> None:
    """The tab and its event: /batch."""
    with gr.Tab("Batch"):
        gr.Markdown(f"Upload a CSV file with a `text` column, a jsonl file with a `\"text\"` field, or a txt file with "
                    f"one text a line (UTF-8, up to {MAX_ROWS:,} rows). Every row gets a line in the output, in order: "
                    "its label and five probabilities, or an `error` when it is empty or too long.")
        upload = gr.File(label="File of texts", file_types=[".csv", ".jsonl", ".txt"], type="filepath")
        with gr.Row():
            format_choice = gr.Radio(list(OUTPUTS), value="jsonl", label="Output format")
            record = gr.Checkbox(value=True, label="Keep the predictions (they join the review queue)")
        button = gr.Button("Label the file", variant="primary")
        summary = gr.Textbox(label="Batch", interactive=False)
        file = download(page, "Labelled file")

    @shown_errors
    def label_batch(path: str | None, format: str, keep: bool, draft: Settings | None, progress=gr.Progress()):
        """Label every row of the file; returns the labelled file and what it holds."""
        progress(0, desc="Checking the file")

        def advance(done: int, total: int):
            progress((done, total), desc="Labelling", unit="rows")

        out, run = page.service.moderate_file(path, format=format, settings=page.settings(draft), record=keep,
                                              progress=advance)
        kept = ", kept for review" if keep else ""
        return str(out), (f"{run.labelled} of {run.rows} rows labelled ({run.errors} with an error{kept}) in "
                          f"{run.seconds:.1f} s.")

    button.click(label_batch, [upload, format_choice, record, page.draft], [file, summary], api_name="batch")
