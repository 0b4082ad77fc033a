"""The Queue tab: recorded predictions this reviewer has not judged, one at a time, in the order they choose,
judged from the keyboard (1-5 pick the correct label, from the least severe to the most, Enter says the label is
right, s skips the text until the reviewer clears their skips, u undoes)."""

import gradio as gr

from feedback.queue import QUEUE_ORDERS
from moderation.labels import SEVERITY
from moderation.markdown import markdown_text

from .common import Page, saved, shown_errors

KEYS = {**{str(number): f"queue-label-{number}" for number in range(1, len(SEVERITY) + 1)},
        "Enter": "queue-right", "s": "queue-skip", "u": "queue-undo"}
"""Each key, and the element id of the button it presses: the number keys pick the labels by severity, 1 the least
severe (the card's prompt keeps its own order of the labels)."""

KEYS_HELP = ("**Keys** (with the focus outside a text field): **1**-**5** the correct label, from the least severe "
             "to the most (" + ", ".join(f"**{number}** {name}" for number, name in enumerate(SEVERITY, 1)) +
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
    /queue_label for API clients (the page's five label buttons each pass their own label)."""
    service = page.service
    with gr.Tab("Queue") as tab:
        gr.Markdown(KEYS_HELP)
        order = gr.Radio(list(QUEUE_ORDERS), value="most uncertain", label="Order")
        left = gr.Markdown()
        with gr.Row():
            with gr.Column():
                text = gr.Textbox(label="Text to judge", interactive=False, lines=3)
                choices = gr.Markdown()
            label = gr.Label(label="Model's label", num_top_classes=len(SEVERITY))
        with gr.Accordion("Prompt", open=False):
            prompt = gr.Code(label="Prompt sent to the model", language=None, interactive=False)
        with gr.Row():
            pickers = [gr.Button(f"{number} {name}", elem_id=KEYS[str(number)], size="sm")
                       for number, name in enumerate(SEVERITY, 1)]
        with gr.Row():
            right = gr.Button("Label is right (Enter)", variant="primary", elem_id=KEYS["Enter"])
            skip = gr.Button("Skip (s)", elem_id=KEYS["s"])
            undo = gr.Button("Undo (u)", elem_id=KEYS["u"])
            clear = gr.Button("Clear my skips")
        last = gr.Textbox(label="Last verdict", interactive=False)
        current = gr.Number(label="Prediction", interactive=False)
        given = gr.State([])  # this session's verdicts, for undo
        picked, model_label = [gr.State(name) for name in SEVERITY], gr.State(None)

    def card(item: dict | None, reviewer: str):
        """The card's fields for ``item``, or an empty card saying the queue is done."""
        waiting, skipped = service.queue_size(reviewer), service.skipped(reviewer)
        aside = f"; you skipped {skipped} texts: Clear my skips brings them back" if skipped else ""
        if item is None:
            done = f"Nothing left to judge in this order ({waiting} waiting for you{aside})."
            return None, "", None, "", "", done
        numbered = "\n".join(f"{number} {name}{'  ← the model' if name == item['label'] else ''}"
                             for number, name in enumerate(SEVERITY, 1))
        return (item["id"], item["text"], item["scores"], f"Keys, least severe first:\n```\n{numbered}\n```",
                item["prompt"], f"{waiting} waiting for you{aside} · prediction #{item['id']} · "
                f"{markdown_text(item['model'])}")

    def following(reviewer: str, order_name: str):
        return card(service.next_in_queue(reviewer, order=order_name), reviewer)

    @shown_errors
    def next_item(order_name: str, name: str, request: gr.Request):
        """The next prediction this reviewer has not judged, in ``order_name``."""
        return following(page.reviewer(name, request), order_name)

    @shown_errors
    def pick(prediction, correct: str | None, order_name: str, history: list, name: str, request: gr.Request):
        """Save the correct label (None or the model's own: "right"), then show the next prediction."""
        reviewer = page.reviewer(name, request)
        row = service.judge(prediction, correct, reviewer=reviewer)
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
    with tab:
        gr.api(queue_label, api_name="queue_label")
