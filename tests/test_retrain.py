"""Retraining from the app: one job at a time on the accepted verdicts, in a process of its own, with its progress
and log; serving the version it trained (swapped in whole) and rolling back. A job that is stopped or killed
changes nothing that is served. The service runs on the tiny model here (a job trains a real checkpoint)."""

import json
import os
import re
import signal
import time

import pytest
from playwright.sync_api import expect
from servers import make_service, running_in_process
from test_browser import REMOTE, remote_requests, snap

from moderation.demo.recipe import split_seed
from moderation.errors import Conflict, InvalidInput

RECORDS = split_seed()[0][:30]
HOSTILE = (f'<img src="http://{REMOTE}/pixel.png"> <a href="http://{REMOTE}/a">a</a> ![image](http://{REMOTE}/md.png) '
           f"www.{REMOTE} mail@{REMOTE} ")
"""What the texts of the browser test begin with: an image and links to a remote host, in HTML, in Markdown and bare
(which a renderer of GitHub's Markdown makes links)."""


def accept(service, records):
    """Moderate each text, give it the record's label as a verdict, and accept the verdict."""
    for text, label in records:
        (shown,) = service.moderate([text])
        if shown.result.label == label:
            verdict = service.confirm(shown.id, reviewer="ana")
        else:
            verdict = service.flag(shown.id, label, reviewer="ana")
        service.set_status(verdict["id"], "accepted")


@pytest.fixture
def service(tmp_path, tiny_moderator):
    service = make_service(tmp_path, tiny_moderator)
    yield service
    service.close()  # a job still running is stopped


def finished(service, timeout=180):
    deadline = time.monotonic() + timeout
    while (job := service.training()).state == "running":
        assert time.monotonic() < deadline, job.log
        time.sleep(0.2)
    return job


def logged(service, pattern: str, timeout: float = 120):
    """The running job once its log matches ``pattern`` (a regular expression)."""
    deadline = time.monotonic() + timeout
    while not re.search(pattern, (now := service.training()).log, re.MULTILINE) and now.state == "running":
        assert time.monotonic() < deadline, now.log
        time.sleep(0.05)
    assert now.state == "running", now.log
    return now


@pytest.mark.slow
def test_one_job_at_a_time_and_a_killed_job_changes_nothing(service, tiny_moderator):
    accept(service, RECORDS)
    job = service.retrain()
    with pytest.raises(Conflict, match=f"The retraining job {job.name} is still running"):
        service.retrain()
    logged(service, r"^step \d+/")  # training: its version is half-written
    os.kill(job.pid, signal.SIGKILL)
    assert finished(service).state == "failed"
    assert service.moderator is tiny_moderator and service.versions() == []
    assert not (service.jobs.folder / job.name).exists()
    leftovers = list(service.jobs.folder.glob(f".{job.name}-building-*"))
    assert leftovers, "SIGKILL skips every cleanup: the half-written folder stays until the next job"
    (shown,) = service.moderate(["still serving"])
    assert shown.result.model == tiny_moderator.name
    stopped = service.retrain()
    assert stopped.pid != job.pid
    assert not any(path.exists() for path in leftovers), "the next job removes what a killed one left"
    logged(service, "Training lora")
    assert service.stop_training().state == "stopped"
    assert service.versions() == [] and not (service.jobs.folder / stopped.name).exists()
    assert not list(service.jobs.folder.glob(f".{stopped.name}-building-*")), "a stopped job cleans up after itself"


@pytest.mark.parametrize(
    "records, message",
    [([], "No accepted verdicts to train on: accept some in the Review tab first."),
     (RECORDS[:3], "too few to hold out a label-stratified 20%")],
)
def test_a_job_that_cannot_train_is_refused_before_it_starts(service, records, message):
    accept(service, records)
    with pytest.raises(InvalidInput, match=message):
        service.retrain()
    assert service.training() is None and not list(service.jobs.folder.glob("*"))


