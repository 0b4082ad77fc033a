"""The Queue tab: recorded predictions this reviewer has not judged, one at a time, in the order they choose,
judged from the keyboard (1-5 pick the correct label, Enter says the label is right, s skips, u undoes)."""

import gradio as gr

from feedback.queue import QUEUE_ORDERS
from moderation.labels import LABELS
from moderation.markdown import markdown_text

from .common import Page, saved, shown_errors

KEYS = {**{str(number): f"queue-label-{number}" for number in range(1, len(LABELS) + 1)},
        "Enter": "queue-right", "s": "queue-skip", "u": "queue-undo"}
"""Each key, and the element id of the button it presses."""

KEYS_HELP = ("**Keys** (with the focus outside a text field): **1**-**5** the correct label by its number "
             "(the model's own label saves \"right\"), **Enter** label is right, **s** skip, **u** undo your last "
             "verdict. The next text appears after each.")

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
    """The tab and its events: /queue_next, /queue_right, /queue_skip and /queue_undo, and /queue_label for API
    clients (the page's five label buttons each pass their own label)."""
    service = page.service
    with gr.Tab("Queue") as tab:
        gr.Markdown(KEYS_HELP)
        order = gr.Radio(list(QUEUE_ORDERS), value="most uncertain", label="Order")
        left = gr.Markdown()
        with gr.Row():
            with gr.Column():
                text = gr.Textbox(label="Text to judge", interactive=False, lines=3)
                choices = gr.Markdown()
            label = gr.Label(label="Model's label", num_top_classes=len(LABELS))
        with gr.Accordion("Prompt", open=False):
            prompt = gr.Code(label="Prompt sent to the model", language=None, interactive=False)
        with gr.Row():
            pickers = [gr.Button(f"{number} {name}", elem_id=KEYS[str(number)], size="sm")
                       for number, name in enumerate(LABELS, 1)]
        with gr.Row():
            right = gr.Button("Label is right (Enter)", variant="primary", elem_id=KEYS["Enter"])
            skip = gr.Button("Skip (s)", elem_id=KEYS["s"])
            undo = gr.Button("Undo (u)", elem_id=KEYS["u"])
        last = gr.Textbox(label="Last verdict", interactive=False)
        current = gr.Number(label="Prediction", interactive=False)
        skipped, given = gr.State([]), gr.State([])  # this session's skipped predictions and verdicts given
        picked, model_label = [gr.State(name) for name in LABELS], gr.State(None)

    def card(item: dict | None, reviewer: str):
        """The card's fields for ``item``, or an empty card saying the queue is done."""
        waiting = service.queue_size(reviewer)
        if item is None:
            done = f"Nothing left to judge in this order ({waiting} waiting for you, skipped ones aside)."
            return None, "", None, "", "", done
        numbered = "\n".join(f"{number}. {name}{'  ← the model' if name == item['label'] else ''}"
                             for number, name in enumerate(LABELS, 1))
        return (item["id"], item["text"], item["scores"], f"```\n{numbered}\n```", item["prompt"],
                f"{waiting} waiting for you · prediction #{item['id']} · {markdown_text(item['model'])}")

    def following(reviewer: str, order_name: str, skip: list):
        return card(service.next_in_queue(reviewer, order=order_name, skip=skip), reviewer)

    @shown_errors
    def next_item(order_name: str, skip: list, name: str, request: gr.Request):
        """The next prediction this reviewer has not judged, in ``order_name``."""
        return following(page.reviewer(name, request), order_name, skip)

    @shown_errors
    def pick(prediction, correct: str | None, order_name: str, skip: list, history: list, name: str,
             request: gr.Request):
        """Save the correct label (None or the model's own: "right"), then show the next prediction."""
        reviewer = page.reviewer(name, request)
        row = service.judge(prediction, correct, reviewer=reviewer)
        return (saved(row), history + [row["id"]], *following(reviewer, order_name, skip))

    @shown_errors
    def queue_label(prediction: int, label: str, name: str, request: gr.Request) -> str:
        """Judge a prediction by its correct label (the model's own saves "right"); returns the confirmation."""
        return saved(service.judge(prediction, label, reviewer=page.reviewer(name, request)))

    @shown_errors
    def skip_item(prediction, order_name: str, skip: list, name: str, request: gr.Request):
        """Leave this prediction (a recorded one: its id is whole) for later in this session, and show the next."""
        skip = skip + [service.prediction(prediction)["id"]] if prediction is not None else skip
        return skip, *following(page.reviewer(name, request), order_name, skip)

    @shown_errors
    def undo_last(history: list, name: str, request: gr.Request):
        """Take back this session's last verdict and show its prediction again."""
        reviewer = page.reviewer(name, request)
        row = service.take_back(history[-1] if history else None, reviewer=reviewer)
        shown = card(service.prediction(row["prediction_id"]), reviewer)
        return f"Took back verdict #{row['id']} on prediction #{row['prediction_id']}.", history[:-1], *shown

    shown = [current, text, label, choices, prompt, left]
    named = [page.name]
    tab.select(next_item, [order, skipped, *named], shown, api_visibility="private")
    order.change(next_item, [order, skipped, *named], shown, api_name="queue_next")
    for button, name in zip(pickers, picked):
        button.click(pick, [current, name, order, skipped, given, *named], [last, given, *shown],
                     api_visibility="private")
    right.click(pick, [current, model_label, order, skipped, given, *named], [last, given, *shown],
                api_name="queue_right")
    skip.click(skip_item, [current, order, skipped, *named], [skipped, *shown], api_name="queue_skip")
    undo.click(undo_last, [given, *named], [last, given, *shown], api_name="queue_undo")
    with tab:
        gr.api(queue_label, api_name="queue_label")
