"""Retraining from the app: one job at a time on the accepted verdicts, in a process of its own, with its progress
and log; serving the version it trained (swapped in whole) and rolling back. A job that is stopped or killed
changes nothing that is served. The service runs on the tiny model here (a job trains a real checkpoint)."""

import os
import signal
import time

import pytest
from conftest import make_service, running_in_process
from gradio_client import Client
from gradio_client.exceptions import AppError

from moderation.demo import split_seed
from moderation.errors import InvalidInput

RECORDS = split_seed()[0][:30]


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
    job = service.training()
    if job and job.state == "running":
        service.stop_training()
    service.store.close()


def finished(service, timeout=180):
    deadline = time.monotonic() + timeout
    while (job := service.training()).state == "running":
        assert time.monotonic() < deadline, job.log
        time.sleep(0.2)
    return job


def test_one_job_at_a_time_and_a_killed_job_changes_nothing(service, tiny_moderator):
    accept(service, RECORDS)
    job = service.retrain()
    with pytest.raises(InvalidInput, match=f"The retraining job {job.name} is still running"):
        service.retrain()
    os.kill(job.pid, signal.SIGKILL)
    assert finished(service).state == "failed"
    assert service.moderator is tiny_moderator and service.versions() == []
    assert not (service.jobs.folder / job.name).exists()
    (shown,) = service.moderate(["still serving"])
    assert shown.result.model == tiny_moderator.name
    stopped = service.retrain()
    assert stopped.name != job.name or stopped.pid != job.pid
    assert service.stop_training().state == "stopped"
    assert service.versions() == [] and not (service.jobs.folder / stopped.name).exists()


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


def test_a_model_served_elsewhere_is_not_retrained_here(tmp_path):
    service = make_service(tmp_path)  # the fake backend stands where a vLLM server would
    with pytest.raises(InvalidInput, match="runs on a vLLM server"):
        service.retrain()


def test_the_page_retrains_shows_progress_and_serves_the_version_then_rolls_back(tmp_path, tiny_moderator):
    """The one test that trains to the end: the page's events over the service, as a reviewer drives them."""
    with running_in_process(tmp_path, tiny_moderator) as app:
        service = app.service
        accept(service, RECORDS)
        client = Client(app.url, verbose=False)
        bar, log, _ = client.predict(api_name="/retrain")
        assert "running" in bar and "<progress" in bar
        deadline = time.monotonic() + 180
        while "finished" not in bar:
            assert time.monotonic() < deadline and "failed" not in bar, log
            time.sleep(0.3)
            bar, log, _, versions = client.predict(api_name="/training")
        job = service.training()
        assert 'value="100"' in bar and job.step == job.total > 0 and f"Saved {job.version.name} (lora)" in log
        assert "Training lora on 48 records (24 of them replayed), judged on 6 held-out records" in log
        assert service.versions() == [job.folder.name] and versions["value"] == job.folder.name
        assert client.predict(job.folder.name, api_name="/serve_version") == (
            f"**Serving:** `{job.version.name}` (a LoRA adapter on `{tiny_moderator.name}`)")
        assert service.moderator.name == job.version.name
        (shown,) = service.moderate(["hello there"])
        assert service.store.db["predictions"].get(shown.id)["model"] == job.version.name
        assert client.predict(api_name="/rollback") == f"**Serving:** `{tiny_moderator.name}`"
        assert service.moderator is tiny_moderator
        with pytest.raises(AppError, match="Nothing to roll back to"):
            client.predict(api_name="/rollback")
