"""The Chat check tab: a user's message and the bot's reply, both labelled, the reply the user would see,
and a verdict on either side."""

import gradio as gr

from moderation.errors import InvalidInput
from moderation.policy import MAX_LABELS
from moderation.results import ROLES
from moderation.settings import Settings

from .common import DEFAULT_MODEL, Page, saved, shown_errors, verdict_form
from .moderate import MAX_CONCURRENT


def build(page: Page) -> None:
    """The tab and its events: /check_turn, /confirm_side and /flag_side."""
    with gr.Tab("Chat check"):
        with gr.Row():
            with gr.Column():
                user_message = gr.Textbox(label="User message", lines=3)
                bot_reply = gr.Textbox(label="Bot reply", lines=3)
                button = gr.Button("Check turn", variant="primary")
            with gr.Column():
                decision = gr.Markdown()
                shown_reply = gr.Textbox(label="Reply the user sees", interactive=False)
        with gr.Row():
            user_label = gr.Label(label="User message label", num_top_classes=MAX_LABELS)
            bot_label = gr.Label(label="Bot reply label", num_top_classes=MAX_LABELS)
        with gr.Row():
            user_id = gr.Number(label="User prediction", interactive=False)
            bot_id = gr.Number(label="Bot prediction", interactive=False)
        side = gr.Radio(list(ROLES), value="user", label="Verdict on")
        form = verdict_form(page)

    @shown_errors
    def check_turn(user: str, bot: str, draft: Settings | None, model: str = DEFAULT_MODEL, progress=gr.Progress()):
        """Check both sides of a chat turn with the model chosen; returns both labels, the decision, the reply and
        prediction ids."""
        progress(0, desc="Checking the turn")
        settings = page.settings(draft, model)
        turn, user_shown, bot_shown = page.service.check_turn(user, bot, fields=("User message", "Bot reply"),
                                                              settings=settings, model=model or None)
        if turn.intervened:
            said = f"**Intervened:** the {' and the '.join(turn.triggered_by)} side reached the threshold"
        else:
            said = "**No intervention:** the user sees the bot's reply"
        said += f" (threshold: {settings.threshold})."
        return turn.user.scores, turn.bot.scores, said, turn.reply, user_shown.id, bot_shown.id

    @shown_errors
    def confirm_side(chosen: str, user, bot, note: str, reviewer: str, key: str, request: gr.Request):
        """Record that the chosen side's label is right."""
        return saved(page.service.confirm(_side(chosen, user, bot), note=note,
                                          reviewer=page.reviewer(reviewer, request), idempotency_key=key))

    @shown_errors
    def flag_side(chosen: str, user, bot, correct: str, note: str, reviewer: str, key: str, request: gr.Request):
        """Record that the chosen side's label is wrong, with the correct label."""
        return saved(page.service.flag(_side(chosen, user, bot), correct, note=note,
                                       reviewer=page.reviewer(reviewer, request), idempotency_key=key))

    button.click(check_turn, [user_message, bot_reply, page.draft, page.model],
                 [user_label, bot_label, decision, shown_reply, user_id, bot_id],
                 api_name="check_turn", concurrency_limit=MAX_CONCURRENT)
    sides = [side, user_id, bot_id]
    form.right.click(confirm_side, [*sides, form.note, form.reviewer, form.idempotency_key], form.saved,
                     api_name="confirm_side")
    form.correction.click(flag_side, [*sides, form.label, form.note, form.reviewer, form.idempotency_key], form.saved,
                          api_name="flag_side")


def _side(side: str, user_id, bot_id):
    if side not in ROLES:
        raise InvalidInput("Choose the side to give your verdict on: user or bot.", "side")
    return user_id if side == "user" else bot_id
