"""The page, assembled: a header naming the model, the demo notice where it applies, and the tabs."""

import gradio as gr

from moderation.models import DEMO_NOTICE

from ..service import PlaygroundService
from . import chat, export, moderate, prompt, review
from .common import Page
from .inputs import refuse_clearly

TABS = (moderate, chat, review, export, prompt)


def build_page(service: PlaygroundService, *, logins: bool = False) -> gr.Blocks:
    """The Gradio page over ``service``; every event a reviewer uses has an ``api_name``."""
    with gr.Blocks(title="Moderation Playground") as blocks:
        gr.Markdown(f"# Moderation Playground\nModel: `{service.moderator.name}`")
        if service.moderator.demo:
            gr.Markdown(f"**{DEMO_NOTICE}**", elem_id="demo-notice")
        page = Page(service, logins, gr.State(None))
        for tab in TABS:
            tab.build(page)
    refuse_clearly(blocks)
    return blocks
