"""The Compare tab: one text, or a chat turn, through every served model at once, side by side (each model's labels
with their probabilities, its latency and the prompt it was sent), and one judgement saved for all of them."""

import gradio as gr

from moderation.errors import InvalidInput
from moderation.markdown import markdown_text
from moderation.policy import MAX_LABELS
from moderation.prompt import is_blank
from moderation.results import ROLES

from ..service import Compared
from .common import Page, label_choice, shown_errors


def build(page: Page) -> None:
    """The tab and its events: /compare_models and /judge_compared."""
    service = page.service
    with gr.Tab("Compare"):
        gr.Markdown("One text, or a chat turn, through every served model at once: each in its own prompt format and "
                    "policy. Then judge the text once: the correct label is saved as a verdict on every model's "
                    "prediction (right where a model gave it, a correction elsewhere).")
        with gr.Row():
            text = gr.Textbox(label="Text, or the user's message", lines=3)
            reply = gr.Textbox(label="Bot reply (optional: with one, the turn is checked, the reply in its context)",
                               lines=3)
        button = gr.Button("Compare", variant="primary")
        columns = []
        with gr.Row(elem_id="compared"):
            for number, _ in enumerate(service.model_names):
                with gr.Column():
                    heading = gr.Markdown(elem_id=f"compared-{number}")
                    first = gr.Label(label="Label", num_top_classes=MAX_LABELS)
                    second = gr.Label(label="Bot reply's label", num_top_classes=MAX_LABELS, visible=False)
                    prompt = gr.Code(label="Prompt", language=None, interactive=False, max_lines=12)
                columns.append((heading, first, second, prompt))
        compared = gr.State({})
        with gr.Group():
            with gr.Row():
                side = gr.Radio(list(ROLES), value=ROLES[0], label="Judge (in a chat turn)")
                correct = label_choice(service.settings.policy, "Correct label, for every model")
            judge = gr.Button("Save this judgement for every model", variant="primary")
            saved = gr.Textbox(label="Judgement saved", interactive=False)

    @shown_errors
    def compare(user: str, bot: str, draft, progress=gr.Progress()):
        """Every served model on the text (or the turn); each column's heading, labels and prompt, and what was
        compared (prediction ids by side, for the judgement)."""
        progress(0, desc="Comparing")
        turn = isinstance(bot, str) and not is_blank(bot)
        entries = service.side_by_side([user, bot] if turn else [user], roles=list(ROLES) if turn else None,
                                       fields=["User message", "Bot reply"] if turn else ["Text"], settings=draft)
        shown = []
        for entry in entries:
            first, *second = entry.predictions
            shown += [heading_of(entry), first.result.scores,
                      gr.Label(value=second[0].result.scores if second else None, visible=turn),
                      entry.predictions[-1].result.prompt]
        ids = {role: [entry.predictions[number].id for entry in entries]
               for number, role in enumerate(ROLES if turn else ROLES[:1])}
        return *shown, ids

    @shown_errors
    def judge_all(compared_ids: dict, chosen_side: str, label: str | None, reviewer: str, request: gr.Request):
        """Save one verdict a model on the side judged: ``label`` is the correct one."""
        if not compared_ids:
            raise InvalidInput("Compare a text first, then judge it.", "prediction")
        if chosen_side not in compared_ids:
            raise InvalidInput("That side was not compared: choose 'user' for a text alone.", "side")
        reviewer = page.reviewer(reviewer, request)
        verdicts = service.judge_all(compared_ids[chosen_side], label, reviewer=reviewer)
        said = ", ".join(f"#{row['id']} {row['verdict']}" for row in verdicts)
        return f"Saved {len(verdicts)} verdicts ({said}): the correct label is {verdicts[0]['label']}."

    outputs = [part for column in columns for part in column]
    button.click(compare, [text, reply, page.draft], [*outputs, compared], api_name="compare_models")
    judge.click(judge_all, [compared, side, correct, page.name], saved, api_name="judge_compared")


def heading_of(entry: Compared) -> str:
    """A column's heading: the model, its prompt format, its label (the reply's in a turn) and its latency."""
    label = entry.predictions[-1].result.label or "no label"
    return (f"### {markdown_text(entry.model)}\n{entry.format} format · **{markdown_text(label)}** · "
            f"{entry.seconds * 1000:,.0f} ms")
