"""The Retrain tab: fine-tune the model on the accepted verdicts in the background, watch its progress and log,
then serve the version it trained (or roll back to what was served before)."""

import html

import gradio as gr

from ..jobs import Job
from .common import Page, model_text, shown_errors

POLL_S = 1.0
IDLE = "No retraining job has run since the server started."


def build(page: Page) -> None:
    """The tab and its events: /retrain, /stop_retrain, /training, /serve_version and /rollback."""
    service = page.service

    def choices() -> list[tuple[str, str]]:
        """The trained versions, each shown by its name and chosen by its folder."""
        return [(f"{version} ({folder})", folder) for folder, version in service.versions()]

    with gr.Tab("Retrain") as tab:
        gr.Markdown("Fine-tune the model on the **accepted** verdicts (a LoRA adapter; the seed set is replayed so "
                    "it keeps what it knew, and a share of the verdicts is held out to choose the best checkpoint). "
                    "It runs in a process of its own: the app serves what it served until you serve the new version.")
        with gr.Row():
            start = gr.Button("Retrain on accepted verdicts", variant="primary")
            stop = gr.Button("Stop")
        bar = gr.HTML(progress_bar(None), elem_id="retrain-progress")
        log = gr.Textbox(label="Log", lines=12, max_lines=12, autoscroll=True, interactive=False)
        report = gr.Markdown(elem_id="retrain-report")
        serving = gr.Markdown(lambda: serving_text(service.moderator))
        with gr.Row():
            versions = gr.Dropdown(choices(), label="Trained versions", value=None)
            serve = gr.Button("Serve this version")
            rollback = gr.Button("Roll back")
        timer = gr.Timer(POLL_S, active=False)

    def shown(job: Job | None):
        """The progress bar, the log, the report once the job has finished, and whether to keep watching."""
        running = job is not None and job.state == "running"
        return progress_bar(job), job.log if job else "", (job and job.report) or "", gr.Timer(active=running)

    def watch():
        """The job as it stands, and the trained versions (the newest chosen once a job has finished)."""
        job = service.training()
        chosen = job.folder.name if job and job.state == "finished" else None
        return *shown(job), gr.Dropdown(choices=choices(), value=chosen)

    @shown_errors
    def retrain():
        """Start a retraining job on the accepted verdicts."""
        return shown(service.retrain())

    @shown_errors
    def stop_retrain():
        """Stop the running retraining job."""
        return shown(service.stop_training())

    @shown_errors
    def serve_version(name: str | None):
        """Serve the chosen trained version."""
        if not name:
            raise gr.Error("Choose a trained version first.", print_exception=False)
        return serving_text(service.serve_version(name))

    @shown_errors
    def roll_back():
        """Serve again what was served before."""
        return serving_text(service.rollback())

    outputs = [bar, log, report, timer]
    start.click(retrain, None, outputs, api_name="retrain")
    stop.click(stop_retrain, None, outputs, api_name="stop_retrain")
    timer.tick(watch, None, [*outputs, versions], api_name="training")
    tab.select(watch, None, [*outputs, versions], api_visibility="private")
    tab.select(lambda: serving_text(service.moderator), None, serving, api_visibility="private")
    serve.click(serve_version, versions, serving, api_name="serve_version")
    rollback.click(roll_back, None, serving, api_name="rollback")


def progress_bar(job: Job | None) -> str:
    """A progress bar with the job's state and step (HTML built from numbers and fixed words only)."""
    if job is None:
        return f"<p>{IDLE}</p>"
    caption = f"{job.name}: {job.state}, step {job.step} of {job.total or '?'}"
    percent = round(100 * job.progress)
    return f'<progress max="100" value="{percent}"></progress> <span>{html.escape(caption)} ({percent}%)</span>'


def serving_text(moderator) -> str:
    """What the app serves now."""
    return f"**Serving:** {model_text(moderator)}"
