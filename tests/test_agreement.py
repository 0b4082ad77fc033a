"""Agreement between reviewers, checked by hand and against published figures, and the other figures of
``python -m feedback stats`` (the Dashboard's and ``GET /v1/feedback/stats``'s too)."""

import json

import pytest

from feedback.__main__ import main as feedback_main
from feedback.stats import summary
from feedback.store import FeedbackStore
from moderation.labels import LABELS, SEVERITY

SCORES = {label: 0.2 for label in LABELS}


@pytest.fixture
def store(tmp_path):
    with FeedbackStore(tmp_path / "feedback.db") as store:
        yield store


def judge(store, items: list[dict], model_label="casual") -> list[int]:
    """One prediction per item, each judged by the reviewers it names: ``{reviewer: label}`` (None: not judged)."""
    ids = []
    for number, labels in enumerate(items):
        prediction = store.save_prediction(text=f"text {number}", label=model_label, scores=SCORES, prompt="p",
                                             model="m")
        for reviewer, label in labels.items():
            if label is not None:
                store.add_verdict(prediction, verdict="right" if label == model_label else "wrong",
                                  label=None if label == model_label else label, reviewer=reviewer)
        ids.append(prediction)
    return ids


def test_cohens_kappa_by_hand(store):
    """50 items, two reviewers: 20 both casual, 5 and 10 split, 15 both needs caution. Observed agreement 0.7,
    chance 0.5 x 0.6 + 0.5 x 0.4 = 0.5, so kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4."""
    split = [("casual", "casual")] * 20 + [("casual", "needs caution")] * 5 + [("needs caution", "casual")] * 10
    split += [("needs caution", "needs caution")] * 15
    judge(store, [{"ana": a, "bo": b} for a, b in split])
    agreement = summary(store)["agreement"]
    assert agreement["pairs"] == [{"a": "ana", "b": "bo", "n": 50, "cohen_kappa": pytest.approx(0.4)}]


def test_krippendorffs_alpha_matches_the_published_example(store):
    """Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": 4 coders, 12 units, values 1-5
    (here the five labels in severity order); the ordinal alpha is 0.815."""
    coders = {
        "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
        "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
        "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
        "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
    }
    judge(store, [{coder: SEVERITY[values[unit] - 1] if values[unit] else None for coder, values in coders.items()}
                  for unit in range(12)])
    agreement = summary(store)["agreement"]
    assert agreement["krippendorff_alpha"] == pytest.approx(0.815, abs=5e-4)
    assert agreement["items"] == 11, "the unit only one coder judged is left out"
    assert [(pair["a"], pair["b"], pair["n"]) for pair in agreement["pairs"]] == [
        ("A", "B", 9), ("A", "C", 8), ("A", "D", 9), ("B", "C", 9), ("B", "D", 10), ("C", "D", 10)]


def test_one_label_throughout_leaves_agreement_undefined(store):
    judge(store, [{"ana": "casual", "bo": "casual"}, {"ana": "casual"}])
    agreement = summary(store)["agreement"]
    assert agreement == {"pairs": [{"a": "ana", "b": "bo", "n": 1, "cohen_kappa": None}],
                         "krippendorff_alpha": None, "items": 1}


def test_the_other_figures(store):
    ids = judge(store, [{"ana": "casual", "bo": "needs caution"}, {"ana": "needs intervention"}, {}, {}])
    store.db.execute("update verdicts set created = '2026-03-01T10:00:00.000000+00:00' where reviewer = 'bo'")
    stats = summary(store)
    assert stats["label_mix"] == {"model": {**dict.fromkeys(LABELS, 0), "casual": 2},
                                  "reviewers": {**dict.fromkeys(LABELS, 0), "casual": 1, "needs caution": 1,
                                                "needs intervention": 1}}
    assert stats["confusion"]["casual"] == {**dict.fromkeys(LABELS, 0), "casual": 1, "needs caution": 1,
                                            "needs intervention": 1}
    days = stats["by_day"]
    assert [day["day"] for day in days][0] == "2026-03-01" and len(days) == 2
    assert (days[0]["verdicts"], days[0]["flag_rate"], days[0]["krippendorff_alpha"]) == (1, 1.0, None)
    assert (days[1]["verdicts"], days[1]["flag_rate"]) == (2, 0.5)
    assert stats["by_reviewer"] == {"ana": 2, "bo": 1}
    assert stats["queue"] == 2 and len(ids) == 4


def test_two_reviewers_who_agree_on_every_item_show_1_and_1(store, cli):
    judge(store, [{"ana": label, "bo": label} for label in ("casual", "needs caution", "needs intervention")])
    run = cli(feedback_main, "stats", "--db", store.path, "--json")
    assert run.returncode == 0, run.stderr
    agreement = json.loads(run.stdout)["agreement"]
    assert agreement["pairs"] == [{"a": "ana", "b": "bo", "n": 3, "cohen_kappa": 1.0}]
    assert agreement["krippendorff_alpha"] == 1.0
    run = cli(feedback_main, "stats", "--db", store.path)
    assert "Krippendorff's alpha (ordinal) 1.000 on 3 texts" in run.stdout
    assert "ana and bo: Cohen's kappa 1.000 on 3" in run.stdout


def test_reviewers_who_judged_different_predictions_of_a_text_are_paired(store):
    """Two texts, each moderated twice; ana judges the first prediction of each, bo the second: the queue counts
    a text once, so agreement does too, on each reviewer's latest verdict on the text."""
    for text, label in (("you idiot", "needs caution"), ("hello there", "casual")):
        first, second = (store.save_prediction(text=text, label="casual", scores=SCORES, prompt="p", model="m")
                         for _ in range(2))
        for prediction, reviewer in ((first, "ana"), (second, "bo")):
            store.add_verdict(prediction, verdict="right" if label == "casual" else "wrong",
                              label=None if label == "casual" else label, reviewer=reviewer)
    agreement = summary(store)["agreement"]
    assert agreement == {"pairs": [{"a": "ana", "b": "bo", "n": 2, "cohen_kappa": 1.0}],
                         "krippendorff_alpha": 1.0, "items": 2}

    store.add_verdict(1, verdict="right", reviewer="ana")  # ana's latest verdict on "you idiot": casual
    agreement = summary(store)["agreement"]
    assert agreement["pairs"] == [{"a": "ana", "b": "bo", "n": 2, "cohen_kappa": 0.0}]
    assert agreement["krippendorff_alpha"] == pytest.approx(0.0, abs=1e-9) and agreement["items"] == 2


def test_the_models_label_mix_counts_each_judged_prediction_once(store):
    judge(store, [{"ana": "casual", "bo": "needs caution", "cy": "casual"}, {"ana": "casual"}, {}])
    judge(store, [{"ana": "needs intervention", "bo": "needs intervention"}], model_label="needs caution")
    mix = summary(store)["label_mix"]
    assert mix["model"] == {**dict.fromkeys(LABELS, 0), "casual": 2, "needs caution": 1}
    assert mix["reviewers"] == {**dict.fromkeys(LABELS, 0), "casual": 3, "needs caution": 1, "needs intervention": 2}
