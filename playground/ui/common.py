"""What the tabs share: the page's context, errors shown as messages, and the verdict form."""

import functools
import html
import logging
from dataclasses import dataclass

import gradio as gr

from moderation.errors import USER_ERRORS
from moderation.markdown import markdown_text
from moderation.policy import Policy
from moderation.settings import Settings

from ..service import PlaygroundService

log = logging.getLogger("playground.ui")

ANY = "any"
DEFAULT_MODEL = ""
"""The model choice that means the default model (whose name changes when a version is served)."""
INTERNAL = "Something went wrong on the server, and its log has the details. Try again, or tell whoever runs it."


REMEMBERED_NAME = "moderation-playground-reviewer"
"""Where the browser keeps the reviewer's name (localStorage). The name is no secret: a fixed key lets the
browser read it back after the server restarts."""


@dataclass(frozen=True)
class Page:
    """What every tab builds on: the service, whether reviewers log in, this browser session's draft
    settings (a ``gr.State``: None while the session follows the server's default), the reviewer's name
    as typed (optional, remembered by the browser; hidden when reviewers log in), and the model chosen."""

    service: PlaygroundService
    logins: bool
    draft: gr.State
    name: gr.Textbox
    model: gr.Dropdown

    def settings(self, draft: Settings | None, model: str | None = None) -> Settings:
        """The settings a moderation from this session uses with the model chosen (blank: the default): the default's
        in this session's draft, else the server's default; another model's own."""
        return self.service.served(model or None, draft)[1]

    def reviewer(self, typed: str, request: gr.Request) -> str:
        """Who gives a verdict: the logged-in reviewer when logins are on, else the name typed."""
        return request.username if self.logins else typed


def reviewer_name(blocks: gr.Blocks, logins: bool) -> gr.Textbox:
    """The page's one name box: optional (a blank name saves as anonymous, and a page call may leave it out), filled
    from the browser on load (when it has one: a name typed before the page finished loading stays) and remembered
    there on each change; hidden when reviewers log in (their login names them)."""
    name = gr.Textbox(value="", label="Reviewer", placeholder="Your name: optional (without one, verdicts are "
                      "anonymous), and this browser remembers it", visible=not logins, max_lines=1)
    remembered = gr.BrowserState("", storage_key=REMEMBERED_NAME, secret=REMEMBERED_NAME)
    blocks.load(lambda saved: saved or gr.skip(), remembered, name, api_visibility="private")
    name.change(lambda typed: typed, name, remembered, api_visibility="private")
    return name


def model_choice(service: PlaygroundService) -> gr.Dropdown:
    """The page's one choice of model, for every tab that moderates: the default (blank), or a model served beside it
    by its name; shown only when several models serve."""
    others = service.model_names[1:]
    return gr.Dropdown([("the default model", DEFAULT_MODEL), *((name, name) for name in others)],
                       value=DEFAULT_MODEL, label="Model", visible=bool(others),
                       info="Which served model labels in Moderate, Chat check, Batch and Evaluate (Compare and the "
                       "leaderboard run them all).")


def shown_errors(handler):
    """``handler`` with its failures shown in the page as text (never HTML): the user's mistakes as they are,
    anything else as a failure of the server, whose traceback goes to the log."""

    @functools.wraps(handler)
    def wrapper(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except USER_ERRORS as error:
            raise gr.Error(html.escape(str(error), quote=False), print_exception=False) from None
        except Exception:
            log.exception("The page's %s failed", handler.__name__)
            raise gr.Error(INTERNAL, print_exception=False) from None

    return wrapper


def download(page: Page, label: str) -> gr.File:
    """A file to download that is served where the service wrote it, in its export folder (owner-only, swept
    within the hour and at shutdown): Gradio keeps no copy of it in its own cache."""
    file = gr.File(label=label)
    file.GRADIO_CACHE = str(page.service.scratch.exports)
    return file


def optional(choice: str) -> str | None:
    """A filter's value: None for "any"."""
    return None if choice == ANY else choice


def model_text(moderator) -> str:
    """The model (version) that labels now, in Markdown: its name, and for an adapter the model it is on."""
    version = moderator.version
    on = f" (a LoRA adapter on {markdown_text(version.base_name)})" if version and version.kind == "lora" else ""
    return f"{markdown_text(moderator.name)}{on}"


def also_serving(service: PlaygroundService) -> str:
    """The models served beside the default, for the page's header (nothing when it serves alone)."""
    others = service.model_names[1:]
    return f" · also serving {', '.join(map(markdown_text, others))}" if others else ""


def label_choice(policy: Policy, label: str) -> gr.Dropdown:
    """A dropdown of ``policy``'s labels (in its prompt's order). It takes any text, as labels follow the policy of
    what is judged: the service checks a label against that policy, and its refusal names the policy's labels."""
    return gr.Dropdown(list(policy.listed), label=label, value=None, allow_custom_value=True)


def label_choices(policy: Policy, value=None) -> gr.Dropdown:
    """A label dropdown's choices set to ``policy``'s labels (an event's output)."""
    return gr.Dropdown(choices=list(policy.listed), value=value)


def saved(row: dict) -> str:
    """What the page says once a verdict is on disk."""
    return f"Saved verdict #{row['id']} on prediction #{row['prediction_id']}: {row['verdict']}, {row['label']}."


@dataclass
class VerdictForm:
    """The controls with which a reviewer judges a label."""

    label: gr.Dropdown
    reviewer: gr.Textbox
    note: gr.Textbox
    right: gr.Button
    correction: gr.Button
    saved: gr.Textbox
    idempotency_key: gr.Textbox


def verdict_form(page: Page) -> VerdictForm:
    """Correct label, note, the two buttons and the confirmation, as one group; the reviewer is the page's name."""
    with gr.Group():
        label = label_choice(page.service.settings.policy, "Correct label")
        note = gr.Textbox(label="Note", placeholder="Why the label is right or wrong (optional)")
        with gr.Row():
            right = gr.Button("Label is right")
            correction = gr.Button("Save correction", variant="primary")
        saved_box = gr.Textbox(label="Saved", interactive=False)
        # the API's last input, optional: a retry with the same key gets the first verdict, and writes nothing
        key = gr.Textbox(value="", label="Idempotency key", visible=False)
    return VerdictForm(label, page.name, note, right, correction, saved_box, key)
