"""The store follows each prediction's policy (its template's): a verdict's label must be one of it, a refusal names
its labels and writes nothing, and exported lines name the policy."""

import json

import pytest

from feedback.export import export_lines
from feedback.stats import summary
from feedback.store import FeedbackStore
from moderation.policy import POLICIES, read_policy
from moderation.templates import PromptTemplate

COMMUNITY = read_policy(POLICIES / "community.toml")
TEMPLATE = PromptTemplate(COMMUNITY)
SCORES = {"ok": 0.1, "spam": 0.6, "harassment": 0.1, "hate": 0.1, "threat": 0.1}


@pytest.fixture
def store(tmp_path):
    with FeedbackStore(tmp_path / "feedback.db") as store:
        store.save_template(TEMPLATE.id, TEMPLATE.to_json())
        yield store


def predict(store, text="buy cheap followers now", label="spam", template=TEMPLATE, scores=SCORES):
    return store.save_prediction(text=text, label=label, scores=scores, prompt=f"Input: {text}\nOutput:",
                                 model="demo", template=template.id if template else None)


def counts(store):
    return {name: list(store.db.query(f"select * from {name}")) for name in ("verdicts", "final_labels", "batches")}


REFUSALS = {
    "flag": lambda s, p, v: s.add_verdict(p, verdict="wrong", label="needs caution", reviewer="bo"),
    "relabel": lambda s, p, v: s.curation.relabel(v, "casual"),
    "bulk relabel": lambda s, p, v: s.curation.change({v: None}, status="accepted", label="needs intervention"),
    "final label": lambda s, p, v: s.curation.set_final_label("buy cheap followers now", "casual", "cy"),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_a_card_label_on_a_community_prediction_is_refused_naming_the_policys_labels(store, case):
    prediction = predict(store)
    verdict = store.add_verdict(prediction, verdict="right", reviewer="ann")
    before = counts(store)
    with pytest.raises(ValueError, match=r"policy 'community': Unknown label '[a-z ]+': choose one of ok, spam, "
                                         r"harassment, hate, threat\."):
        REFUSALS[case](store, prediction, verdict["id"])
    assert counts(store) == before


def test_community_labels_are_taken_and_exported_with_their_policy(store):
    prediction = predict(store)
    verdict = store.add_verdict(prediction, verdict="wrong", label="harassment", reviewer="ann")
    store.curation.relabel(verdict["id"], "threat")
    store.curation.set_final_label("buy cheap followers now", "hate", "cy")
    card = predict(store, text="I hate my job", label="casual", template=None,
                   scores={label: 0.2 for label in PromptTemplate().policy.labels})
    store.add_verdict(card, verdict="wrong", label="needs caution", reviewer="ann")
    oig = [json.loads(line) for line in export_lines(store, format="oig")]
    assert [(line["text"].rsplit("Output: ", 1)[1], line["policy"]) for line in oig] == [
        ("hate", {"name": "community", "id": COMMUNITY.id}),
        ("needs caution", {"name": "prosocial", "id": PromptTemplate().policy.id})]
    full = [json.loads(line) for line in export_lines(store, format="full")]
    assert [(line["label"], line["policy"]["name"]) for line in full] == [("threat", "community"),
                                                                           ("needs caution", "prosocial")]


def test_a_text_judged_in_two_policies_gets_no_final_label_until_one_policys_verdicts_are_discarded(store):
    community = store.add_verdict(predict(store, text="you idiot"), verdict="wrong", label="harassment",
                                  reviewer="ann")
    predict_card = predict(store, text="you idiot", label="casual", template=None,
                           scores={label: 0.2 for label in PromptTemplate().policy.labels})
    store.add_verdict(predict_card, verdict="wrong", label="probably needs caution", reviewer="bo")
    with pytest.raises(ValueError, match="judged in 2 policies: 'community' .*; 'prosocial' .*discard the verdicts"):
        store.curation.set_final_label("you idiot", "harassment", "cy")
    assert counts(store)["final_labels"] == []
    store.curation.set_status(community["id"], "discarded")
    assert store.curation.set_final_label("you idiot", "needs caution", "cy")["label"] == "needs caution"


def test_the_figures_count_the_published_policys_labels_and_any_other_held(store):
    store.add_verdict(predict(store), verdict="wrong", label="threat", reviewer="ann")
    figures = summary(store, COMMUNITY)
    assert figures["labels"] == ["ok", "spam", "harassment", "hate", "threat"]
    assert figures["confusion"]["spam"]["threat"] == 1
    assert figures["predictions_by_label"] == {"ok": 0, "spam": 1, "harassment": 0, "hate": 0, "threat": 0}
    card_figures = summary(store)
    assert card_figures["labels"][:5] == list(PromptTemplate().policy.labels)
    assert card_figures["labels"][5:] == ["spam", "threat"]
