"""The page, assembled: a header naming the model, the demo notice where it applies, and the tabs."""

import gradio as gr

from moderation.models import DEMO_NOTICE

from ..service import PlaygroundService
from . import chat, export, moderate, prompt, retrain, review
from .common import Page, model_text

TABS = (moderate, chat, review, export, prompt, retrain)


def build_page(service: PlaygroundService, *, logins: bool = False) -> gr.Blocks:
    """The Gradio page over ``service``; every event a reviewer uses has an ``api_name``."""
    with gr.Blocks(title="Moderation Playground") as blocks:
        gr.Markdown(lambda: f"# Moderation Playground\nModel: {model_text(service.moderator)}")
        if service.moderator.demo:
            gr.Markdown(f"**{DEMO_NOTICE}**", elem_id="demo-notice")
        page = Page(service, logins, gr.State(None))
        for tab in TABS:
            tab.build(page)
    return blocks
