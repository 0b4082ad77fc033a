"""Curation through the REST API (FastAPI's TestClient over the app, on the fake backend): many verdicts accepted,
discarded or relabelled in one request and one batch, the batch undone, and the refusals, each with the status the
OpenAPI document names; reviewers only when logins are on."""

import pytest
from fastapi.testclient import TestClient
from servers import make_service

from feedback.reviewers import Reviewers, add_reviewer
from playground.server import create_app

PASSWORD = "correct horse battery"
TEXTS = ["I hate mondays", "I hate tuesdays", "What a lovely day"]


def judged(service, *texts):
    """Each text moderated on the page's path and judged: its verdict rows."""
    return [service.confirm(shown.id, reviewer="ana") for shown in service.moderate(list(texts))]


@pytest.fixture
def http(service):
    judged(service, *TEXTS)
    return TestClient(create_app(service))


def states(service) -> dict[str, tuple[str, str]]:
    return {row["text"]: (row["status"], row["label"]) for row in service.verdicts()}


def test_a_filtered_set_is_accepted_in_one_batch_and_undone(http, service):
    before = states(service)
    done = http.post("/v1/feedback/verdicts/bulk", json={"status": "accepted", "filters": {"search": "hate"}})
    assert done.status_code == 200, done.text
    assert done.json() == {"batch": 1, "changed": [1, 2], "unchanged": [], "updated": done.json()["updated"]}
    assert states(service) == {**before, "I hate mondays": ("accepted", "possibly needs caution"),
                               "I hate tuesdays": ("accepted", "possibly needs caution")}
    assert service.store.db["batches"].get(1)["curator"] == "anonymous"

    undone = http.post("/v1/feedback/batches/1/undo")
    assert undone.json() == {"batch": 1, "restored": [1, 2]} and states(service) == before
    again = http.post("/v1/feedback/batches/1/undo")
    assert again.status_code == 409 and "Batch #1 was undone already" in again.json()["error"]["message"]


def test_listed_verdicts_are_relabelled_unless_one_changed_since_it_was_shown(http, service):
    shown = {row["id"]: row["updated"] for row in service.verdicts()}
    service.set_status(1, "discarded", shown=shown[1], curator="bo")
    before = states(service)
    refused = http.post("/v1/feedback/verdicts/bulk", json={
        "label": "needs caution", "verdicts": [{"id": id, "updated": updated} for id, updated in shown.items()]})
    assert refused.status_code == 409
    assert refused.json()["error"]["message"].startswith(
        '1 of the 3 verdicts changed since they were shown: verdict #1 ("I hate mondays"): bo set it to discarded '
        "(batch #1) at ")
    assert states(service) == before
    done = http.post("/v1/feedback/verdicts/bulk", json={"label": "needs caution", "verdicts": [{"id": 1}, {"id": 3}]})
    assert done.json()["changed"] == [1, 3]
    assert states(service)["What a lovely day"] == ("pending", "needs caution")
    assert service.verdict(3)["verdict"] == "wrong" and service.verdict(1)["status"] == "discarded"


@pytest.mark.parametrize("body, status, message", [
    ({"verdicts": [{"id": 1}]}, 400, "give a status or a label to set"),
    ({"status": "accepted", "verdicts": [{"id": 1}], "filters": {}}, 400, "give either verdicts or filters"),
    ({"status": "accepted"}, 400, "give either verdicts or filters"),
    ({"status": None, "label": "casual", "filters": {}}, 400, "Invalid request: status"),
    ({"status": "done", "filters": {}}, 400, "Invalid request: status"),
    ({"status": "accepted", "verdicts": []}, 400, "Invalid request: verdicts"),
    ({"status": "accepted", "verdicts": [{"id": 0}]}, 400, "Invalid request: verdicts[0].id"),
    ({"status": "accepted", "verdicts": [{"id": 1}, {"id": 99}]}, 404, "No verdict 99"),
    ({"status": "accepted", "verdicts": [{"id": 99, "updated": "2026-01-01"}]}, 409,
     "Verdict #99 changed since it was shown: it is gone"),
    ({"status": "accepted", "verdicts": [{"id": "1"}]}, 400, "give a number, not text"),
])
def test_a_bad_bulk_change_is_refused_and_changes_nothing(http, service, body, status, message):
    before = states(service)
    answer = http.post("/v1/feedback/verdicts/bulk", json=body)
    assert answer.status_code == status and message in answer.json()["error"]["message"], answer.text
    assert states(service) == before and service.store.db["batches"].count == 0


def test_undo_of_an_unknown_batch_is_404(http):
    answer = http.post("/v1/feedback/batches/7/undo")
    assert answer.status_code == 404 and answer.json()["error"]["message"].startswith("No batch 7")
    assert http.post("/v1/feedback/batches/0/undo").status_code == 400


def test_with_logins_only_a_reviewer_curates_and_the_batch_names_them(tmp_path):
    add_reviewer(tmp_path / "reviewers.txt", "cy", PASSWORD)
    service = make_service(tmp_path)
    judged(service, *TEXTS)
    http = TestClient(create_app(service, reviewers=Reviewers(tmp_path / "reviewers.txt")))
    body = {"status": "discarded", "filters": {"search": "lovely"}}
    for path, sent in (("/v1/feedback/verdicts/bulk", body), ("/v1/feedback/batches/1/undo", None)):
        assert http.post(path, json=sent).status_code == 401
    assert http.post("/v1/feedback/verdicts/bulk", json=body, auth=("cy", PASSWORD)).json()["changed"] == [3]
    assert service.store.db["batches"].get(1)["curator"] == "cy"
    assert http.post("/v1/feedback/batches/1/undo", auth=("cy", PASSWORD)).json()["restored"] == [3]
    assert service.store.db["batches"].get(1)["undone_by"] == "cy"
    service.close()
