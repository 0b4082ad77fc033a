"""The Batch tab: a file of texts (CSV, jsonl or txt) labelled row by row into a file to download, and shown in the
page: how many rows got each label, and the first rows in a table to sort."""

import gradio as gr

from moderation.batch_files import MAX_ROWS, OUTPUTS, BatchRun
from moderation.policy import Policy
from moderation.settings import Settings

from .common import DEFAULT_MODEL, Page, download, shown_errors

SHOWN_ROWS = 100
"""How many of a file's labelled rows the page shows (the file to download has them all)."""
ROW_COLUMNS = ["text", "label", "probability", "flagged", "intervene", "error"]
COUNT_COLUMNS = ["label", "rows", "share"]


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
        counts = gr.Dataframe(headers=COUNT_COLUMNS, datatype=["str", "number", "str"], interactive=False,
                              label="Rows by label", elem_id="batch-counts")
        rows = gr.Dataframe(headers=ROW_COLUMNS, datatype=["str", "str", "number", "bool", "bool", "str"],
                            interactive=False, wrap=False, max_chars=80, label=f"The first {SHOWN_ROWS} rows: click a "
                            "column's menu (⋮) to sort by it", elem_id="batch-rows")

    @shown_errors
    def label_batch(path: str | None, format: str, keep: bool, draft: Settings | None, model: str = DEFAULT_MODEL,
                    progress=gr.Progress()):
        """Label every row of the file with the model chosen; returns the labelled file and what it holds."""
        progress(0, desc="Checking the file")

        def advance(done: int, total: int):
            progress((done, total), desc="Labelling", unit="rows")

        settings = page.settings(draft, model)
        out, run = page.service.moderate_file(path, format=format, settings=settings, record=keep, progress=advance,
                                              first=SHOWN_ROWS, model=model or None)
        kept = ", kept for review" if keep else ""
        return str(out), (f"{run.labelled} of {run.rows} rows labelled ({run.errors} with an error{kept}) in "
                          f"{run.seconds:.1f} s."), label_counts(run, settings.policy), first_rows(run)

    button.click(label_batch, [upload, format_choice, record, page.draft, page.model], [file, summary, counts, rows],
                 api_name="batch")


def label_counts(run: BatchRun, policy: Policy) -> list[list]:
    """How many rows got each label of ``policy`` (the run's), least severe first, then the rows with an error: count
    and share."""
    counted = [(label, run.labels.get(label, 0)) for label in policy.labels] + [("error", run.errors)]
    return [[name, count, f"{count / run.rows:.1%}"] for name, count in counted]


def first_rows(run: BatchRun) -> list[list]:
    """The run's first rows, as :data:`ROW_COLUMNS`: the label's probability, or the error."""
    return [[item["text"] or "", item.get("label", ""),
             round(item["scores"][item["label"]], 3) if "scores" in item else None,
             item.get("flagged"), item.get("intervene"), item.get("error", "")] for item in run.first]
