"""The service beneath the page and the API, on the fake backend: moderation and recording, chat turns,
settings (drafts, the default, atomic changes), verdicts and curation, export."""

import json
import threading

import pytest
from fakes import OTHER, WINNER, expected_scores, fake_moderator
from servers import make_service

from feedback.splits import TEST_SHARE, split_for
from moderation.errors import InvalidInput
from moderation.labels import LABELS
from moderation.policy import CARD
from moderation.settings import DEFAULT_INTERVENTION, Settings
from moderation.templates import PromptTemplate
from playground.service import Limits

TWO_EXAMPLES = [{"text": "Have a lovely day", "label": "casual"},
                {"text": "Get lost, nobody wants you here", "label": "probably needs caution"}]


def test_moderation_is_labelled_and_recorded(service):
    (shown,) = service.moderate(["You idiot,\n  stop it"])
    result = shown.result
    assert result.text == "You idiot, stop it"
    assert result.scores == pytest.approx(expected_scores("idiot"))
    assert (result.label, result.flagged, result.intervene) == ("probably needs caution", True, False)
    assert result.prompt == PromptTemplate().assemble("You idiot, stop it")
    row = service.store.db["predictions"].get(shown.id)
    assert (row["text"], row["label"], row["prompt"], row["template"]) == (
        result.text, result.label, result.prompt, PromptTemplate().id)
    assert json.loads(row["scores"]) == pytest.approx(result.scores)
    assert service.store.db["templates"].get(PromptTemplate().id)


def test_unrecorded_moderation_writes_nothing(service):
    (shown,) = service.moderate(["fine"], record=False)
    assert shown.id is None and service.store.db["predictions"].count == 0


def test_generate_mode_records_what_it_generated(service):
    first, second = service.moderate(["I will hurt them", "gibberish here"], mode="generate")
    assert (first.result.label, first.result.generated, first.result.scores) == (
        "needs intervention", " needs intervention", {})
    assert (second.result.label, second.result.flagged) == (None, False)
    rows = [service.store.db["predictions"].get(item.id) for item in (first, second)]
    assert [(row["mode"], row["label"], row["generated"]) for row in rows] == [
        ("generate", "needs intervention", " needs intervention"), ("generate", None, " blah blah")]


@pytest.mark.parametrize(
    "texts, fields, message, param",
    [
        (["fine", "  \n "], ["input[0]", "input[1]"], "input[1]: The text is empty", "input[1]"),
        (["x" * 20_001], ["input"], "input has 20001 characters; the limit is 20000.", "input"),
        ([None], ["Text"], "Text: Text must be a string", "Text"),
        ([], ["input"], "at least one text", "input"),
        (["hi"] * 65, [f"input[{n}]" for n in range(65)], "65 texts; send at most 64", "input"),
    ],
)
def test_bad_texts_are_refused_at_the_edge_and_nothing_is_recorded(service, texts, fields, message, param):
    with pytest.raises(InvalidInput) as refused:
        service.moderate(texts, fields=fields)
    assert message in str(refused.value)
    assert refused.value.param == param
    assert service.store.db["predictions"].count == 0 and not service.moderator.backend.calls


def test_a_text_is_normalised_once(service, monkeypatch):
    import moderation.prompt

    calls = []
    original = moderation.prompt._LINE_BREAKS.sub
    monkeypatch.setattr(moderation.prompt, "_LINE_BREAKS", type("Counting", (), {
        "sub": staticmethod(lambda *args: calls.append(args) or original(*args))}))
    service.moderate(["one\ntwo", "three"])
    assert len(calls) == 2


def test_chat_turn_replaces_the_reply_exactly_when_a_side_intervenes(tmp_path):
    turns = [("How do I bake bread?", "Mix flour and water."), ("I'm going to kill my neighbour", "Sounds fun."),
             ("Tell me a joke", "You idiot."), ("You idiot", "I will hurt you")]
    for threshold, expected in [("casual", [["user", "bot"]] * 4),
                                ("probably needs caution", [[], ["user"], ["bot"], ["user", "bot"]]),
                                ("needs intervention", [[], ["user"], [], ["bot"]]),
                                ("never", [[]] * 4)]:
        service = make_service(tmp_path / threshold, settings=Settings(threshold=threshold, intervention="[removed]"))
        for (user, bot), triggered in zip(turns, expected):
            turn, user_shown, bot_shown = service.check_turn(user, bot)
            assert turn.triggered_by == triggered and turn.intervened == bool(triggered)
            assert turn.reply == ("[removed]" if triggered else bot)
            rows = [service.store.db["predictions"].get(shown.id) for shown in (user_shown, bot_shown)]
            assert [row["role"] for row in rows] == ["user", "bot"]
        service.store.close()


def test_chat_errors_name_their_side(service):
    with pytest.raises(InvalidInput, match="bot: The text is empty") as refused:
        service.check_turn("hello", " ")
    assert refused.value.param == "bot"


def test_a_draft_is_used_where_it_is_passed_and_the_default_elsewhere(service):
    draft = service.draft(TWO_EXAMPLES, "never")
    assert service.store.db["templates"].get(draft.template.id), "a draft's template is saved before it is used"
    assert service.settings == Settings()
    (with_draft,) = service.moderate(["I will hurt you"], settings=draft)
    (default,) = service.moderate(["I will hurt you"])
    assert with_draft.result.prompt == draft.template.assemble("I will hurt you")
    assert (with_draft.result.template, with_draft.result.intervene) == (draft.template.id, False)
    assert (default.result.template, default.result.intervene) == (PromptTemplate().id, True)


