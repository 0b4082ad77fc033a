"""The Queue tab: recorded predictions this reviewer has not judged, one at a time, in the order they choose,
judged from the keyboard (1 to n pick the correct label in the policy of the text's prediction, from the least severe
to the most, Enter says the label is right, s skips the text until the reviewer clears their skips, u undoes)."""

import gradio as gr

from feedback.queue import QUEUE_ORDERS
from moderation.markdown import markdown_text
from moderation.policy import MAX_LABELS, Policy

from .common import Page, saved, shown_errors

NUMBERS = range(1, MAX_LABELS + 1)
"""The number keys: one for each label a policy may have (the buttons of the labels a policy lacks are hidden)."""
KEYS = {**{str(number): f"queue-label-{number}" for number in NUMBERS},
        "Enter": "queue-right", "s": "queue-skip", "u": "queue-undo"}
"""Each key, and the element id of the button it presses: the number keys pick the labels by severity, 1 the least
severe (a prompt may list them in another order, as the card's does); a key without a shown button does nothing."""


def keys_help(policy: Policy) -> str:
    """What the keys do, for a text in ``policy``."""
    return (f"**Keys** (with the focus outside a text field): **1**-**{len(policy.labels)}** the correct label, from "
            "the least severe to the most (" + ", ".join(f"**{number}** {markdown_text(name)}"
                                                        for number, name in enumerate(policy.labels, 1)) +
            "; the model's own label saves \"right\"), **Enter** label is right, **s** skip (until you clear your "
            "skips), **u** undo your last verdict. The next text appears after each.")

KEYS_JS = """
() => {
  const buttons = %s;
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    if (event.target.closest("input, textarea, select, [contenteditable=''], [contenteditable='true']")) return;
    const id = buttons[event.key.length === 1 ? event.key.toLowerCase() : event.key];
    const button = id && document.getElementById(id);
    if (!button || button.offsetParent === null) return;  // the Queue tab is not open
    event.preventDefault();
    button.click();
  });
}
""" % KEYS
"""Keys to buttons, nothing more: every decision is the server's."""


