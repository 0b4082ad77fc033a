"""The Prompt tab: the policy (its labels from least to most severe, their descriptions, whether they are ordered),
its few-shot examples and the intervention threshold, tried in this session as a draft, then used for everyone (the
server's default, which the API serves) once they are right. A policy file (TOML) can be loaded as the draft."""

import gradio as gr

from moderation.errors import InvalidInput
from moderation.policy import NEVER, Policy, read_policy
from moderation.settings import Settings

from .common import Page, shown_errors
from .evaluate import build_workbench

CONFIRM = "Publish new labels"
"""The checkbox that confirms a publish whose labels differ from the published policy's."""


def build(page: Page) -> None:
    """The tab and its events: /set_prompt (this session's draft), /publish_prompt (the server's default),
    /load_policy (a policy file as this session's draft) and /drop_draft (back to the default); below them the
    workbench's /evaluate_draft."""
    service = page.service
    with gr.Tab("Prompt") as tab:
        gr.Markdown("Edit the policy, the examples and the threshold, then **Try in this session**: your moderations "
                    "use the draft, nobody else's do. **Use for everyone** makes it the server's default, which the "
                    "API and the other reviewers get. Verdicts on older predictions keep their own policy.")
        with gr.Accordion("Policy", open=False):
            with gr.Row():
                name = gr.Textbox(service.settings.policy.name, label="Policy name", max_lines=1)
                ordinal = gr.Checkbox(service.settings.policy.ordinal, label="Ordinal (the labels are an order of "
                                      "severity that distances measure)")
                policy_file = gr.File(label="Load a policy file (TOML, as in policies/)", file_types=[".toml"],
                                      type="filepath")
            labels = gr.Dataframe(_label_rows(service.settings.policy), headers=["label", "description"],
                                  datatype="str", type="array", interactive=True, column_count=(2, "fixed"),
                                  label="Labels, least severe first (2 to 9; the first means nothing is wrong)")
        examples = gr.Dataframe(_rows(service.settings), headers=["text", "label"], datatype="str", type="array",
                                interactive=True, column_count=(2, "fixed"),
                                label="Few-shot examples (label: one of the policy's labels)",
                                visible=service.settings.template.format == "card")
        threshold = gr.Dropdown(_levels(service.settings.policy), value=service.settings.threshold,
                                allow_custom_value=True, label="Intervene from this label up (never: observe only)")
        with gr.Row():
            try_draft = gr.Button("Try in this session")
            publish = gr.Button("Use for everyone", variant="primary")
            confirm = gr.Checkbox(False, label=f"{CONFIRM} (needed when the labels change: verdicts on older "
                                  "predictions keep their own policy)")
            drop = gr.Button("Back to the default")
        status = gr.Textbox(label="Template", interactive=False)
        preview = gr.Code(label="Prompt layout", language=None, interactive=False)
        build_workbench(page, examples, threshold, _examples)

    def shown(draft: Settings | None):
        """The policy, examples, threshold, status and layout of what this session uses."""
        settings = page.settings(draft)
        return (*_policy_fields(settings.policy), _rows(settings), _threshold(settings),
                _status(settings, draft is not None), settings.template.layout())

    def edited(rows, level, label_rows, policy_name, ordered, draft) -> Settings:
        """The settings the form describes, in the policy its labels table describes (based on this session's)."""
        policy = _policy(label_rows, policy_name, ordered, level, page.settings(draft).policy)
        return service.draft(_examples(rows), level, policy)

    @shown_errors
    def set_prompt(rows, level: str, label_rows, policy_name: str, ordered: bool, draft):
        """Use this policy, these examples and this threshold for this session's moderations (a draft)."""
        tried = edited(rows, level, label_rows, policy_name, ordered, draft)
        return tried.template.layout(), _status(tried, True), tried

    @shown_errors
    def publish_prompt(rows, level: str, label_rows, policy_name: str, ordered: bool, confirmed: bool, draft):
        """Make this policy, these examples and this threshold the server's default, for everyone (new labels only
        once confirmed)."""
        settings = service.publish(edited(rows, level, label_rows, policy_name, ordered, draft),
                                   confirmed=bool(confirmed))
        return settings.template.layout(), _status(settings, False), None

    @shown_errors
    def load_policy(path: str | None):
        """A policy file as this session's draft: its labels, examples and threshold fill the form."""
        if not path:
            raise InvalidInput("Upload a policy file first (TOML, as in policies/).", "policy")
        policy = read_policy(path)
        loaded = service.in_format(policy)
        return (*_policy_fields(policy), _rows(loaded), _threshold(loaded), _status(loaded, True),
                loaded.template.layout(), loaded)

    form = [name, ordinal, labels, examples, threshold, status, preview]
    edits = [examples, threshold, labels, name, ordinal]
    tab.select(shown, page.draft, form, api_visibility="private")
    try_draft.click(set_prompt, [*edits, page.draft], [preview, status, page.draft], api_name="set_prompt")
    publish.click(publish_prompt, [*edits, confirm, page.draft], [preview, status, page.draft],
                  api_name="publish_prompt")
    policy_file.upload(load_policy, policy_file, [*form, page.draft], api_name="load_policy")
    drop.click(lambda: (None, *shown(None)), None, [page.draft, *form], api_name="drop_draft")


