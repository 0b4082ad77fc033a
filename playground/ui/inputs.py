"""A value an input cannot take (a choice not offered, a value of the wrong type, as a hand-made API call can
send) is answered with a message saying what to send, and writes no traceback to the server's log."""

import html

import gradio as gr
from gradio.components import Component

SHOWN_VALUE = 80
"""Characters of a refused value that the message repeats."""


def refusal(component: Component, payload, error: Exception) -> gr.Error:
    """The message for a value ``component`` cannot take."""
    name = component.label or "A field"
    shown = repr(payload)[:SHOWN_VALUE]
    choices = getattr(component, "choices", None)
    if choices:
        offered = ", ".join(str(value) for _, value in choices)
        message = f"{name}: {shown} is not in the list of choices; choose one of: {offered}."
    else:
        message = f"{name}: cannot take {shown} ({error})."
    return gr.Error(html.escape(message, quote=False), print_exception=False)


def refuse_clearly(blocks: gr.Blocks) -> None:
    """Make every component of ``blocks`` answer a value it cannot take with :func:`refusal`."""
    for block in blocks.blocks.values():
        if isinstance(block, Component):
            block.preprocess = _refusing(block)


def _refusing(component: Component):
    preprocess = component.preprocess

    def refusing(payload):
        try:
            return preprocess(payload)
        except Exception as error:  # Gradio's refusals, whatever their type
            raise refusal(component, payload, error) from None

    return refusing
