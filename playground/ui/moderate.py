"""The Moderate tab: a text, its label with the probability of each label of the policy, the decision, the prompt, and
a verdict (its label one of the policy's)."""

import gradio as gr

from moderation.markdown import markdown_text
from moderation.policy import CARD, MAX_LABELS
from moderation.results import MODES, ModerationResult
from moderation.settings import Settings

from .common import DEFAULT_MODEL, Page, label_choices, saved, shown_errors, verdict_form

MAX_CONCURRENT = 64
CARD_TEXTS = [[example.text] for example in CARD.examples] + [
    [
        "Yes I am. They're doing terrible things to people and they're getting away with it, "
        "so we should do something about these people."
    ]
]


def build(page: Page) -> None:
    """The tab and its events: /moderate, /confirm and /flag."""
    with gr.Tab("Moderate"):
        with gr.Row():
            with gr.Column():
                text = gr.Textbox(label="Text", lines=4, placeholder="A message to moderate")
                mode = gr.Radio(list(MODES), value="score", label="Mode",
                                info="score: probability of each label; generate: the card's greedy decoding")
                button = gr.Button("Moderate", variant="primary")
                gr.Examples(CARD_TEXTS, inputs=[text], label="The card's examples")
            with gr.Column():
                label = gr.Label(label="Label", num_top_classes=MAX_LABELS)
                decision_box = gr.Markdown()
                prediction_id = gr.Number(label="Prediction", interactive=False)
        prompt = gr.Code(label="Prompt sent to the model", language=None, interactive=False)
        form = verdict_form(page)

    @shown_errors
    def moderate(text: str, mode: str, draft: Settings | None, model: str = DEFAULT_MODEL, progress=gr.Progress()):
        """Label a text with the model chosen and record the prediction; returns label, decision, prompt and
        prediction id."""
        progress(0, desc="Moderating")
        settings = page.settings(draft, model)
        (shown,) = page.service.moderate([text], fields=["Text"], settings=settings, mode=mode, model=model or None)
        return label_value(shown.result), decision(shown.result, settings), shown.result.prompt, shown.id

    @shown_errors
    def confirm(prediction, note: str, reviewer: str, key: str, request: gr.Request):
        """Record that the model's label is right."""
        return saved(page.service.confirm(prediction, note=note, reviewer=page.reviewer(reviewer, request),
                                          idempotency_key=key))

    @shown_errors
    def flag(prediction, correct: str, note: str, reviewer: str, key: str, request: gr.Request):
        """Record that the model's label is wrong, with the correct label."""
        return saved(page.service.flag(prediction, correct, note=note, reviewer=page.reviewer(reviewer, request),
                                       idempotency_key=key))

    event = dict(fn=moderate, inputs=[text, mode, page.draft, page.model],
                 outputs=[label, decision_box, prompt, prediction_id], concurrency_limit=MAX_CONCURRENT)
    choices = dict(fn=shown_errors(lambda draft, model: label_choices(page.settings(draft, model).policy)),
                   inputs=[page.draft, page.model], outputs=form.label, api_visibility="private")
    button.click(**event, api_name="moderate").then(**choices)
    text.submit(**event, api_visibility="private").then(**choices)
    form.right.click(confirm, [prediction_id, form.note, form.reviewer, form.idempotency_key], form.saved,
                     api_name="confirm")
    form.correction.click(flag, [prediction_id, form.label, form.note, form.reviewer, form.idempotency_key], form.saved,
                          api_name="flag")


def label_value(result: ModerationResult):
    """What the Label component shows: the probability of each label, or the generated label."""
    return result.scores if result.mode == "score" else (result.label or "no label")


def decision(result: ModerationResult, settings: Settings) -> str:
    """Flagged, would intervene (at which threshold), and in generate mode what was generated; the label first when
    the format's rule chose another than the most probable (the yes-no format's probabilities are each label's own)."""
    parts = [
        f"**Flagged:** {'yes' if result.flagged else 'no'}",
        f"**Would intervene:** {'yes' if result.intervene else 'no'} (threshold: {settings.threshold})",
    ]
    if result.scores and result.label and result.label != max(result.scores, key=result.scores.get):
        parts.insert(0, f"**Label:** {markdown_text(result.label)} (its format's rule chose it, not the highest bar)")
    if result.mode == "generate":
        parts.append("**Generated:** see the prompt's continuation below" if result.label else
                     "**Generated:** no label (the model's text is none of the policy's labels)")
    return " · ".join(parts)
