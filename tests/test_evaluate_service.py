"""Evaluation through the service, on the fake backend: gold sets from accepted verdicts, runs stored whole or not
at all, a draft measured against the default, and the refusals."""

import pytest
from fakes import expected_scores, label_for

from moderation.errors import InvalidInput
from moderation.evaluate import evaluate, heldout_gold
from moderation.evaluate.gold import GoldSet
from moderation.labels import SEVERITY
from moderation.policy import CARD
from moderation.settings import Settings
from moderation.templates import PromptTemplate

C, POSSIBLY, PROBABLY, CAUTION, INTERVENTION = SEVERITY


def test_the_service_stores_a_run_with_every_item(service):
    run = service.evaluate(service.gold_set("held-out set"))
    stored = service.store.evaluations.get(run["id"])
    assert stored == run
    (text, gold), item = heldout_gold().items[0], stored["items"][0]
    assert (item["text"], item["gold"], item["label"], item["generated"]) == (text, gold, label_for(text), None)
    assert item["scores"] == pytest.approx(expected_scores(text))
    assert (stored["model"], stored["mode"], stored["threshold"], stored["gold_size"]) == (
        "fake-moderation", "score", CAUTION, 129)
    assert service.store.db["evaluation_items"].count == 129
    assert [row["id"] for row in service.runs()] == [run["id"]]


def test_accepted_verdicts_make_the_gold_set_and_the_latest_accepted_label_wins(service):
    first, second, nice, rain = service.moderate(["You idiot", "You idiot", "nice day", "I hate rain"])
    corrected = service.flag(first.id, C, reviewer="ana")
    confirmed = service.confirm(second.id, reviewer="bo")
    casual = service.confirm(nice.id, reviewer="ana")
    service.flag(rain.id, CAUTION, reviewer="ana")  # pending: not gold
    discarded = service.flag(nice.id, CAUTION, reviewer="cy")
    service.set_status(discarded["id"], "discarded")
    for verdict in (confirmed, corrected, casual):
        service.set_status(verdict["id"], "accepted")
    gold = service.gold_set("accepted verdicts")
    assert gold.items == (("You idiot", C), ("nice day", C))
    assert [(c.text, c.labels, c.kept) for c in gold.conflicts] == [("You idiot", (PROBABLY, C), C)]
    service.relabel(confirmed["id"], POSSIBLY)
    gold = service.gold_set("accepted verdicts")
    assert gold.items == (("You idiot", POSSIBLY), ("nice day", C)), "a relabelled verdict is the latest"
    assert gold.conflicts[0].labels == (C, POSSIBLY)


def test_a_curators_final_label_settles_a_conflict_in_the_gold_set(service):
    first, second = service.moderate(["You idiot", "You idiot"])
    for verdict in (service.flag(first.id, C, reviewer="ana"), service.confirm(second.id, reviewer="bo")):
        service.set_status(verdict["id"], "accepted")
    assert service.gold_set("accepted verdicts").conflicts
    service.settle("You idiot", POSSIBLY, curator="cy")
    gold = service.gold_set("accepted verdicts")
    assert gold.items == (("You idiot", POSSIBLY),) and gold.conflicts == ()


def test_accepted_texts_that_only_differ_in_line_breaks_are_one_text_with_a_conflict(service):
    one, two = service.moderate(["hate it", "hate\n it"])
    assert one.result.text == two.result.text == "hate it"
    for shown, label in ((one, POSSIBLY), (two, PROBABLY)):
        verdict = service.confirm(shown.id, reviewer="ana") if label == POSSIBLY else service.flag(
            shown.id, label, reviewer="ana")
        service.set_status(verdict["id"], "accepted")
    gold = service.gold_set("accepted verdicts")
    assert gold.items == (("hate it", PROBABLY),)
    assert [(c.labels, c.kept) for c in gold.conflicts] == [((POSSIBLY, PROBABLY), PROBABLY)]


def test_a_draft_against_the_default_says_what_it_fixes_and_breaks(service):
    draft = Settings(PromptTemplate(CARD.with_examples(CARD.examples[:1])), INTERVENTION)
    comparison = service.try_settings(draft, service.gold_set("held-out set"))
    assert comparison["a"]["template"] == PromptTemplate().id and comparison["b"]["template"] == draft.template.id
    assert comparison["b"]["threshold"] == INTERVENTION and comparison["same_gold"]
    assert comparison["flipped"] == [], "the fake's labels do not depend on the prompt"
    assert comparison["metrics"]["intervene.support"] == {"a": 50, "b": 24, "delta": -26}
    assert len(service.runs()) == 2 and service.store.db["templates"].get(draft.template.id)


@pytest.mark.parametrize("source, path, message", [
    ("accepted verdicts", None, "No accepted verdicts yet"),
    ("a file", None, "Upload a gold file first"),
    ("somewhere", None, "Unknown gold set 'somewhere'"),
])
def test_gold_sources_that_give_nothing_are_refused(service, source, path, message):
    with pytest.raises(InvalidInput, match=message):
        service.gold_set(source, path)


def test_a_failed_run_writes_nothing(service, tmp_path):
    service.moderator.backend.bug = RuntimeError("the model broke")
    with pytest.raises(RuntimeError):
        service.evaluate(heldout_gold())
    assert service.store.db["evaluation_runs"].count == 0 and service.store.db["evaluation_items"].count == 0


def test_a_run_whose_items_are_not_labelled_is_refused_whole(service):
    run = evaluate(service.moderator, GoldSet("g", (("hi", C), ("bye", C))))
    run["items"][1]["label"] = "rude"
    with pytest.raises(InvalidInput, match="Unknown label 'rude'"):
        service.store.evaluations.save(run)
    assert service.store.db["evaluation_runs"].count == 0 and service.store.db["evaluation_items"].count == 0


def test_comparing_an_unknown_run_lists_the_recent_ones(service):
    with pytest.raises(InvalidInput, match="No evaluation run 3: there are no runs yet; evaluate first."):
        service.compare(3, 4)
    run = service.evaluate(heldout_gold())
    with pytest.raises(InvalidInput) as refused:
        service.compare(run["id"], 7)
    assert str(refused.value).startswith("No evaluation run 7. The latest runs:\n#1 ")
    assert "fake-moderation, template 1a1b5b81a154, threshold needs caution, score on held-out set (129 texts)" in str(
        refused.value)
    with pytest.raises(InvalidInput, match="run ids are whole numbers"):
        service.compare(1.5, 1)
