"""Moderation Playground: moderate texts in the browser, flag wrong labels, curate and export them.

    python app.py [--model M] [--db feedback.db] [--host 127.0.0.1] [--port 7860] [--auth FILE]

One server: the Gradio page at /, the OpenAI-compatible moderation API under /v1, /healthz.
"""

import argparse
import functools
import html
import os
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import gradio as gr
import uvicorn
from fastapi import FastAPI

from feedback.api import feedback_router
from feedback.export import FORMATS, export_lines
from feedback.reviewers import Reviewers
from feedback.store import STATUSES, FeedbackStore
from moderation.batcher import Busy, MicroBatcher
from moderation.engine import DEFAULT_INTERVENTION, TurnResult
from moderation.labels import DEFAULT_THRESHOLD, LABELS, NEVER, SEVERITY
from moderation.loading import ModelLoadError
from moderation.models import open_moderator
from moderation.prompt import CARD_EXAMPLES, PromptTemplate, normalize_text
from moderation.remote import RemoteError
from moderation.rest import Limits, install_error_handlers, moderation_router

ANY = "any"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
MAX_CONCURRENT = 64
REVIEW_COLUMNS = ["id", "time", "text", "model label", "reviewer label", "verdict", "status", "reviewer", "note"]
CARD_TEXTS = [[example.text] for example in CARD_EXAMPLES] + [
    [
        "Yes I am. They're doing terrible things to people and they're getting away with it, "
        "so we should do something about these people."
    ]
]
DEMO_NOTICE = (
    "**Demo model in use.** This machine runs a small GPT-J trained on the project's seed examples, "
    "not GPT-JT-Moderation-6B: its labels show how the playground works, not what the real model says. "
    "Start the app with `--model togethercomputer/GPT-JT-Moderation-6B` on a GPU for real labels."
)


