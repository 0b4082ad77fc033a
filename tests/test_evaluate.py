"""Evaluation as a library: figures checked by hand on small cases, gold sets, the engine's batches (on the fake
backend), and comparisons."""

import json
import re

import pytest
from fakes import label_for

from moderation.errors import InvalidInput
from moderation.evaluate import compare, evaluate, gold_from_verdicts, heldout_gold, read_gold
from moderation.evaluate.gold import GoldSet
from moderation.evaluate.metrics import compute_metrics
from moderation.labelled_files import HELDOUT_FILE, POOL_FILE, SEED_FILE, read_labelled
from moderation.labels import LABELS, SEVERITY
from moderation.policy import CARD
from moderation.templates import PromptTemplate

C, POSSIBLY, PROBABLY, CAUTION, INTERVENTION = SEVERITY

# Five texts, checked by hand: gold against predicted, with the top label's probability.
GOLD = [C, C, CAUTION, INTERVENTION, POSSIBLY]
PREDICTED = [C, CAUTION, CAUTION, CAUTION, C]
CONFIDENCE = [0.9, 0.6, 0.8, 0.5, 0.7]


@pytest.fixture
def figures():
    return compute_metrics(GOLD, PREDICTED, CONFIDENCE, CAUTION, CARD)


def bins(figures):
    """The calibration bins as (mean confidence, accuracy, count)."""
    return [(b["confidence"], b["accuracy"], b["count"]) for b in figures["calibration"]]


def test_agreement_and_per_label_figures_by_hand(figures):
    assert figures["n"] == 5
    assert figures["accuracy"] == pytest.approx(2 / 5)
    per_label = figures["per_label"]
    # casual: predicted 2 (1 right), gold 2; needs caution: predicted 3 (1 right), gold 1; the rest never right.
    assert per_label[C] == pytest.approx({"precision": 1 / 2, "recall": 1 / 2, "f1": 1 / 2, "support": 2})
    assert per_label[CAUTION] == pytest.approx({"precision": 1 / 3, "recall": 1.0, "f1": 1 / 2, "support": 1})
    assert per_label[PROBABLY] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert figures["macro_f1"] == pytest.approx((1 / 2 + 1 / 2) / 5), "over the five labels, zero where undefined"


def test_confusion_matrix_has_gold_rows_and_predicted_columns(figures):
    assert figures["confusion"] == {"labels": list(SEVERITY), "matrix": [
        [1, 0, 0, 1, 0],
        [1, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 1, 0],
        [0, 0, 0, 1, 0],
    ]}


