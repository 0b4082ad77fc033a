"""The Retrain tab: fine-tune the model on the accepted verdicts of the train split in the background, watch its
progress and log, then put a version to the gate and serve it (or override a refusal with a reason), shadow it on
live traffic, promote or stop the shadow, roll back to any version served before, and read the history of it all."""

import html

import gradio as gr

from feedback.serving import OVERRIDE
from moderation.errors import InvalidInput
from moderation.evaluate.gate import GateRefused
from moderation.evaluate.report import figure_text, gate_report, interval_text
from moderation.markdown import markdown_text

from ..jobs import Job
from .common import Page, model_text, shown_errors

POLL_S = 1.0
FOLLOW_S = 2.0
"""How often an open page reads what serves (its header, this tab): a change shows within this time."""
IDLE = "No retraining job has run since the server started."
VERSION_COLUMNS = ["version", "folder", "base", "trained on (texts)", "started by", "created",
                   "gate figures (against its base, on the gate set)"]
HISTORY_COLUMNS = ["time (UTC)", "action", "version", "reviewer", "reason", "gate"]


def build(page: Page) -> None:
    """The tab and its events: /retrain, /stop_retrain, /training, /serve_version, /serve_despite_gate,
    /shadow_version, /promote_shadow, /stop_shadow, /rollback and /serving_history."""
    service = page.service

    def choices() -> list[tuple[str, str]]:
        """The trained versions, each shown by its name and chosen by its folder."""
        return [(f"{version['name']} ({version['folder']})", version["folder"]) for version in service.versions()]

    with gr.Tab("Retrain") as tab:
        gr.Markdown("Fine-tune the model on the **accepted** verdicts of the **train** split (a LoRA adapter; the seed "
                    "set is replayed so it keeps what it knew). The version is judged on the **gate set**: the "
                    "accepted verdicts of the test split, which it never trains on, and the held-out set. It runs "
                    "in a process of its own: the app serves what it served until a version passes the gate.")
        with gr.Row():
            start = gr.Button("Retrain on accepted verdicts", variant="primary")
            stop = gr.Button("Stop")
        bar = gr.HTML(progress_bar(None), elem_id="retrain-progress")
        log = gr.Textbox(label="Log", lines=12, max_lines=12, autoscroll=True, interactive=False)
        report = gr.Markdown(elem_id="retrain-report")
        serving = gr.Markdown(lambda: serving_text(service), every=FOLLOW_S, elem_id="serving")
        table = gr.Dataframe(headers=VERSION_COLUMNS, datatype="str", interactive=False, wrap=True,
                             label="Versions trained here", elem_id="versions",
                             column_widths=["16%", "13%", "11%", "7%", "7%", "10%", "36%"])
        with gr.Row():
            versions = gr.Dropdown(choices(), label="Trained versions", value=None)
            serve = gr.Button("Serve this version", variant="primary")
            shadow = gr.Button("Shadow this version")
        gate = gr.Markdown(elem_id="gate-report")
        with gr.Row():
            reason = gr.Textbox(label="Reason to serve it despite the gate", max_lines=3,
                                placeholder="Why this version should serve although the gate refuses it: kept with "
                                "your name and the refused figures")
            override = gr.Button("Serve despite the gate", variant="stop")
        with gr.Row():
            promote = gr.Button("Promote the shadow")
            stop_shadow = gr.Button("Stop the shadow")
        with gr.Row():
            earlier = gr.Dropdown(service.rollback_choices(), label="Roll back to", value=None)
            rollback = gr.Button("Roll back")
        history = gr.Dataframe(headers=HISTORY_COLUMNS, datatype="str", interactive=False, wrap=True,
                               label="Serving history: serves, overrides, roll backs and shadows", elem_id="history",
                               column_widths=["12%", "8%", "18%", "8%", "24%", "30%"])
        timer = gr.Timer(POLL_S, active=False)

    def shown(job: Job | None):
        """The progress bar, the log, the report once the job has finished, and whether to keep watching."""
        running = job is not None and job.state == "running"
        return progress_bar(job), job.log if job else "", (job and job.report) or "", gr.Timer(active=running)

    def watch():
        """The job as it stands, and the trained versions (the newest chosen once a job has finished)."""
        job = service.training()
        chosen = job.folder.name if job and job.state == "finished" else None
        return *shown(job), version_rows(service), gr.Dropdown(choices=choices(), value=chosen)

    def served(decision_text: str = ""):
        """What serves, the gate's report and the history, after a change."""
        return serving_text(service), decision_text, history_rows(service)

    def rollback_choices():
        """The roll-back choices as they are now, none chosen."""
        return gr.Dropdown(choices=service.rollback_choices(), value=None)

    @shown_errors
    def retrain(name: str, request: gr.Request):
        """Start a retraining job on the accepted verdicts of the train split."""
        return shown(service.retrain(reviewer=page.reviewer(name, request)))

    @shown_errors
    def stop_retrain():
        """Stop the running retraining job."""
        return shown(service.stop_training())

    @shown_errors
    def serve_version(folder: str | None, name: str, request: gr.Request):
        """Serve the chosen trained version if the gate allows it; its report either way."""
        if not folder:
            raise InvalidInput("Choose a trained version first.", "version")
        return gated(lambda: service.serve_version(folder, reviewer=page.reviewer(name, request)))

    @shown_errors
    def serve_despite_gate(folder: str | None, why: str, name: str, request: gr.Request):
        """Serve the chosen trained version even if the gate refuses it: the reason is kept with the figures."""
        if not folder:
            raise InvalidInput("Choose a trained version first.", "version")
        if not why or not why.strip():
            raise InvalidInput("Type why it should serve despite the gate: the reason is kept with your name.",
                               "reason")
        return served(served_text(service.serve_version(folder, reviewer=page.reviewer(name, request), reason=why)))

    @shown_errors
    def shadow_version(folder: str | None, name: str, request: gr.Request):
        """Run the chosen trained version beside the serving model on live traffic."""
        if not folder:
            raise InvalidInput("Choose a trained version first.", "version")
        service.shadow_version(folder, reviewer=page.reviewer(name, request))
        return serving_text(service), history_rows(service)

    @shown_errors
    def promote_shadow(name: str, request: gr.Request):
        """Serve the shadow's version if the gate allows it (and stop the shadow); the gate's report either way."""
        return gated(lambda: service.promote_shadow(reviewer=page.reviewer(name, request)))

    @shown_errors
    def end_shadow(name: str, request: gr.Request):
        """Stop the shadow."""
        service.stop_shadow(reviewer=page.reviewer(name, request))
        return serving_text(service), history_rows(service)

    @shown_errors
    def roll_back(to: str | None, name: str, request: gr.Request):
        """Serve again the version chosen among those served before."""
        if to is None:
            raise InvalidInput("Choose what to roll back to first.", "version")
        service.rollback(to, reviewer=page.reviewer(name, request))
        return serving_text(service), history_rows(service)

    def gated(serve):
        """``serve()`` through the gate: what serves and the gate's figures when it allows; when it refuses, its
        report (with the figures and the texts) and nothing changed."""
        try:
            event = serve()
        except GateRefused as refused:
            gr.Warning("The gate refuses this version: see its figures below.")
            return served(gate_report(refused.decision))
        return served(served_text(event))

    def listed():
        """The trained versions, the roll-back choices and the history, as they are now."""
        return version_rows(service), gr.Dropdown(choices=service.rollback_choices()), history_rows(service)

    job_outputs = [bar, log, report, timer]
    changed = [serving, gate, history]
    named = [page.name]
    start.click(retrain, named, job_outputs, api_name="retrain")
    stop.click(stop_retrain, None, job_outputs, api_name="stop_retrain")
    timer.tick(watch, None, [*job_outputs, table, versions], api_name="training")
    tab.select(watch, None, [*job_outputs, table, versions], api_visibility="private")
    tab.select(listed, None, [table, earlier, history], api_name="serving_history")
    for button, action, inputs, outputs, name in (
        (serve, serve_version, [versions, *named], changed, "serve_version"),
        (override, serve_despite_gate, [versions, reason, *named], changed, "serve_despite_gate"),
        (promote, promote_shadow, named, changed, "promote_shadow"),
        (rollback, roll_back, [earlier, *named], [serving, history], "rollback"),
    ):
        button.click(action, inputs, outputs, api_name=name).success(rollback_choices, None, earlier,
                                                                     api_visibility="private")
    shadow.click(shadow_version, [versions, *named], [serving, history], api_name="shadow_version")
    stop_shadow.click(end_shadow, named, [serving, history], api_name="stop_shadow")


