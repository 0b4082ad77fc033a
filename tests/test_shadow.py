"""Shadow traffic, on the fake backend: a shadow that labels otherwise than the serving model records both
predictions, each with the model that made it, for the page's texts, the API's and a batch file's; the Queue's order
"serving and shadow disagree" lists exactly the texts where they differ, and verdicts on them join the gate set; the
Dashboard counts how often the two agree. The answer never waits for the shadow: a shadow that is stuck drops work and
counts it. The REST API lists the serving model, the shadow and the trained versions."""

import asyncio
import threading

import httpx
import pytest
from fakes import fake_moderator
from servers import in_own_thread, make_service, running_in_process, within

from feedback.queue import SHADOW_DISAGREES
from moderation.errors import Conflict
from moderation.labels import SEVERITY
from playground.shadow import MAX_BATCH

SHADOW_RULES = {"hurt": "needs intervention", "kill": "needs intervention", "idiot": "probably needs caution",
                "hate": "needs caution", "password": "needs intervention"}
"""The shadow's labels: where it differs from the serving fake, on texts with "hate" or "password"."""
TEXTS = ["I hate mondays", "Where can I find the settings to change my password?", "I will hurt you",
         "you idiot", "see you tomorrow", "I hate rain"]
DIFFERING = {"I hate mondays", "Where can I find the settings to change my password?", "I hate rain"}


@pytest.fixture
def service(tmp_path):
    service = make_service(tmp_path)
    yield service
    service.close()


def shadowed(service, tmp_path, **options):
    """The service with a shadow that labels by :data:`SHADOW_RULES` (as if from a version folder)."""
    return service.serving.start_shadow(fake_moderator("fake-shadow", rules=SHADOW_RULES, **options),
                                        tmp_path / "fake-shadow-version", reviewer="ana")


def shadow_rows(service) -> dict[str, tuple]:
    """Each shadowed text: (serving model, its label, shadow model, its label)."""
    return {row["text"]: (row["serving_model"], row["serving_label"], row["model"], row["label"])
            for row in service.store.db["shadow_predictions"].rows}


def queued(service, order) -> list[str]:
    """The texts the reviewer "bo" is shown in ``order``, skipping each in turn, until none is left."""
    texts = []
    while (item := service.next_in_queue("bo", order=order)) is not None:
        texts.append(item["text"])
        service.skip(item["id"], reviewer="bo")
    service.clear_skips("bo")
    return texts


def test_a_shadow_records_both_predictions_and_the_queue_lists_exactly_where_they_differ(service, tmp_path):
    shadow = shadowed(service, tmp_path)
    service.moderate(TEXTS[:2])  # the page's path
    in_own_thread(asyncio.run, service.answer(TEXTS[2:4], fields=["input"] * 2, response_id="modr-1"))  # the API's
    path = tmp_path / "rows.txt"
    path.write_text("\n".join(TEXTS[4:]) + "\n")
    service.moderate_file(str(path), format="jsonl")  # a batch file, recorded
    service.writer.flush()
    assert within(10, lambda: shadow.labelled == len(TEXTS)), (shadow.labelled, shadow.dropped)
    rows = shadow_rows(service)
    assert set(rows) == set(TEXTS)
    assert all(serving == "fake-moderation" and model == "fake-shadow" for serving, _, model, _ in rows.values())
    assert rows["Where can I find the settings to change my password?"][1::2] == ("casual", "needs intervention")
    assert {text for text, (_, mine, _, theirs) in rows.items() if mine != theirs} == DIFFERING
    assert sorted(queued(service, SHADOW_DISAGREES)) == sorted(DIFFERING)
    assert sorted(queued(service, "most uncertain")) == sorted(TEXTS), "the other orders list every text"

    figures = service.stats()["shadow"]
    assert figures["model"] == "fake-shadow" and figures["texts"] == 6 and figures["agree"] == pytest.approx(0.5)
    assert figures["confusion"]["casual"]["needs intervention"] == 1
    assert figures["confusion"]["possibly needs caution"]["needs caution"] == 2
    assert sum(map(sum, (row.values() for row in figures["confusion"].values()))) == 6
    assert set(figures["confusion"]) == set(SEVERITY)


def test_verdicts_on_the_texts_they_disagree_on_join_the_gate_set(service, tmp_path):
    shadow = shadowed(service, tmp_path)
    shown = {prediction.result.text: prediction.id for prediction in service.moderate(TEXTS)}
    assert within(10, lambda: shadow.labelled == len(TEXTS))
    for text in TEXTS:
        verdict = service.flag(shown[text], "needs caution", reviewer="bo") if text in DIFFERING else \
            service.confirm(shown[text], reviewer="bo")
        service.set_status(verdict["id"], "accepted")
    gate_texts = {text for text, _ in service.gate_set().items}
    splits = {row["text"]: row["split"] for row in service.store.db["splits"].rows}
    assert DIFFERING <= gate_texts, "every text they disagree on, whichever its split"
    assert {text for text in TEXTS if text not in DIFFERING} & gate_texts == {
        text for text in TEXTS if text not in DIFFERING and splits[text] == "test"}


def test_the_answer_never_waits_for_a_stuck_shadow(service, tmp_path):
    stuck = threading.Event()
    shadow = shadowed(service, tmp_path, gate=stuck)
    try:
        for number in range(200):  # far more answered batches than the shadow's queue holds
            (shown,) = service.moderate([f"text number {number}"])
            assert shown.result.model == "fake-moderation"
        # what the stuck shadow took (one batch, at most MAX_BATCH texts) and what waits for it: the rest is dropped
        assert shadow.dropped >= 200 - MAX_BATCH - shadow.depth > 0, (shadow.dropped, shadow.depth)
    finally:
        stuck.set()
    assert within(10, lambda: shadow.labelled + shadow.dropped == 200)


def test_a_shadow_is_stopped_and_changes_are_conflicts_when_the_state_forbids_them(service, tmp_path):
    with pytest.raises(Conflict, match="No shadow runs"):
        service.stop_shadow(reviewer="ana")
    with pytest.raises(Conflict, match="No shadow runs"):
        service.promote_shadow(reviewer="ana")
    shadowed(service, tmp_path)
    assert service.stop_shadow(reviewer="bo").name == "fake-shadow" and service.serving.shadow is None
    service.moderate(["I hate mondays"])
    assert service.store.db["shadow_predictions"].count == 0
    assert [(event["action"], event["version"], event["reviewer"]) for event in service.serving_history()] == [
        ("stop shadow", "fake-shadow", "bo"), ("shadow", "fake-shadow", "ana")]


def test_the_models_route_lists_the_serving_model_and_its_shadow(tmp_path):
    with running_in_process(tmp_path) as app:
        shadowed(app.service, tmp_path)
        cards = httpx.get(app.url + "v1/models").json()["data"]
        assert [(card["id"], card["role"]) for card in cards] == [("fake-moderation", "serving"),
                                                                   ("fake-shadow", "shadow")]
        answer = httpx.post(app.url + "v1/moderations", json={"input": "I hate mondays", "model": "fake-shadow"})
        assert answer.status_code == 404, "the shadow never answers"
        assert httpx.post(app.url + "v1/moderations", json={"input": "I hate mondays"}).json()["model"] == \
            "fake-moderation"
