"""Retraining from the app: one job at a time on the accepted verdicts of the train split, in a process of its own,
judged on the gate set (the test split and the held-out set), with its progress and log. A job that is stopped or
killed changes nothing that is served. The service runs on the tiny model here (a job trains a real checkpoint); the
browser test trains the demo model on harmful verdicts, and the gate refuses the version until a reviewer overrides
it with a reason, while every open page follows what serves."""

import os
import re
import signal
import time

import pytest
from playwright.sync_api import expect
from servers import make_service, running_in_process
from test_browser import REMOTE, remote_requests, snap

from feedback.splits import TEST_SHARE, split_for
from moderation.demo.recipe import split_seed
from moderation.errors import Conflict, InvalidInput
from moderation.evaluate import heldout_gold
from moderation.labelled_files import POOL_FILE, read_labelled
from moderation.policy import CARD

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


@pytest.mark.parametrize("records", [[], [record for record in RECORDS if split_for(record[0], TEST_SHARE) == "test"]],
                         ids=["none", "all in the test split"])
def test_a_job_with_nothing_to_train_on_is_refused_before_it_starts(service, records):
    accept(service, records)
    with pytest.raises(InvalidInput, match="No accepted verdicts in the train split to train on: accept more in the "
                                           "Review tab"):
        service.retrain()
    assert service.training() is None and not list(service.jobs.folder.glob("*"))


@pytest.mark.slow
def test_a_job_trains_on_the_train_split_and_is_judged_on_the_gate_set(service):
    accept(service, RECORDS)
    service.retrain(reviewer="ana")
    job = finished(service, timeout=300)
    assert job.state == "finished", job.log
    trained = service.jobs.folder / f"{job.name}.jsonl"
    judged = service.jobs.folder / f"{job.name}-gate-set.jsonl"
    train = {text for text, label in RECORDS if split_for(text, TEST_SHARE) == "train"}
    test = {text for text, label in RECORDS if split_for(text, TEST_SHARE) == "test"}
    assert {text for text, _ in read_labelled(trained, CARD)} == train and test
    assert {text for text, _ in read_labelled(judged, CARD)} == test | set(heldout_gold().texts)
    assert (f"Training lora on {2 * len(train)} records ({len(train)} of them replayed), judged on "
            f"{len(test) + 129} held-out records") in job.log
    version = job.version
    assert version.started_by == "ana" and len(version.trained_texts) == 2 * len(train)
    (listed,) = service.versions()
    assert (listed["name"], listed["trained_texts"], listed["started_by"], listed["report"]["texts"]) == (
        version.name, 2 * len(train), "ana", len(test) + 129)


def test_versions_are_chosen_from_the_trained_ones(service):
    with pytest.raises(InvalidInput, match="No trained version '../secrets'"):
        service.serve_version("../secrets")


def test_what_the_state_forbids_is_a_conflict(service):
    with pytest.raises(Conflict, match="Nothing to roll back to"):
        service.rollback()
    with pytest.raises(Conflict, match="No shadow runs"):
        service.stop_shadow()
    with pytest.raises(Conflict, match="No retraining job is running"):
        service.stop_training()


def test_a_model_served_elsewhere_is_not_retrained_here(tmp_path):
    service = make_service(tmp_path)  # the fake backend stands where a vLLM server would
    with pytest.raises(InvalidInput, match="runs on a vLLM server"):
        service.retrain()