def progress_bar(job: Job | None) -> str:
    """A progress bar with the job's state and step (HTML built from numbers and fixed words only)."""
    if job is None:
        return f"<p>{IDLE}</p>"
    caption = f"{job.name}: {job.state}, step {job.step} of {job.total or '?'}"
    percent = round(100 * job.progress)
    return f'<progress max="100" value="{percent}"></progress> <span>{html.escape(caption)} ({percent}%)</span>'


def serving_text(service) -> str:
    """What the app serves now, and the shadow beside it (how many texts it labelled, and dropped)."""
    text = f"**Serving:** {model_text(service.moderator)}"
    shadow = service.serving.shadow
    if shadow is not None:
        text += (f" · **Shadow:** {model_text(shadow.moderator)}, {shadow.labelled} texts labelled, {shadow.dropped} "
                 "dropped (it fell behind)")
    return text


def served_text(event: dict) -> str:
    """What the page says once a version serves: the gate's figures, and whether it overrode a refusal."""
    if event["action"] == OVERRIDE:
        return (f"Served {markdown_text(event['version'])} **despite the gate** ({gate_line(event['gate'])}): the "
                "reason, your name and the figures are in the history below.")
    return f"Served {markdown_text(event['version'])}: the gate {gate_line(event['gate'])}."


