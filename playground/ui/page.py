"""The page, assembled: a header naming the model (read again every few seconds, so that every open page follows a
change of what serves), the demo notice where it applies, and the tabs."""

import gradio as gr

from moderation.demo.recipe import DEMO_NOTICE

from ..service import PlaygroundService
from . import batch, chat, compare, dashboard, disagreements, evaluate, export, moderate, prompt, queue, retrain, review
from .common import Page, also_serving, model_choice, model_text, reviewer_name
from .inputs import refuse_clearly

TABS = (moderate, queue, chat, compare, review, disagreements, batch, dashboard, export, prompt, evaluate, retrain)
PAGE_JS = queue.KEYS_JS
"""What the page runs when it loads: the Queue tab's keys."""


def build_page(service: PlaygroundService, *, logins: bool = False) -> gr.Blocks:
    """The Gradio page over ``service``; every event a reviewer uses has an ``api_name``."""
    with gr.Blocks(title="Moderation Playground") as blocks:
        gr.Markdown(lambda: f"# Moderation Playground\nModel: {model_text(service.moderator)}{also_serving(service)}",
                    every=retrain.FOLLOW_S, elem_id="header")
        if service.moderator.demo:
            gr.Markdown(f"**{DEMO_NOTICE}**", elem_id="demo-notice")
        page = Page(service, logins, gr.State(None), reviewer_name(blocks, logins), model_choice(service))
        for tab in TABS:
            tab.build(page)
    refuse_clearly(blocks)
    return blocks