def user_errors(handler):
    """Show bad input or a full queue as a message in the page (as text, never HTML), not a traceback."""

    @functools.wraps(handler)
    def wrapper(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except (ValueError, Busy, RemoteError) as error:
            raise gr.Error(html.escape(str(error), quote=False), print_exception=False) from None

    return wrapper


class Playground:
    """What the page does, as plain functions of its inputs: one Moderator, one FeedbackStore.

    Score-mode requests go through a micro-batcher, so requests that arrive together share passes.
    With ``logins``, a verdict is saved under the logged-in reviewer's name, not a typed one.
    """

    def __init__(
        self, moderator, store: FeedbackStore, export_dir: Path, *, logins=False, max_batch_size=32, max_wait=0.005
    ):
        self.moderator = moderator
        self.store = store
        self.export_dir = export_dir
        self.logins = logins
        self.batcher = MicroBatcher(moderator.moderate, max_batch_size=max_batch_size, max_wait=max_wait)
        store.save_template(moderator.template.id, moderator.template.to_json())

    def label(self, texts: list[str]):
        """Score texts through the micro-batcher; an empty text is refused before it waits."""
        return self.batcher.submit([normalize_text(text) for text in texts])

    def record(self, result, role: str | None = None) -> int:
        """Keep a prediction that was shown (in the page or through the API); returns its id."""
        return self.store.record_prediction(
            text=result.text,
            label=result.label,
            scores=result.scores,
            prompt=result.prompt,
            model=result.model,
            template=result.template,
            mode=result.mode,
            generated=result.generated,
            role=role,
        )

    @user_errors
    def moderate(self, text: str, mode: str = "score", progress=gr.Progress()):
        """Label a text and record the prediction; returns label, decision, prompt and prediction id."""
        progress(0, desc="Moderating")
        (result,) = self.label([text]) if mode == "score" else self.moderator.moderate([text], mode=mode)
        return self._label_value(result), self._decision(result), result.prompt, self.record(result)

    @user_errors
    def check_turn(self, user_message: str, bot_reply: str, progress=gr.Progress()):
        """Check both sides of a chat turn; returns both labels, the decision, the reply and prediction ids."""
        progress(0, desc="Checking the turn")
        user, bot = self.label([user_message, bot_reply])
        turn = TurnResult.of(user, bot, bot_reply, self.moderator.intervention)
        if turn.intervened:
            decision = f"**Intervened:** the {' and the '.join(turn.triggered_by)} side reached the threshold"
        else:
            decision = "**No intervention:** the user sees the bot's reply"
        decision += f" (threshold: {self.moderator.threshold})."
        ids = self.record(user, "user"), self.record(bot, "bot")
        return user.scores, bot.scores, decision, turn.reply, *ids

    @user_errors
    def confirm_side(self, side: str, user_id, bot_id, note: str, reviewer: str, request: gr.Request):
        """Record that the chosen side's label is right."""
        return self.confirm(_side_id(side, user_id, bot_id), note, reviewer, request)

    @user_errors
    def flag_side(self, side: str, user_id, bot_id, correct_label: str, note: str, reviewer: str, request: gr.Request):
        """Record that the chosen side's label is wrong, with the correct label."""
        return self.flag(_side_id(side, user_id, bot_id), correct_label, note, reviewer, request)

    @user_errors
    def confirm(self, prediction_id, note: str, reviewer: str, request: gr.Request):
        """Record that the model's label is right."""
        return self._verdict(prediction_id, request, verdict="right", note=note, reviewer=reviewer)

    @user_errors
    def flag(self, prediction_id, correct_label: str, note: str, reviewer: str, request: gr.Request):
        """Record that the model's label is wrong, with the correct label."""
        if not correct_label:
            raise ValueError("Choose the correct label before saving a correction.")
        return self._verdict(prediction_id, request, verdict="wrong", label=correct_label, note=note,
                             reviewer=reviewer)

    @user_errors
    def review(self, status: str, label: str, disagree: bool, search: str):
        """The verdicts matching the filters, newest first, as table rows."""
        rows = self.store.verdicts(
            status=None if status == ANY else status,
            label=None if label == ANY else label,
            disagree=disagree,
            search=search or None,
        )
        return [[row["id"], row["created"][:19].replace("T", " "), row["text"], row["model_label"] or "",
                 row["label"], row["verdict"], row["status"], row["reviewer"], row["note"]] for row in rows]

    @user_errors
    def accept(self, verdict_id) -> str:
        """Accept the selected verdict for training."""
        return self._curate(verdict_id, "accepted")

    @user_errors
    def discard(self, verdict_id) -> str:
        """Keep the selected verdict out of training."""
        return self._curate(verdict_id, "discarded")

    @user_errors
    def relabel(self, verdict_id, label: str) -> str:
        """Give the selected verdict another correct label."""
        if not label:
            raise ValueError("Choose the new label first.")
        row = self.store.relabel(_verdict_id(verdict_id), label)
        return f"Verdict #{row['id']} now says {row['label']} ({row['verdict']})."

    @user_errors
    def export(self, format: str, status: str, since: str, progress=gr.Progress()):
        """Write the verdicts as jsonl; returns the file to download and what it holds."""
        progress(0, desc="Exporting")
        lines = export_lines(self.store, format=format, status=None if status == ANY else status, since=since or None)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        path = self.export_dir / f"feedback-{format}-{stamp}.jsonl"
        count = 0
        with open(path, "w", encoding="utf-8") as out:
            for count, line in enumerate(lines, 1):
                out.write(line)
        return str(path), f"{count} verdicts exported as {format}."

    @user_errors
    def set_prompt(self, examples, threshold: str):
        """Use these few-shot examples and intervention threshold from the next moderation on."""
        rows = [row for row in examples if row and row[0] is not None and str(row[0]).strip()]
        items = [{"text": str(text), "label": "" if label is None else str(label)} for text, label in rows]
        template = self.moderator.check_template(PromptTemplate.from_examples(items))
        self.moderator.threshold = _threshold(threshold)
        self.moderator.template = template
        self.store.save_template(template.id, template.to_json())
        message = f"Template {template.id}: {len(template.examples)} examples; intervene at {threshold}."
        return template.prefix + " <text>\nOutput:", message

    def _curate(self, verdict_id, status: str) -> str:
        row = self.store.set_status(_verdict_id(verdict_id), status)
        return f"Verdict #{row['id']} is now {row['status']}."

    def _verdict(self, prediction_id, request: gr.Request, **verdict):
        if prediction_id is None:
            raise ValueError("Moderate a text first, then give your verdict on its label.")
        if self.logins:
            verdict["reviewer"] = request.username
        row = self.store.add_verdict(int(prediction_id), **verdict)
        return f"Saved verdict #{row['id']} on prediction #{row['prediction_id']}: {row['verdict']}, {row['label']}."

    def _label_value(self, result):
        if result.mode == "score":
            return result.scores
        return result.label or "no label"

    def _decision(self, result) -> str:
        parts = [
            f"**Flagged:** {'yes' if result.flagged else 'no'}",
            f"**Would intervene:** {'yes' if result.intervene else 'no'} (threshold: {self.moderator.threshold})",
        ]
        if result.mode == "generate":
            parts.append("**Generated:** see the prompt's continuation below" if result.label else
                         "**Generated:** no label (the model's text is not one of the five)")
        return " · ".join(parts)


def _side_id(side: str, user_id, bot_id):
    if side not in ("user", "bot"):
        raise ValueError("Choose the side to give your verdict on: user or bot.")
    return user_id if side == "user" else bot_id


def _verdict_id(value) -> int:
    if value is None or value == "":
        raise ValueError("Select a verdict in the table first.")
    return int(value)


def _threshold(value: str) -> str:
    if value not in SEVERITY + (NEVER,):
        raise ValueError(f"Unknown threshold {value!r}: choose a label or never.")
    return value


@dataclass
class VerdictForm:
    """The controls with which a reviewer judges a label."""

    label: gr.Dropdown
    reviewer: gr.Textbox
    note: gr.Textbox
    right: gr.Button
    correction: gr.Button
    saved: gr.Textbox


def verdict_form(logins: bool) -> VerdictForm:
    """Correct label, reviewer (unless logged in), note, the two buttons and the confirmation, as one group."""
    with gr.Group():
        with gr.Row():
            label = gr.Dropdown(list(LABELS), label="Correct label", value=None)
            reviewer = gr.Textbox(label="Reviewer", placeholder="Your name", visible=not logins)
        note = gr.Textbox(label="Note", placeholder="Why the label is right or wrong (optional)")
        with gr.Row():
            right = gr.Button("Label is right")
            correction = gr.Button("Save correction", variant="primary")
        saved = gr.Textbox(label="Saved", interactive=False)
    return VerdictForm(label, reviewer, note, right, correction, saved)


def build_ui(playground: Playground) -> gr.Blocks:
    """The page: Moderate, Chat check, Review, Export and Prompt tabs, every event with an api_name."""
    moderator = playground.moderator
    with gr.Blocks(title="Moderation Playground") as ui:
        gr.Markdown(f"# Moderation Playground\nModel: `{moderator.name}`")
        if moderator.demo:
            gr.Markdown(DEMO_NOTICE, elem_id="demo-notice")
        with gr.Tab("Moderate"):
            with gr.Row():
                with gr.Column():
                    text = gr.Textbox(label="Text", lines=4, placeholder="A message to moderate")
                    mode = gr.Radio(["score", "generate"], value="score", label="Mode",
                                    info="score: probability of each label; generate: the card's greedy decoding")
                    moderate_button = gr.Button("Moderate", variant="primary")
                    gr.Examples(CARD_TEXTS, inputs=[text], label="The card's examples")
                with gr.Column():
                    label = gr.Label(label="Label", num_top_classes=len(LABELS))
                    decision = gr.Markdown()
                    prediction_id = gr.Number(label="Prediction", precision=0, interactive=False)
            prompt = gr.Code(label="Prompt sent to the model", language=None, interactive=False)
            verdict = verdict_form(playground.logins)
        with gr.Tab("Chat check"):
            with gr.Row():
                with gr.Column():
                    user_message = gr.Textbox(label="User message", lines=3)
                    bot_reply = gr.Textbox(label="Bot reply", lines=3)
                    check_button = gr.Button("Check turn", variant="primary")
                with gr.Column():
                    turn_decision = gr.Markdown()
                    shown_reply = gr.Textbox(label="Reply the user sees", interactive=False)
            with gr.Row():
                user_label = gr.Label(label="User message label", num_top_classes=len(LABELS))
                bot_label = gr.Label(label="Bot reply label", num_top_classes=len(LABELS))
            with gr.Row():
                user_id = gr.Number(label="User prediction", precision=0, interactive=False)
                bot_id = gr.Number(label="Bot prediction", precision=0, interactive=False)
            side = gr.Radio(["user", "bot"], value="user", label="Verdict on")
            turn_verdict = verdict_form(playground.logins)
        with gr.Tab("Review"):
            with gr.Row():
                status_filter = gr.Dropdown([ANY, *STATUSES], value=ANY, label="Status")
                label_filter = gr.Dropdown([ANY, *LABELS], value=ANY, label="Reviewer label")
                disagree = gr.Checkbox(label="Model label differs from reviewer label")
                search = gr.Textbox(label="Search texts")
            refresh = gr.Button("Refresh")
            table = gr.Dataframe(headers=REVIEW_COLUMNS, datatype="str", interactive=False, wrap=True,
                                 label="Verdicts")
            with gr.Row():
                verdict_id = gr.Number(label="Selected verdict", precision=0)
                new_label = gr.Dropdown(list(LABELS), label="New label", value=None)
            with gr.Row():
                accept = gr.Button("Accept", variant="primary")
                discard = gr.Button("Discard", variant="stop")
                relabel = gr.Button("Relabel")
            curated = gr.Textbox(label="Result", interactive=False)
        with gr.Tab("Export"):
            with gr.Row():
                export_format = gr.Radio(list(FORMATS), value="oig", label="Format",
                                         info="oig: training records with the reviewer's label; full: every field")
                export_status = gr.Dropdown([ANY, *STATUSES], value="accepted", label="Status")
                since = gr.Textbox(label="Since", placeholder="2026-11-29 (optional)")
            export_button = gr.Button("Export", variant="primary")
            exported = gr.Textbox(label="Rows", interactive=False)
            download = gr.File(label="jsonl file")
        with gr.Tab("Prompt"):
            examples = gr.Dataframe(
                value=[[e.text, e.label] for e in moderator.template.examples],
                headers=["text", "label"], datatype="str", type="array", interactive=True,
                column_count=(2, "fixed"), label="Few-shot examples (label: one of the five)",
            )
            threshold = gr.Dropdown(list(SEVERITY) + [NEVER], value=moderator.threshold,
                                    label="Intervene from this label up (never: observe only)")
            apply = gr.Button("Apply", variant="primary")
            applied = gr.Textbox(label="Template", interactive=False)
            preview = gr.Code(value=moderator.template.prefix + " <text>\nOutput:", label="Prompt layout",
                              language=None, interactive=False)

        moderate_event = dict(fn=playground.moderate, inputs=[text, mode], outputs=[label, decision, prompt, prediction_id])
        moderate_button.click(**moderate_event, api_name="moderate", concurrency_limit=MAX_CONCURRENT)
        text.submit(**moderate_event, api_visibility="private", concurrency_limit=MAX_CONCURRENT)
        verdict.right.click(playground.confirm, [prediction_id, verdict.note, verdict.reviewer], verdict.saved,
                            api_name="confirm")
        verdict.correction.click(playground.flag, [prediction_id, verdict.label, verdict.note, verdict.reviewer],
                                 verdict.saved, api_name="flag")
        check_button.click(playground.check_turn, [user_message, bot_reply],
                           [user_label, bot_label, turn_decision, shown_reply, user_id, bot_id],
                           api_name="check_turn", concurrency_limit=MAX_CONCURRENT)
        sides = [side, user_id, bot_id]
        turn_verdict.right.click(playground.confirm_side, [*sides, turn_verdict.note, turn_verdict.reviewer],
                                 turn_verdict.saved, api_name="confirm_side")
        turn_verdict.correction.click(
            playground.flag_side, [*sides, turn_verdict.label, turn_verdict.note, turn_verdict.reviewer],
            turn_verdict.saved, api_name="flag_side",
        )
        filters = [status_filter, label_filter, disagree, search]
        refresh.click(playground.review, filters, table, api_name="review")
        ui.load(playground.review, filters, table, api_visibility="private")
        table.select(_selected_id, None, verdict_id, api_visibility="private")
        for button, action, inputs in (
            (accept, playground.accept, [verdict_id]),
            (discard, playground.discard, [verdict_id]),
            (relabel, playground.relabel, [verdict_id, new_label]),
        ):
            button.click(action, inputs, curated, api_name=action.__name__).success(
                playground.review, filters, table, api_visibility="private"
            )
        export_button.click(playground.export, [export_format, export_status, since], [download, exported],
                            api_name="export")
        apply.click(playground.set_prompt, [examples, threshold], [preview, applied], api_name="set_prompt")
    return ui


def _selected_id(event: gr.SelectData):
    return event.row_value[0]


def create_app(
    playground: Playground, *, reviewers: Reviewers | None = None, record_api: bool = True, limits: Limits = Limits()
) -> FastAPI:
    """One FastAPI app: the REST API under /v1 and /healthz, the page at / (behind a login with ``reviewers``)."""
    app = FastAPI(title="Moderation Playground", description="OpenAI-compatible moderation with five labels.")
    install_error_handlers(app)
    record = playground.record if record_api else None
    app.include_router(feedback_router(playground.store, reviewers))
    app.include_router(moderation_router(playground.moderator, playground.label, record, limits))
    return gr.mount_gradio_app(
        app,
        build_ui(playground).queue(max_size=limits.max_waiting),
        path="/",
        allowed_paths=[str(playground.export_dir)],
        auth=reviewers.check if reviewers else None,
        auth_message="Log in with your reviewer name and password.",
    )


def main(argv=None) -> int:
    """Load the model, open the database and serve the playground."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="Hugging Face id or folder, or 'demo' (default: $MODERATION_MODEL, "
                        "else GPT-JT-Moderation-6B on a GPU or from the local cache, else the demo model)")
    parser.add_argument("--backend", choices=["local", "vllm"], default="local",
                        help="local: the model runs here; vllm: on the completions server at --base-url")
    parser.add_argument("--base-url", help="the vLLM server, like http://HOST:8000 (default: $MODERATION_BASE_URL)")
    parser.add_argument("--db", default="feedback.db", help="SQLite file for predictions and verdicts")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--max-batch-size", type=int, default=32, help="texts per forward pass at most")
    parser.add_argument("--max-wait-ms", type=float, default=5, help="how long a request waits for company")
    parser.add_argument("--threshold", choices=SEVERITY + (NEVER,), default=DEFAULT_THRESHOLD,
                        help="least severe label that intervenes (default: %(default)s)")
    parser.add_argument("--intervention", default=DEFAULT_INTERVENTION,
                        help="the reply a user sees instead of the bot's when a turn intervenes")
    parser.add_argument("--max-inputs", type=int, default=Limits.max_inputs, help="texts per API request at most")
    parser.add_argument("--max-chars", type=int, default=Limits.max_chars, help="characters per API text at most")
    parser.add_argument("--max-waiting", type=int, default=Limits.max_waiting,
                        help="requests that may wait at once; past it the answer is 'busy, retry' (HTTP 503)")
    parser.add_argument("--no-record-api", action="store_true", help="don't keep the API's predictions")
    parser.add_argument("--auth", default=os.environ.get("MODERATION_AUTH"), metavar="FILE",
                        help="reviewers file (python -m feedback reviewers add NAME --file FILE): log in to review")
    parser.add_argument("--insecure", action="store_true", help="serve another address than localhost without --auth")
    args = parser.parse_args(argv)
    if not args.auth and args.host not in LOCAL_HOSTS:
        if not args.insecure:
            print(f"error: without --auth anyone who reaches {args.host} could read and change the feedback. "
                  "Add reviewers and pass --auth FILE, or --insecure to serve without logins.", file=sys.stderr)
            return 2
        print(f"warning: serving {args.host} without logins (--insecure): anyone who reaches it can read and "
              "change the feedback.", file=sys.stderr)
    try:
        reviewers = Reviewers(args.auth) if args.auth else None
        moderator = open_moderator(args.model, backend=args.backend, base_url=args.base_url,
                                   threshold=args.threshold, intervention=args.intervention)
    except (ModelLoadError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    store = FeedbackStore(args.db)
    export_dir = Path(tempfile.mkdtemp(prefix="moderation-exports-"))
    playground = Playground(moderator, store, export_dir, logins=reviewers is not None,
                            max_batch_size=args.max_batch_size, max_wait=args.max_wait_ms / 1000)
    limits = Limits(args.max_inputs, args.max_chars, args.max_waiting)
    app = create_app(playground, reviewers=reviewers, record_api=not args.no_record_api, limits=limits)
    print(f"Moderation Playground: http://{args.host}:{args.port}/ (model: {moderator.name}, db: {args.db})",
          flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