def _policy(rows, name, ordinal, threshold, base: Policy) -> Policy:
    """The policy the labels table (rows of label and description, least severe first), ``name`` and ``ordinal``
    describe: ``base`` itself when they are its own (so that the card's prompt stays byte for byte), else a new one
    that keeps ``base``'s prompt order when it has the same labels, with ``threshold`` as its default when it is one
    of them."""
    filled = [[str(cell) if cell is not None else "" for cell in row] for row in rows
              if row and row[0] is not None and str(row[0]).strip()]
    labels = tuple(label for label, *_ in filled)
    descriptions = {label: rest[0] for label, *rest in filled if rest and rest[0].strip()}
    ordinal = bool(ordinal)
    if (name, labels, descriptions, ordinal) == (base.name, base.labels, dict(base.descriptions), base.ordinal):
        return base
    return Policy(name=name, labels=labels, threshold=threshold if threshold in labels else NEVER,
                  listed=base.listed if sorted(labels) == sorted(base.labels) else (),
                  descriptions=tuple(descriptions.items()), ordinal=ordinal)


def _policy_fields(policy: Policy) -> tuple:
    """The policy's name, whether it is ordinal, and its labels table."""
    return policy.name, policy.ordinal, _label_rows(policy)


def _label_rows(policy: Policy) -> list[list[str]]:
    return [[label, policy.description(label) or ""] for label in policy.labels]


def _levels(policy: Policy) -> list[str]:
    """What the threshold may be: a label of the policy, or never."""
    return [*policy.labels, NEVER]


def _threshold(settings: Settings) -> gr.Dropdown:
    return gr.Dropdown(choices=_levels(settings.policy), value=settings.threshold)


def _rows(settings: Settings) -> list[list[str]]:
    return [[example.text, example.label] for example in settings.policy.examples]


def _examples(rows) -> list[dict]:
    """The table's filled rows as ``{"text", "label"}`` items (blank rows left out)."""
    filled = [row for row in rows if row and row[0] is not None and str(row[0]).strip()]
    return [{"text": str(text), "label": "" if label is None else str(label)} for text, label in filled]


def _status(settings: Settings, draft: bool) -> str:
    whose = "this session's draft" if draft else "the server's default"
    policy = settings.policy
    examples = (f"{len(policy.examples)} examples" if settings.template.format == "card" else
                f"the {settings.template.format} format (no examples)")
    return (f"Template {settings.template.id} ({whose}): {examples}; intervene at {settings.threshold}; policy "
            f"{policy.name} ({', '.join(policy.labels)}).")