def build(page: Page) -> None:
    """The tab and its events: /queue_next, /queue_right, /queue_skip, /queue_undo and /queue_clear_skips, and
    /queue_label for API clients (the page's label buttons each pass their number: the label of that severity in
    the policy of the prediction shown)."""
    service = page.service
    published = service.settings.policy
    with gr.Tab("Queue") as tab:
        help_text = gr.Markdown(keys_help(published))
        order = gr.Radio(list(QUEUE_ORDERS), value="most uncertain", label="Order")
        left = gr.Markdown()
        with gr.Row():
            with gr.Column():
                text = gr.Textbox(label="Text to judge", interactive=False, lines=3)
                choices = gr.Markdown()
            label = gr.Label(label="Model's label", num_top_classes=MAX_LABELS)
        with gr.Accordion("Prompt", open=False):
            prompt = gr.Code(label="Prompt sent to the model", language=None, interactive=False)
        with gr.Row():
            pickers = [gr.Button(**_picker(published, number), elem_id=KEYS[str(number)], size="sm")
                       for number in NUMBERS]
        with gr.Row():
            right = gr.Button("Label is right (Enter)", variant="primary", elem_id=KEYS["Enter"])
            skip = gr.Button("Skip (s)", elem_id=KEYS["s"])
            undo = gr.Button("Undo (u)", elem_id=KEYS["u"])
            clear = gr.Button("Clear my skips")
        last = gr.Textbox(label="Last verdict", interactive=False)
        current = gr.Number(label="Prediction", interactive=False)
        given = gr.State([])  # this session's verdicts, for undo
        picked, model_label = [gr.State(number) for number in NUMBERS], gr.State(None)

    def card(item: dict | None, reviewer: str):
        """The card's fields for ``item`` (the help and the label buttons in its policy), or an empty card saying
        the queue is done (in the published policy)."""
        waiting, skipped = service.queue_size(reviewer), service.skipped(reviewer)
        aside = f"; you skipped {skipped} texts: Clear my skips brings them back" if skipped else ""
        if item is None:
            done = f"Nothing left to judge in this order ({waiting} waiting for you{aside})."
            return None, "", None, "", "", done
        policy = service.policy_of(item)
        numbered = "\n".join(f"{number} {name}{'  ← the model' if name == item['label'] else ''}"
                             for number, name in enumerate(policy.labels, 1))
        return (item["id"], item["text"], item["scores"], f"Keys, least severe first:\n```\n{numbered}\n```",
                item["prompt"], f"{waiting} waiting for you{aside} · prediction #{item['id']} · "
                f"{markdown_text(item['model'])}")

    def keys_of(prediction):
        """The help and the label buttons in the policy of the prediction shown (the published one when none is)."""
        policy = (service.policy_of(service.prediction(prediction)) if prediction is not None
                  else service.settings.policy)
        return keys_help(policy), *(gr.Button(**_picker(policy, number)) for number in NUMBERS)

    def following(reviewer: str, order_name: str):
        return card(service.next_in_queue(reviewer, order=order_name), reviewer)

    @shown_errors
    def next_item(order_name: str, name: str, request: gr.Request):
        """The next prediction this reviewer has not judged, in ``order_name``."""
        return following(page.reviewer(name, request), order_name)

    @shown_errors
    def pick(prediction, number: int | None, order_name: str, history: list, name: str, request: gr.Request):
        """Save the label of severity ``number`` (1 the least severe) in the prediction's policy as the correct one
        (None or the model's own: "right"), then show the next prediction."""
        reviewer = page.reviewer(name, request)
        row = service.judge(prediction, service.label_of_number(prediction, number), reviewer=reviewer)
        return (saved(row), history + [row["id"]], *following(reviewer, order_name))

    @shown_errors
    def queue_label(prediction: int, label: str, name: str, request: gr.Request) -> str:
        """Judge a prediction by its correct label (the model's own saves "right"); returns the confirmation."""
        return saved(service.judge(prediction, label, reviewer=page.reviewer(name, request)))

    @shown_errors
    def skip_item(prediction, order_name: str, name: str, request: gr.Request):
        """Leave this prediction's text out of your queue until you clear your skips, and show the next."""
        reviewer = page.reviewer(name, request)
        if prediction is not None:
            service.skip(prediction, reviewer=reviewer)
        return following(reviewer, order_name)

    @shown_errors
    def clear_skips(order_name: str, name: str, request: gr.Request):
        """Bring back the texts you skipped, and show the next prediction."""
        reviewer = page.reviewer(name, request)
        cleared = service.clear_skips(reviewer)
        return f"Cleared {cleared} skips: those texts wait in your queue again.", *following(reviewer, order_name)

    @shown_errors
    def undo_last(history: list, name: str, request: gr.Request):
        """Take back this session's last verdict and show its prediction again."""
        reviewer = page.reviewer(name, request)
        row = service.take_back(history[-1] if history else None, reviewer=reviewer)
        shown = card(service.prediction(row["prediction_id"]), reviewer)
        return f"Took back verdict #{row['id']} on prediction #{row['prediction_id']}.", history[:-1], *shown

    shown = [current, text, label, choices, prompt, left]
    named = [page.name]
    tab.select(next_item, [order, *named], shown, api_visibility="private")
    order.change(next_item, [order, *named], shown, api_name="queue_next")
    for button, name in zip(pickers, picked):
        button.click(pick, [current, name, order, given, *named], [last, given, *shown], api_visibility="private")
    right.click(pick, [current, model_label, order, given, *named], [last, given, *shown], api_name="queue_right")
    skip.click(skip_item, [current, order, *named], shown, api_name="queue_skip")
    clear.click(clear_skips, [order, *named], [last, *shown], api_name="queue_clear_skips")
    undo.click(undo_last, [given, *named], [last, given, *shown], api_name="queue_undo")
    current.change(keys_of, current, [help_text, *pickers], api_visibility="private")
    with tab:
        gr.api(queue_label, api_name="queue_label")


def _picker(policy: Policy, number: int) -> dict:
    """The label button of severity ``number`` in ``policy``: shown with its label, or hidden when it has none."""
    shown = number <= len(policy.labels)
    return {"value": f"{number} {policy.labels[number - 1]}" if shown else str(number), "visible": shown}