def test_decisions_by_hand(figures):
    # flagged: gold F F T T T, predicted F T T T F: 2 right of 3 flagged, 2 found of 3
    assert figures["flagged"] == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3})
    # at needs caution: gold F F T T F, predicted F T T T F
    assert figures["intervene"] == pytest.approx(
        {"threshold": CAUTION, "precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2})
    sweep = {step["threshold"]: step for step in figures["sweep"]}
    assert list(sweep) == [POSSIBLY, PROBABLY, CAUTION, INTERVENTION]
    assert sweep[INTERVENTION] == {"threshold": INTERVENTION, "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert sweep[CAUTION] == figures["intervene"], "the sweep's step at the threshold is the intervene figure"


def test_severity_error_and_calibration_by_hand(figures):
    # severities gold 0 0 3 4 1, predicted 0 3 3 3 0: errors 0 3 0 1 1
    assert figures["mean_severity_error"] == pytest.approx(1.0)
    # one text per bin; right, wrong, right, wrong, wrong
    assert bins(figures) == [pytest.approx((confidence, right, 1)) for confidence, right in
                             ((0.5, 0), (0.6, 0), (0.7, 0), (0.8, 1), (0.9, 1))]
    assert figures["ece"] == pytest.approx((0.5 + 0.6 + 0.7 + 0.2 + 0.1) / 5)


def test_a_bin_holds_its_texts_mean_confidence_and_accuracy():
    figures = compute_metrics([C, C, C, CAUTION], [C, C, CAUTION, CAUTION], [0.92, 0.98, 0.94, 0.35], CAUTION,
                              CARD)
    top_bin = (0.92 + 0.98 + 0.94) / 3
    assert bins(figures) == [pytest.approx((0.35, 1.0, 1)), pytest.approx((top_bin, 2 / 3, 3))]
    assert figures["ece"] == pytest.approx((1 * 0.65 + 3 * (top_bin - 2 / 3)) / 4)


@pytest.mark.parametrize("predicted, kappa", [
    ([C, C, INTERVENTION, INTERVENTION], 1.0),
    # observed weighted disagreement 16 + 16 against 16 + 16 expected by chance
    ([C, INTERVENTION, INTERVENTION, C], 0.0),
    # one text off by 3 (weight 9) against 8 + 0.5 + 16 + 4.5 = 29 expected
    ([C, C, INTERVENTION, POSSIBLY], 1 - 9 / 29),
])
def test_quadratic_kappa_weighs_distance_in_severity(predicted, kappa):
    figures = compute_metrics([C, C, INTERVENTION, INTERVENTION], predicted, [1.0] * 4, CAUTION, CARD)
    assert figures["kappa_quadratic"] == pytest.approx(kappa)


def test_kappa_is_none_where_it_is_undefined():
    assert compute_metrics([C, C], [C, C], [0.9, 0.9], CAUTION, CARD)["kappa_quadratic"] is None


def test_generate_mode_counts_no_label_as_wrong_and_acting_as_casual():
    figures = compute_metrics([C, CAUTION, INTERVENTION, POSSIBLY], [None, None, INTERVENTION, POSSIBLY], None,
                              "never", CARD)
    assert figures["no_label"] == 0.5
    assert figures["accuracy"] == 0.5, "no label is never right, not even for a casual text"
    assert figures["confusion"]["labels"] == [*SEVERITY, "no label"]
    assert [row[-1] for row in figures["confusion"]["matrix"]] == [1, 0, 0, 1, 0, 0]
    assert figures["flagged"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert figures["mean_severity_error"] == pytest.approx(3 / 4), "no label acts as casual: 3 steps off once"
    assert figures["intervene"] == {"threshold": "never", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert "ece" not in figures and "calibration" not in figures


def test_gold_from_verdicts_keeps_the_latest_label_and_lists_conflicts():
    gold = gold_from_verdicts([("I hate\n Mondays ", POSSIBLY), ("see you", C), ("I hate Mondays", PROBABLY),
                               ("see you", C), ("I hate Mondays", POSSIBLY)])
    assert gold.items == (("I hate Mondays", POSSIBLY), ("see you", C))
    (conflict,) = gold.conflicts
    assert (conflict.text, conflict.labels, conflict.kept) == ("I hate Mondays", (POSSIBLY, PROBABLY, POSSIBLY),
                                                                POSSIBLY)


def test_no_accepted_verdicts_is_a_clear_error():
    with pytest.raises(InvalidInput, match="No accepted verdicts yet: accept some in the Review tab"):
        gold_from_verdicts([])


def test_the_gold_hash_changes_with_any_text_or_label():
    one = GoldSet("a", (("hi", C), ("bye", C)))
    assert one.hash == GoldSet("b", (("hi", C), ("bye", C))).hash
    assert len({one.hash, GoldSet("a", (("hi", C), ("bye", POSSIBLY))).hash,
                GoldSet("a", (("bye", C), ("hi", C))).hash}) == 3


@pytest.mark.parametrize("content, message", [
    ('{"text": "fine", "label": "casual"}\n{"text": "bad", "label": "rude"}\n',
     "gold.jsonl: line 2: Unknown label 'rude'"),
    ('{"text": "fine", "label": "casual"}\n\n{"text": "cut\n', "gold.jsonl: line 3: not valid JSON"),
    ("\n  \n", "gold.jsonl holds no labelled texts"),
    ('{"text": "fine", "label": "casual"}\n' + "[" * 100_000 + "]" * 100_000, "gold.jsonl: line 2: JSON nested too "
     "deeply"),
    ("[" * 100_000 + "]" * 100_000, "gold.jsonl: the list: JSON nested too deeply"),
])
def test_a_bad_gold_file_names_the_file_and_line(tmp_path, content, message):
    path = tmp_path / "gold.jsonl"
    path.write_text(content)
    with pytest.raises(InvalidInput, match=message):
        read_gold(path)


@pytest.mark.parametrize("content", [
    '{"api_key": "sk-SECRET-123"}\n',
    '{"text": "Input: sk-SECRET-123"}\n',
    '{"text": "fine", "label": {"token": "sk-SECRET-123"}}\n',
])
def test_an_error_in_a_gold_file_says_what_is_wrong_without_its_content(tmp_path, content):
    path = tmp_path / "keys.json"
    path.write_text(content)
    with pytest.raises(InvalidInput) as refused:
        read_gold(path)
    message = str(refused.value)
    assert message.startswith("keys.json: line 1: ") and str(tmp_path) not in message
    assert "SECRET" not in message and "token" not in message, message


def test_an_unknown_label_is_named_cut_short(tmp_path):
    path = tmp_path / "gold.jsonl"
    path.write_text(json.dumps({"text": "fine", "label": "x" * 10_000}) + "\n")
    with pytest.raises(InvalidInput) as refused:
        read_gold(path)
    assert str(refused.value) == (f"gold.jsonl: line 1: Unknown label '{'x' * 79}: choose one of "
                                  f"{', '.join(LABELS)}.")


def test_the_held_out_set_reads_the_same_in_either_record_shape(tmp_path):
    gold = heldout_gold()
    assert (gold.name, len(gold.items)) == ("held-out set", 129)
    assert set(gold.labels) == set(SEVERITY)
    records = tmp_path / "records.jsonl"
    records.write_text("".join(json.dumps({"text": f"Input: {text}\nOutput: {label}"}) + "\n"
                               for text, label in gold.items))
    assert read_gold(records).hash == gold.hash


def comparable(text: str) -> str:
    """A text as the pool's checks compare it: case and runs of spaces do not count."""
    return " ".join(text.lower().split())


def close_pairs(texts: list[str], others: list[str], limit: float = 0.6) -> list[tuple[str, str]]:
    """The (text, other) pairs whose sets of words overlap by ``limit`` or more (shared words over all words)."""
    words = [set(re.findall(r"\w+", other.lower())) for other in others]
    pairs = []
    for text in texts:
        mine = set(re.findall(r"\w+", text.lower()))
        pairs += [(text, other) for other, theirs in zip(others, words)
                  if len(mine & theirs) >= limit * len(mine | theirs)]
    return pairs


def test_close_pairs_by_hand():
    assert close_pairs(["Women are too emotional to be leaders."], ["women are too emotional to be GOOD leaders"]) \
        == [("Women are too emotional to be leaders.", "women are too emotional to be GOOD leaders")]  # 7 of 8
    assert close_pairs(["my dog learned to sit"], ["the cat learned to sit"]) == []  # 3 of 7


def test_no_training_text_comes_close_to_a_text_it_is_measured_on():
    texts = {path: [text for text, _ in read_labelled(path, CARD)] for path in (SEED_FILE, HELDOUT_FILE, POOL_FILE)}
    for trained, measured in ((SEED_FILE, HELDOUT_FILE), (SEED_FILE, POOL_FILE), (POOL_FILE, HELDOUT_FILE)):
        close = close_pairs(texts[trained], texts[measured])
        assert not close, f"{trained.name} has {len(close)} texts close to {measured.name}'s: {close[:3]}"


def test_the_pool_has_every_label_no_repeated_text_and_none_of_the_seed_or_held_out_texts():
    records = read_labelled(POOL_FILE, CARD)
    pool = [comparable(text) for text, _ in records]
    assert len(set(pool)) == len(pool), "no text twice in the pool"
    assert {label for _, label in records} == set(SEVERITY)
    for other in (SEED_FILE, HELDOUT_FILE):
        shared = set(pool) & {comparable(text) for text, _ in read_labelled(other, CARD)}
        assert not shared, f"the pool shares {len(shared)} texts with {other.name}: {sorted(shared)[:3]}"


def test_a_run_labels_in_the_engines_own_batches_and_tells_progress(service):
    moderator = service.moderator
    gold = heldout_gold()
    told = []
    run = evaluate(moderator, gold, progress=lambda done, total: told.append((done, total)))
    assert told == [(32, 129), (64, 129), (96, 129), (128, 129), (129, 129)]
    assert [size for _, size in moderator.backend.calls] == [32, 32, 32, 32, 1]
    assert [item["label"] for item in run["items"]] == [label_for(text) for text in gold.texts]
    assert [item["gold"] for item in run["items"]] == gold.labels
    expected = compute_metrics(gold.labels, [label_for(text) for text in gold.texts], [0.6] * 129, CAUTION, CARD)
    assert run["metrics"]["ece"] == pytest.approx(expected.pop("ece"))
    assert bins(run["metrics"]) == [pytest.approx(expected_bin) for expected_bin in bins(expected)]
    del expected["calibration"]
    assert {key: value for key, value in run["metrics"].items() if key not in ("ece", "calibration")} == expected
    assert (run["gold_size"], run["gold_hash"], run["template"]) == (129, gold.hash, PromptTemplate().id)


def flip_run(run_id, labels, gold=(C, C, CAUTION, CAUTION), texts=("a", "b", "c", "d")):
    items = [{"text": t, "gold": g, "label": label, "scores": {}, "generated": None}
             for t, g, label in zip(texts, gold, labels)]
    return {"id": run_id, "created": "2026-11-30T10:00", "model": "m", "template": "t", "threshold": CAUTION,
            "mode": "score", "gold_name": "g", "gold_hash": "h" + "".join(gold), "gold_size": len(items),
            "metrics": compute_metrics(list(gold), list(labels), [0.9] * len(items), CAUTION, CARD),
            "items": items}


def test_compare_lists_exactly_the_flips_with_what_each_did():
    comparison = compare(flip_run(1, [C, CAUTION, C, POSSIBLY]), flip_run(2, [CAUTION, C, C, CAUTION]))
    assert comparison["flipped"] == [
        {"text": "a", "gold": C, "a": C, "b": CAUTION, "outcome": "broken"},
        {"text": "b", "gold": C, "a": CAUTION, "b": C, "outcome": "fixed"},
        {"text": "d", "gold": CAUTION, "a": POSSIBLY, "b": CAUTION, "outcome": "fixed"},
    ]
    assert (comparison["fixed"], comparison["broken"], comparison["same_gold"]) == (2, 1, True)
    assert comparison["metrics"]["accuracy"] == pytest.approx({"a": 0.25, "b": 0.5, "delta": 0.25})
    assert comparison["metrics"]["per_label.casual.support"] == {"a": 2, "b": 2, "delta": 0}
    assert "confusion.matrix" not in comparison["metrics"] and "intervene.threshold" not in comparison["metrics"]
    assert (comparison["a"]["id"], comparison["b"]["id"]) == (1, 2)


def test_compare_pairs_repeated_texts_in_order_and_marks_flips_that_stay_wrong():
    texts = ("same", "same", "other", "other")
    comparison = compare(flip_run(1, [C, C, POSSIBLY, C], texts=texts),
                         flip_run(2, [C, PROBABLY, POSSIBLY, C], texts=texts))
    assert comparison["flipped"] == [{"text": "same", "gold": C, "a": C, "b": PROBABLY, "outcome": "broken"}]
    other_gold = compare(flip_run(1, [C, C, C, C]), flip_run(2, [C, C, C, PROBABLY], gold=(C, C, CAUTION, POSSIBLY)))
    assert other_gold["same_gold"] is False
    assert other_gold["flipped"] == [{"text": "d", "gold": POSSIBLY, "a": C, "b": PROBABLY, "outcome": "still wrong"}]
