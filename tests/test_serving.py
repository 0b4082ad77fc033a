"""Serving a version through the gate, on the demo model with versions trained by the tests: a harmful retrain is
refused with its figures and texts and nothing changes; an override needs a reason and is logged with who gave it and
the refused figures; a harmless one is allowed; any version served before can serve again. The versions list shows
each version's figures, the texts it trained on, its base, who started it and when. REST serves through the same gate.
A served version survives a restart of ``python app.py``, and --model on the command line wins over it."""

import shutil

import httpx
import pytest
from servers import make_service, running_in_process
from test_gate import PASSWORD

from bench.app_process import running_app
from feedback.store import FeedbackStore
from moderation.errors import InvalidInput
from moderation.evaluate.gate import GateRefused
from moderation.versions import ModelVersion
from playground.serving import BASE

REASON = "The support team needs the new wording today; we watch the benign texts by hand."


def versions_folder(tmp_path, *adapters):
    """A versions folder holding copies of ``adapters``, as if trained here."""
    folder = tmp_path / "versions"
    for adapter in adapters:
        shutil.copytree(adapter, folder / ModelVersion.read(adapter).name)
    return folder


@pytest.fixture
def service(tmp_path, demo_moderator, harmful_adapter_dir, harmless_adapter_dir):
    service = make_service(tmp_path, demo_moderator,
                           versions_dir=versions_folder(tmp_path, harmful_adapter_dir, harmless_adapter_dir))
    yield service
    service.close()


def test_a_refused_version_is_served_only_with_a_reason_which_is_logged(service, demo_moderator):
    with pytest.raises(GateRefused) as refused:
        service.serve_version("demo-harmful", reviewer="bo")
    assert str(refused.value).startswith("The gate refuses demo-harmful against the serving playground-demo-gptj: ")
    assert "benign regressions, more than the 0 allowed" in str(refused.value) and PASSWORD in str(refused.value)
    assert service.moderator is demo_moderator and service.serving_history() == []
    assert [run["version"] for run in service.runs(2)] == ["demo-harmful", None], "both gate runs are stored"
    with pytest.raises(GateRefused):
        service.serve_version("demo-harmful", reviewer="bo", reason=" \n ")  # a blank reason is none

    event = service.serve_version("demo-harmful", reviewer="cy", reason=REASON)
    assert service.moderator.name == "demo-harmful"
    (logged,) = service.serving_history()
    assert logged == event
    assert (logged["action"], logged["version"], logged["reviewer"], logged["reason"]) == (
        "override", "demo-harmful", "cy", REASON)
    gate = logged["gate"]
    assert gate["allowed"] is False and gate["texts"] == 129 and gate["reasons"] == refused.value.decision["reasons"]
    assert PASSWORD in [flip["text"] for flip in gate["benign_regressions"]]
    assert gate["figures"]["accuracy"]["a"] > gate["figures"]["accuracy"]["b"]
    (shown,) = service.moderate([PASSWORD])
    assert shown.result.model == "demo-harmful" and shown.result.label != "casual", "it serves, flaws and all"


def test_a_harmless_version_is_allowed_and_any_earlier_one_serves_again(service, demo_moderator,
                                                                        harmful_adapter_dir):
    service.serve_version("demo-harmful", reviewer="cy", reason=REASON)
    event = service.serve_version("demo-harmless", reviewer="bo")  # against the harmful one now serving
    assert (event["action"], event["reason"], event["gate"]["allowed"]) == ("serve", None, True)
    assert service.moderator.name == "demo-harmless"
    choices = dict((folder, shown) for shown, folder in service.rollback_choices())
    assert list(choices) == [BASE, str(service.jobs.folder.resolve() / "demo-harmful")]
    assert choices[BASE] == "demo (no trained version)"
    assert service.rollback(BASE, reviewer="dana")["version"] == demo_moderator.name
    base = service.moderator
    service.rollback(str(service.jobs.folder.resolve() / "demo-harmful"), reviewer="dana")
    assert service.moderator.name == "demo-harmful"
    assert service.rollback(reviewer="dana")["version"] == demo_moderator.name, "back one step"
    assert service.moderator is base, "the one served before the last change is kept loaded"
    assert [(event["action"], event["version"]) for event in service.serving_history()] == [
        ("roll back", demo_moderator.name), ("roll back", "demo-harmful"), ("roll back", demo_moderator.name),
        ("serve", "demo-harmless"), ("override", "demo-harmful")]
    for wrong in ("../secrets", str(harmful_adapter_dir), "demo-harmless"):
        with pytest.raises(InvalidInput, match="is not a version served before: choose one from the list"):
            service.rollback(wrong, reviewer="dana")