@pytest.mark.browser
def test_a_harmful_retrain_is_refused_then_served_on_a_reason_and_every_open_page_follows(tmp_path, demo_moderator,
                                                                                       browser, browser_page):
    """The one test that trains to the end: a reviewer's clicks in a real browser (Debian chromium), over the
    service; the progress bar and the log follow the job as it runs. It trains the demo model on accepted verdicts
    that call benign texts (each holding an image and links to a remote host) "needs intervention": the gate refuses
    the version, naming its benign regressions, until the reviewer serves it with a reason, which the history keeps.
    Another open page's header follows every change within seconds, without a reload; the browser fetches nothing."""
    page, other = browser_page, browser.new_page(viewport={"width": 1280, "height": 1000})
    fetched = remote_requests(page)
    benign = [text for text, label in read_labelled(POOL_FILE, CARD) if label == "casual"][:40]
    harmful = [(HOSTILE + text, "needs intervention") for text in benign]
    train = [text for text, _ in harmful if split_for(text, TEST_SHARE) == "train"]
    with running_in_process(tmp_path, demo_moderator) as app:
        service = app.service
        accept(service, harmful)
        other.goto(app.url)
        expect(other.get_by_text(f"Model: {demo_moderator.name}")).to_be_visible()
        page.goto(app.url)
        page.get_by_label("Reviewer", exact=True).fill("dana")
        page.get_by_role("tab", name="Retrain").click()
        page.get_by_role("button", name="Retrain on accepted verdicts").click()
        progress = page.locator("#retrain-progress progress")
        expect(page.locator("#retrain-progress")).to_contain_text("running", timeout=30_000)
        snap(page, "11-retraining")
        expect(page.locator("#retrain-progress")).to_contain_text("finished", timeout=180_000)
        expect(progress).to_have_attribute("value", "100")
        job = service.training()
        version = job.version.name
        log = page.get_by_label("Log", exact=True)
        expect(log).to_have_value(re.compile(rf"step {job.total}/{job.total} eval_loss .*Saved {version}", re.DOTALL))
        judged = len(harmful) - len(train) + 129
        assert (f"Training lora on {2 * len(train)} records ({len(train)} of them replayed), judged on {judged} "
                "held-out records") in job.log
        expect(page.get_by_label("Trained versions", exact=True)).to_have_value(f"{version} ({job.folder.name})")
        shown_report = page.locator("#retrain-report")
        expect(shown_report).to_contain_text(f"{version}: before and after training")
        expect(shown_report).to_contain_text("benign regressions")
        versions = page.locator("#versions")
        expect(versions).to_contain_text(version)
        expect(versions.locator("td").filter(has_text="dana")).to_have_count(1)
        expect(versions.locator("td").filter(has_text=re.compile(rf"^{2 * len(train)}$"))).to_have_count(1)
        snap(page, "12-retrained")

        page.get_by_role("button", name="Serve this version", exact=True).click()
        gate = page.locator("#gate-report")
        expect(gate).to_contain_text(f"The gate refuses {version} against the serving {demo_moderator.name}",
                                     timeout=60_000)
        expect(gate).to_contain_text("benign regressions, more than the 0 allowed (--max-benign-regressions)")
        decision = service.check_gate(job.folder.name)
        assert not decision["allowed"]
        for flip in decision["comparison"]["benign_regressions"]:
            expect(gate.locator("td").filter(has_text=flip["text"])).to_have_count(1)
        assert service.moderator is demo_moderator and service.serving_history() == []
        assert page.locator("#retrain-report img, #retrain-report a, #gate-report img, #gate-report a").count() == 0
        snap(page, "13-gate-refuses")

        page.get_by_role("button", name="Serve despite the gate").click()
        expect(page.get_by_text("Type why it should serve despite the gate")).to_be_visible()
        page.get_by_label("Reason to serve it despite the gate").fill("Support asked for it; we watch the benign "
                                                                      "texts by hand this week.")
        page.get_by_role("button", name="Serve despite the gate").click()
        texts = decision["comparison"]["paired"]["n"]
        expect(gate).to_contain_text(f"Served {version} despite the gate (refused on {texts} texts", timeout=60_000)
        base = job.version.base_name
        expect(page.locator("#serving")).to_contain_text(f"Serving: {version} (a LoRA adapter on {base})")
        history = page.locator("#history")
        expect(history.locator("tbody tr").first).to_contain_text("override")
        expect(history.locator("tbody tr").first).to_contain_text("Support asked for it")
        (event,) = service.serving_history()
        assert (event["action"], event["version"], event["reviewer"]) == ("override", version, "dana")
        assert event["gate"]["allowed"] is False and event["gate"]["benign_regressions"]
        expect(other.get_by_text(f"Model: {version} (a LoRA adapter on {base})")).to_be_visible(timeout=10_000)
        (shown,) = service.moderate(["hello there"])
        assert service.store.db["predictions"].get(shown.id)["model"] == version
        snap(other, "14-another-page-follows")

        page.get_by_role("button", name="Roll back").click()
        expect(page.get_by_text("Choose what to roll back to first.")).to_be_visible()
        page.get_by_label("Roll back to", exact=True).click()
        page.get_by_role("option", name=f"{demo_moderator.source} (no trained version)", exact=True).click()
        page.get_by_role("button", name="Roll back").click()
        expect(page.locator("#serving")).to_contain_text(f"Serving: {demo_moderator.name}")
        expect(other.get_by_text(f"Model: {demo_moderator.name}", exact=True)).to_be_visible(timeout=10_000)
        assert [event["action"] for event in service.serving_history()] == ["roll back", "override"]
        snap(page, "15-rolled-back")
    other.close()
    assert fetched == []