def gate_line(gate: dict | None) -> str:
    """A gate decision kept in the history, on one line: allowed or refused, on how many texts, the change of
    accuracy with its 95% interval, and the benign regressions."""
    if gate is None:
        return "no gate"
    accuracy = gate["figures"]["accuracy"]
    return (f"{'allowed' if gate['allowed'] else 'refused'} on {gate['texts']} texts: accuracy "
            f"{figure_text(accuracy['a'])} → {figure_text(accuracy['b'])} {interval_text(accuracy['interval'])}, "
            f"{len(gate['benign_regressions'])} benign regressions")


def version_rows(service) -> list[list]:
    """One row a trained version: its name, folder, base, how many texts it trained on, who started it and when,
    and its report's figures on the gate set against its base."""
    return [[version["name"], version["folder"], version["base"], version["trained_texts"],
             version["started_by"] or "", version["created"].replace("T", " "), figures_text(version["report"])]
            for version in service.versions()]


def figures_text(report: dict | None) -> str:
    """A version's report in a line: accuracy, macro-F1 and quadratic kappa before → after training, each with the
    95% interval of its change, and the benign regressions, on how many texts."""
    if report is None:
        return "no report"
    figures = "; ".join(f"{name} {figure_text(values['before'])} → {figure_text(values['after'])} "
                        f"{interval_text(values['interval'])}" for name, values in report["figures"].items())
    return f"{figures}; {report['benign_regressions']} benign regressions; on {report['texts']} texts"


def history_rows(service) -> list[list]:
    """One row a serving event, newest first: when, what, which version, who, why, and the gate's decision."""
    return [[event["created"][:19].replace("T", " "), event["action"], event["version"], event["reviewer"],
             event["reason"] or "", gate_line(event["gate"]) if event["gate"] else ""]
            for event in service.serving_history()]