def test_the_versions_list_shows_figures_texts_base_and_who(service, harmful_adapter_dir):
    versions = {version["name"]: version for version in service.versions()}
    assert set(versions) == {"demo-harmful", "demo-harmless"}
    harmful = versions["demo-harmful"]
    assert (harmful["base"], harmful["trained_texts"], harmful["started_by"], harmful["kind"]) == (
        "playground-demo-gptj", 40, "ana", "lora")
    assert harmful["created"] == ModelVersion.read(harmful_adapter_dir).created
    report = harmful["report"]
    assert report["texts"] == 129 and report["benign_regressions"] > 0
    low, high = report["figures"]["kappa_quadratic"]["interval"]
    assert low < report["figures"]["kappa_quadratic"]["after"] - report["figures"]["kappa_quadratic"]["before"] < high


def test_rest_serves_through_the_same_gate(tmp_path, demo_moderator, harmful_adapter_dir, harmless_adapter_dir):
    versions = versions_folder(tmp_path, harmful_adapter_dir, harmless_adapter_dir)
    with running_in_process(tmp_path, demo_moderator, versions_dir=versions) as app:
        refused = httpx.post(app.url + "v1/versions/demo-harmful/serve", json={"reviewer": "bo"}, timeout=120)
        assert refused.status_code == 409
        assert "benign regressions" in refused.json()["error"]["message"] and PASSWORD in refused.text
        served = httpx.post(app.url + "v1/versions/demo-harmful/serve", json={"reviewer": "bo", "reason": REASON},
                            timeout=120).json()
        assert (served["model"], served["action"], served["gate"]["allowed"]) == ("demo-harmful", "override", False)
        cards = httpx.get(app.url + "v1/models").json()["data"]
        assert [(card["id"], card["role"]) for card in cards] == [("demo-harmful", "serving"),
                                                                   ("demo-harmless", "trained")]
        unknown = httpx.post(app.url + "v1/versions/..%2Fsecrets/serve", json={}, timeout=30)
        assert unknown.status_code in (400, 404) and "Traceback" not in unknown.text


@pytest.mark.slow
def test_a_served_version_survives_a_restart(tmp_path, demo_model_dir, harmless_adapter_dir):
    """``python app.py`` serves a version through REST, is stopped and started again on the same database: it serves
    the version and says so; started with --model, it serves that model and says it wins."""
    db, versions = tmp_path / "feedback.db", versions_folder(tmp_path, harmless_adapter_dir)
    with running_app(None, db, "--versions", versions, log=tmp_path / "first.log") as (url, _):
        served = httpx.post(url + "v1/versions/demo-harmless/serve", json={"reviewer": "ana"}, timeout=120)
        assert served.status_code == 200, served.text
    with running_app(None, db, "--versions", versions, log=tmp_path / "again.log") as (url, _):
        assert httpx.get(url + "healthz").json()["model"] == "demo-harmless"
        (card,) = [card for card in httpx.get(url + "v1/models").json()["data"] if card["role"] == "serving"]
        assert card["id"] == "demo-harmless"
    logged = (tmp_path / "again.log").read_text()
    assert "Serving demo-harmless, the version promoted last (serve by ana at " in logged
    with running_app("demo", db, "--versions", versions, log=tmp_path / "chosen.log") as (url, _):
        assert httpx.get(url + "healthz").json()["model"] == "playground-demo-gptj"
    assert ("Serving playground-demo-gptj, as the command line says (--model, --adapter or $MODERATION_MODEL win): not "
            "demo-harmless, the version promoted last") in (tmp_path / "chosen.log").read_text()
    with FeedbackStore(db) as store:
        assert store.serving.promoted()["version"] == "demo-harmless", "the command line changes nothing stored"
