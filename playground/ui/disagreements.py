"""The Disagreements tab: texts whose reviewers give different labels, and the final label a curator sets,
which the export uses."""

import gradio as gr

from .common import Page, label_choice, label_choices, shown_errors

COLUMNS = ["text", "final label", "reviewers' labels", "model label"]
"""The table's columns, what a curator needs first leftmost."""
WIDTHS = ["38%", "185px", "32%", "185px"]
"""The columns' widths: the table fits a window 1280 pixels wide."""
CELL_CHARS = 60
"""How much of a cell the table shows (the selected text shows whole)."""


def build(page: Page) -> None:
    """The tab and its events: /disagreements (also when the tab opens) and /set_final_label."""
    service = page.service
    with gr.Tab("Disagreements") as tab:
        gr.Markdown("Texts whose reviewers disagree, unsettled ones first. Click a row, choose the final label and "
                    "set it: the export uses it for the text, and the text's pending verdicts become accepted.")
        refresh = gr.Button("Refresh")
        table = gr.Dataframe(headers=COLUMNS, datatype="str", interactive=False, wrap=False, max_chars=CELL_CHARS,
                             column_widths=WIDTHS, label="Disagreements", elem_id="disagreements-table")
        with gr.Row():
            selected = gr.Textbox(label="Selected text", interactive=False, lines=2)
            final = label_choice(service.settings.policy, "Final label")
        settle = gr.Button("Set final label", variant="primary")
        result = gr.Textbox(label="Settled", interactive=False)

    @shown_errors
    def disagreements():
        """The texts reviewers disagree on, as table rows."""
        return [[row["text"], row["final_label"] or "",
                 "; ".join(f"{verdict['reviewer']}: {verdict['label']}" for verdict in row["verdicts"]),
                 ", ".join(label or "no label" for label in row["model_labels"])] for row in service.disagreements()]

    @shown_errors
    def set_final_label(text: str, label: str, name: str, request: gr.Request) -> str:
        """Settle the selected text's label."""
        row = service.settle(text, label, curator=page.reviewer(name, request))
        return f"The final label of {row['text']!r} is now {row['label']} (set by {row['curator']})."

    refresh.click(disagreements, None, table, api_name="disagreements")
    tab.select(disagreements, None, table, api_visibility="private")
    table.select(_selected_text, None, selected, api_visibility="private").then(
        lambda text: label_choices(service.text_policy(text)), selected, final, api_visibility="private")
    settle.click(set_final_label, [selected, final, page.name], result, api_name="set_final_label").success(
        disagreements, None, table, api_visibility="private")


def _selected_text(event: gr.SelectData) -> str:
    return event.row_value[0]