def test_versions_are_chosen_from_the_trained_ones(service):
    with pytest.raises(InvalidInput, match="No trained version '../secrets'"):
        service.serve_version("../secrets")


def test_what_the_state_forbids_is_a_conflict(service):
    with pytest.raises(Conflict, match="Nothing to roll back to"):
        service.rollback()
    with pytest.raises(Conflict, match="No retraining job is running"):
        service.stop_training()


def test_a_model_served_elsewhere_is_not_retrained_here(tmp_path):
    service = make_service(tmp_path)  # the fake backend stands where a vLLM server would
    with pytest.raises(InvalidInput, match="runs on a vLLM server"):
        service.retrain()


@pytest.mark.browser
def test_the_retrain_tab_shows_the_job_live_then_serves_its_version_and_rolls_back(tmp_path, demo_moderator,
                                                                                   browser_page):
    """The one test that trains to the end: a reviewer's clicks in a real browser (Debian chromium), over the
    service; the progress bar and the log follow the job as it runs. It trains the demo model (the tiny one labels
    every text alike, before and after), on texts that each hold an image and a link to a remote host: the report
    shows the texts whose label changed as text, and the browser fetches nothing."""
    page = browser_page
    fetched = remote_requests(page)
    with running_in_process(tmp_path, demo_moderator) as app:
        service = app.service
        accept(service, [(HOSTILE + text, label) for text, label in RECORDS])
        page.goto(app.url)
        expect(page.get_by_text(f"Model: {demo_moderator.name}")).to_be_visible()
        page.get_by_role("tab", name="Retrain").click()
        page.get_by_role("button", name="Retrain on accepted verdicts").click()
        progress = page.locator("#retrain-progress progress")
        expect(page.locator("#retrain-progress")).to_contain_text("running", timeout=30_000)
        snap(page, "11-retraining")
        expect(page.locator("#retrain-progress")).to_contain_text("finished", timeout=180_000)
        expect(progress).to_have_attribute("value", "100")
        job = service.training()
        log = page.get_by_label("Log", exact=True)
        expect(log).to_have_value(re.compile(rf"step {job.total}/{job.total} eval_loss .*Saved {job.version.name}",
                                             re.DOTALL))
        assert "Training lora on 48 records (24 of them replayed), judged on 6 held-out records" in job.log
        expect(page.get_by_label("Trained versions", exact=True)).to_have_value(
            f"{job.version.name} ({job.folder.name})")
        report = json.loads((job.folder / "report.json").read_text())
        shown_report = page.locator("#retrain-report")
        expect(shown_report).to_contain_text(f"{job.version.name}: before and after training")
        expect(shown_report).to_contain_text(f"After fixes {report['fixed']} and breaks {report['broken']} of 6 texts")
        assert report["flipped"], "no held-out text changed its label: the report shows no text"
        for item in report["flipped"]:
            expect(shown_report.locator("td").filter(has_text=item["text"])).to_have_count(1)
        assert shown_report.locator("img, a").count() == 0
        snap(page, "12-retrained")

        page.get_by_role("button", name="Serve this version").click()
        base = job.version.base_name
        expect(page.get_by_text(f"Serving: {job.version.name} (a LoRA adapter on {base})")).to_be_visible()
        assert service.moderator.name == job.version.name
        (shown,) = service.moderate(["hello there"])
        assert service.store.db["predictions"].get(shown.id)["model"] == job.version.name
        page.reload()
        expect(page.get_by_text(f"Model: {job.version.name} (a LoRA adapter on {base})")).to_be_visible()
        snap(page, "13-version-served")

        page.get_by_role("tab", name="Retrain").click()
        page.get_by_role("button", name="Roll back").click()
        expect(page.get_by_text(f"Serving: {demo_moderator.name}", exact=True)).to_be_visible()
        assert service.moderator is demo_moderator
        page.get_by_role("button", name="Roll back").click()
        expect(page.get_by_text("Nothing to roll back to")).to_be_visible()
    assert fetched == []