def test_publish_makes_settings_the_default(service):
    published = service.publish(service.draft(TWO_EXAMPLES, "casual"))
    assert service.settings is published and published.intervention == DEFAULT_INTERVENTION
    (shown,) = service.moderate(["See you tomorrow"])
    assert shown.result.template == published.template.id and shown.result.intervene


@pytest.mark.parametrize(
    "examples, threshold, message",
    [
        ([{"text": "hi", "label": "fine"}], "never", "Unknown label 'fine'"),
        ([], "never", "No examples"),
        (TWO_EXAMPLES, "sometimes", "Unknown intervention threshold"),
        ([{"text": "word " * 600, "label": "casual"}], "never", "leaving no room for the text"),
    ],
)
def test_bad_drafts_are_refused_and_save_nothing(service, examples, threshold, message):
    before = service.store.db["templates"].count
    with pytest.raises(InvalidInput, match=message):
        service.publish(service.draft(examples, threshold))
    assert service.store.db["templates"].count == before and service.settings == Settings()


def test_texts_of_two_templates_never_share_a_forward_pass(service):
    draft = service.draft(TWO_EXAMPLES, "never")
    barrier = threading.Barrier(8)
    shown = [None] * 8

    def moderate(number):
        barrier.wait()
        shown[number] = service.moderate([f"text {number}"], settings=draft if number % 2 else None)[0]

    threads = [threading.Thread(target=moderate, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    templates = {PromptTemplate().prefix, draft.template.prefix}
    assert {prefix for prefix, _ in service.moderator.backend.calls} == templates
    for number, item in enumerate(shown):
        expected = draft.template if number % 2 else PromptTemplate()
        assert item.result.prompt == expected.assemble(f"text {number}")


def test_publishing_while_moderating_never_names_an_unsaved_template(service):
    """The race: moderations in flight while the default changes each record a template that is stored."""
    stop = threading.Event()
    errors, ids = [], []

    def moderate():
        while not stop.is_set():
            try:
                ids.extend(item.id for item in service.moderate(["a text", "another"]))
            except Exception as error:  # noqa: BLE001 - counted below
                errors.append(error)

    threads = [threading.Thread(target=moderate) for _ in range(8)]
    for thread in threads:
        thread.start()
    published = [service.publish(service.draft([{"text": f"example {n}", "label": "casual"}], "never"))
                 for n in range(30)]
    stop.set()
    for thread in threads:
        thread.join()
    assert errors == []
    stored = {row["id"] for row in service.store.db["templates"].rows}
    used = {row["template"] for row in service.store.db.query(
        f"select template from predictions where id in ({','.join(map(str, ids))})")}
    assert used <= stored and len(used) > 1
    (last,) = service.moderate(["after"])
    assert last.result.template == published[-1].template.id


def test_verdicts_and_curation(service):
    (shown,) = service.moderate(["I hate mondays"])
    flagged = service.flag(shown.id, "casual", note="just a mood", reviewer=" ana ")
    assert (flagged["verdict"], flagged["label"], flagged["reviewer"], flagged["status"]) == (
        "wrong", "casual", "ana", "pending")
    right = service.confirm(float(shown.id), reviewer="bo")
    assert (right["verdict"], right["label"]) == ("right", "possibly needs caution")
    assert [row["id"] for row in service.verdicts(disagree=True)] == [flagged["id"]]
    assert service.set_status(flagged["id"], "accepted")["status"] == "accepted"
    assert service.relabel(2.0, "needs caution")["verdict"] == "wrong"
    path, count = service.export(status="accepted")
    assert count == 1 and path.read_text() == json.dumps({"text": "Input: I hate mondays\nOutput: casual",
                                                          "split": split_for("I hate mondays", TEST_SHARE),
                                                          "policy": {"name": "prosocial", "id": CARD.id}}) + "\n"
    assert oct(path.stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda s, p: s.flag(p, None, reviewer="ana"), "Choose the correct label"),
        (lambda s, p: s.confirm(None, reviewer="ana"), "Moderate a text first"),
        (lambda s, p: s.confirm(p + 0.7, reviewer="ana"), "whole numbers"),
        (lambda s, p: s.confirm("1", reviewer="ana"), "whole numbers"),
        (lambda s, p: s.confirm(float("nan"), reviewer="ana"), "whole numbers"),
        (lambda s, p: s.set_status(1.7, "accepted"), "whole numbers"),
        (lambda s, p: s.relabel(None, "casual"), "Select a verdict"),
        (lambda s, p: s.relabel(1, ""), "Choose the new label"),
        (lambda s, p: s.export(format="csv"), "Unknown format"),
    ],
)
def test_refused_verdicts_write_nothing(service, call, message):
    (shown,) = service.moderate(["a text"])
    service.confirm(shown.id, reviewer="ana")
    before = service.store.db["verdicts"].count
    with pytest.raises(InvalidInput, match=message):
        call(service, shown.id)
    assert service.store.db["verdicts"].count == before
    assert [row["status"] for row in service.store.db["verdicts"].rows] == ["pending"]
    assert not list(service.scratch.exports.iterdir())


def test_the_fake_backends_probabilities_are_its_own():
    (result,) = fake_moderator().moderate(["neutral"])
    assert result.scores == pytest.approx({label: WINNER if label == "casual" else OTHER for label in LABELS})


def test_limits_are_the_services_own(tmp_path):
    service = make_service(tmp_path, limits=Limits(max_inputs=2, max_chars=5))
    with pytest.raises(InvalidInput, match="limit is 5"):
        service.moderate(["123456"])
    with pytest.raises(InvalidInput, match="at most 2"):
        service.moderate(["a", "b", "c"])
    assert [item.result.text for item in service.moderate(["12345", "b"])] == ["12345", "b"]
    service.store.close()


def test_examples_of_the_card_are_the_default():
    assert Settings().template.examples == CARD.examples
