"""REST under a published policy other than the card's (the community one): the categories are its labels, the
openai client parses the answer, /v1/models names the policy, and a bulk relabel checks each verdict's policy."""

import math

import openai
import pytest
from fakes import expected_scores
from fastapi.testclient import TestClient
from servers import make_service

from moderation.policy import CARD, POLICIES, read_policy
from moderation.settings import Settings
from moderation.templates import PromptTemplate
from playground.server import create_app

COMMUNITY = read_policy(POLICIES / "community.toml")


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    service = make_service(tmp_path_factory.mktemp("policy-api"))
    service.moderate(["I hate mondays"], settings=Settings())  # a prediction in the card's policy first
    service.publish(Settings(PromptTemplate(COMMUNITY)))
    yield service
    service.close()


@pytest.fixture(scope="module")
def http(service):
    return TestClient(create_app(service))


def test_the_categories_are_the_published_policys_labels_and_the_openai_client_parses_them(http, service):
    client = openai.OpenAI(base_url="http://testserver/v1", api_key="not-needed", max_retries=0, http_client=http)
    texts = ["buy cheap followers now, this is spam", "see you at the meetup", "that is a threat"]
    response = client.moderations.create(input=texts)
    for result, text, label in zip(response.results, texts, ["spam", "ok", "threat"], strict=True):
        scores = result.category_scores.to_dict()
        assert scores == pytest.approx(expected_scores(text, COMMUNITY.listed))
        assert math.isclose(sum(scores.values()), 1, abs_tol=1e-6)
        assert result.categories.to_dict() == {name: name == label for name in COMMUNITY.listed}
        assert result.model_extra["label"] == label and result.flagged == (label != "ok")
        assert result.model_extra["intervene"] == (label == "threat")


def test_the_models_name_the_policy_they_label_in(http):
    (serving,) = http.get("/v1/models").json()["data"]
    assert serving["role"] == "serving"
    assert serving["policy"] == {"name": "community", "id": COMMUNITY.id, "labels": list(COMMUNITY.labels)}


def test_a_bulk_relabel_checks_each_verdicts_own_policy(http, service):
    card_prediction = service.store.db.execute("select id from predictions where template = ?",
                                               [PromptTemplate(CARD).id]).fetchone()[0]
    (community,) = service.moderate(["you are spam"])
    card = service.confirm(card_prediction, reviewer="ann")
    mine = service.flag(community.id, "harassment", reviewer="ann")
    refused = http.post("/v1/feedback/verdicts/bulk", json={"label": "hate", "verdicts": [{"id": card["id"]},
                                                                                           {"id": mine["id"]}]})
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["message"] == (
        f"The verdict #{card['id']} (\"I hate mondays\") is in the policy 'prosocial': Unknown label 'hate': choose "
        "one of casual, needs caution, needs intervention, possibly needs caution, probably needs caution.")
    assert service.verdict(mine["id"])["label"] == "harassment", "nothing changed"
    done = http.post("/v1/feedback/verdicts/bulk", json={"label": "hate", "verdicts": [{"id": mine["id"]}]})
    assert done.status_code == 200 and service.verdict(mine["id"])["label"] == "hate"
