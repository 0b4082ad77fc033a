"""The Prompt tab: few-shot examples and the intervention threshold, tried in this session as a draft,
then used for everyone (the server's default, which the API serves) once they are right."""

import gradio as gr

from moderation.labels import NEVER, SEVERITY
from moderation.settings import Settings

from .common import Page, shown_errors
from .evaluate import build_workbench


def build(page: Page) -> None:
    """The tab and its events: /set_prompt (this session's draft), /publish_prompt (the server's default)
    and /drop_draft (back to the default); below them the workbench's /evaluate_draft."""
    service = page.service
    with gr.Tab("Prompt") as tab:
        gr.Markdown("Edit the examples and the threshold, then **Try in this session**: your moderations use "
                    "the draft, nobody else's do. **Use for everyone** makes it the server's default, which the "
                    "API and the other reviewers get.")
        examples = gr.Dataframe(_rows(service.settings), headers=["text", "label"], datatype="str", type="array",
                                interactive=True, column_count=(2, "fixed"),
                                label="Few-shot examples (label: one of the five)")
        threshold = gr.Dropdown(list(SEVERITY) + [NEVER], value=service.settings.threshold,
                                label="Intervene from this label up (never: observe only)")
        with gr.Row():
            try_draft = gr.Button("Try in this session")
            publish = gr.Button("Use for everyone", variant="primary")
            drop = gr.Button("Back to the default")
        status = gr.Textbox(label="Template", interactive=False)
        preview = gr.Code(label="Prompt layout", language=None, interactive=False)
        build_workbench(page, examples, threshold, _examples)

    def shown(draft: Settings | None):
        """The examples, threshold, status and layout of what this session uses."""
        settings = page.settings(draft)
        return _rows(settings), settings.threshold, _status(settings, draft is not None), settings.template.layout()

    @shown_errors
    def set_prompt(rows, threshold: str):
        """Use these examples and threshold for this session's moderations (a draft)."""
        draft = service.draft(_examples(rows), threshold)
        return draft.template.layout(), _status(draft, True), draft

    @shown_errors
    def publish_prompt(rows, threshold: str):
        """Make these examples and threshold the server's default, for everyone."""
        settings = service.publish(service.draft(_examples(rows), threshold))
        return settings.template.layout(), _status(settings, False), None

    outputs = [examples, threshold, status, preview]
    tab.select(shown, page.draft, outputs, api_visibility="private")
    try_draft.click(set_prompt, [examples, threshold], [preview, status, page.draft], api_name="set_prompt")
    publish.click(publish_prompt, [examples, threshold], [preview, status, page.draft], api_name="publish_prompt")
    drop.click(lambda: (None, *shown(None)), None, [page.draft, *outputs], api_name="drop_draft")


def _rows(settings: Settings) -> list[list[str]]:
    return [[example.text, example.label] for example in settings.template.examples]


def _examples(rows) -> list[dict]:
    """The table's filled rows as ``{"text", "label"}`` items (blank rows left out)."""
    filled = [row for row in rows if row and row[0] is not None and str(row[0]).strip()]
    return [{"text": str(text), "label": "" if label is None else str(label)} for text, label in filled]


def _status(settings: Settings, draft: bool) -> str:
    whose = "this session's draft" if draft else "the server's default"
    return (f"Template {settings.template.id} ({whose}): {len(settings.template.examples)} examples; "
            f"intervene at {settings.threshold}.")
