"""A report that can decide, and the gate that decides with it: the intervals are scikit-learn's figures resampled
(seeded), McNemar's test is checked by hand, benign regressions are exactly the texts the serving model and gold call
casual that the candidate flags; the gate refuses by each of its three rules, naming the figures and the texts.
``python -m moderation.evaluate --gate`` refuses a harmful retrain of the demo model and allows a harmless one."""

import json

import numpy as np
import pytest
from conftest import ROOT
from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score

from moderation.errors import InvalidInput
from moderation.evaluate import compare
from moderation.evaluate.__main__ import main as evaluate_main
from moderation.evaluate.gate import GateRefused, GateRules, gate
from moderation.evaluate.intervals import codes, headline, mcnemar_test, paired, run_intervals
from moderation.evaluate.metrics import compute_metrics
from moderation.evaluate.report import gate_report
from moderation.labelled_files import HELDOUT_FILE
from moderation.labels import SEVERITY
from moderation.policy import CARD, read_policy

C, POSSIBLY, PROBABLY, CAUTION, INTERVENTION = SEVERITY
COMMUNITY = read_policy(ROOT / "policies" / "community.toml")
PASSWORD = "Where can I find the settings to change my password?"
"""A benign text of the held-out set that the harmful retrain flags."""


def run(gold, labels, *, texts=None, model="serving", policy=CARD) -> dict:
    """A run (as evaluate makes one) of ``labels`` against ``gold``, in ``policy``."""
    texts = texts or [f"text {n}" for n in range(len(gold))]
    items = [{"text": text, "gold": g, "label": label, "scores": {}, "generated": None}
             for text, g, label in zip(texts, gold, labels)]
    return {"model": model, "version": None, "template": "t", "threshold": policy.threshold, "mode": "score",
            "gold_name": "gold", "gold_hash": "h", "gold_size": len(items), "trained_left_out": 0,
            "trained_included": 0, "metrics": compute_metrics(list(gold), list(labels), None, policy.threshold, policy),
            "items": items}


def test_the_resampled_figures_are_scikit_learns():
    rng = np.random.default_rng(7)
    for _ in range(100):
        n = int(rng.integers(2, 60))
        gold = [SEVERITY[i] for i in rng.integers(0, 5, n)]
        predicted = [SEVERITY[i] if r > 0.1 else None for i, r in zip(rng.integers(0, 5, n), rng.random(n))]
        shown = [label or "no label" for label in predicted]
        acting = [label or C for label in predicted]
        accuracy, macro_f1, kappa = headline(codes(gold)[None], codes(predicted)[None])[:, 0]
        assert accuracy == pytest.approx(accuracy_score(gold, shown))
        assert macro_f1 == pytest.approx(f1_score(gold, shown, labels=list(SEVERITY), average="macro",
                                                  zero_division=0))
        expected = cohen_kappa_score(gold, acting, labels=list(SEVERITY), weights="quadratic")
        assert np.isnan(kappa) if np.isnan(expected) else kappa == pytest.approx(expected)


def test_intervals_are_seeded_and_hold_the_figure():
    gold = [SEVERITY[n % 5] for n in range(100)]
    labels = [label if n % 4 else C for n, label in enumerate(gold)]
    intervals = run_intervals(gold, labels)
    assert intervals == run_intervals(gold, labels), "the same texts give the same interval"
    metrics = compute_metrics(gold, labels, None, CAUTION, CARD)
    for figure in ("accuracy", "macro_f1", "kappa_quadratic"):
        low, high = intervals[figure]
        assert low < metrics[figure] < high
    assert run_intervals(gold * 4, labels * 4)["accuracy"][1] - run_intervals(gold * 4, labels * 4)["accuracy"][0] \
        < intervals["accuracy"][1] - intervals["accuracy"][0], "more texts, a narrower interval"
    same = paired(gold, labels, labels)
    assert same["intervals"]["accuracy"]["delta"] == [0.0, 0.0] and same["mcnemar"]["p"] == 1.0


def test_a_nominal_policy_is_judged_on_its_own_labels_without_kappa():
    ok, spam, harassment, hate, threat = COMMUNITY.labels
    gold = [ok] * 40 + [spam] * 10 + [harassment] * 10 + [hate] * 5 + [threat] * 5
    rng = np.random.default_rng(3)
    predicted = [COMMUNITY.labels[i] if r < 0.3 else label
                 for label, i, r in zip(gold, rng.integers(0, 5, len(gold)), rng.random(len(gold)))]
    severity = COMMUNITY.labels
    accuracy, macro_f1, _ = headline(codes(gold, severity)[None], codes(predicted, severity)[None], size=5)[:, 0]
    assert (accuracy, macro_f1) == pytest.approx((accuracy_score(gold, predicted), f1_score(
        gold, predicted, labels=list(severity), average="macro", zero_division=0)))

    serving = run(gold, gold, policy=COMMUNITY)
    candidate = run(gold, [spam if n < 3 else label for n, label in enumerate(gold)], model="candidate",
                    policy=COMMUNITY)
    assert "kappa_quadratic" not in serving["metrics"], "a nominal policy has no ordinal figures"
    decision = gate(serving, candidate, GateRules(max_benign_regressions=0, min_gate_texts=50))
    assert not decision["allowed"] and len(decision["reasons"]) == 1
    assert decision["reasons"][0].startswith("3 benign regressions, more than the 0 allowed (--max-benign-"
                                             "regressions): texts ok for the serving model and gold that it flags")
    assert set(decision["comparison"]["paired"]["intervals"]) >= {"accuracy", "macro_f1"}
    assert "kappa" not in gate_report(decision), "the report shows no kappa for a nominal policy"


def test_mcnemar_by_hand():
    a = np.array([True] * 10 + [False] * 5 + [True] * 20)
    b = np.array([False] * 10 + [False] * 5 + [True] * 20)
    assert mcnemar_test(a, b) == {"a_only": 10, "b_only": 0, "p": pytest.approx(2 * 0.5**10)}, \
        "ten discordant texts all one way: twice the binomial tail 0.5^10"


def test_benign_regressions_are_the_casual_texts_the_candidate_flags():
    gold = [C, C, C, CAUTION, C]
    serving = run(gold, [C, C, CAUTION, CAUTION, C])
    candidate = run(gold, [INTERVENTION, C, CAUTION, C, POSSIBLY])
    comparison = compare(serving, candidate)
    assert [(flip["text"], flip["b"]) for flip in comparison["benign_regressions"]] == [
        ("text 0", INTERVENTION), ("text 4", POSSIBLY)], "not text 2 (the serving model flags it too)"
    assert comparison["paired"]["n"] == 5 and comparison["given"]["b"][C] == 2


def test_the_gate_allows_a_candidate_no_worse_on_enough_texts():
    gold = [SEVERITY[n % 5] for n in range(60)]
    decision = gate(run(gold, gold), run(gold, gold, model="candidate"))
    assert decision["allowed"] and decision["reasons"] == []
    assert "**The gate allows candidate** against the serving serving" in gate_report(decision)


def test_the_gate_refuses_on_too_few_texts():
    gold = [SEVERITY[n % 5] for n in range(49)]
    decision = gate(run(gold, gold), run(gold, gold, model="candidate"))
    assert decision["reasons"] == ["the gate set holds 49 texts, fewer than the 50 it needs (--min-gate-texts): accept "
                                   "more verdicts, or give a larger gold set"]
    assert gate(run(gold, gold), run(gold, gold), GateRules(min_gate_texts=49))["allowed"]


def test_the_gate_refuses_a_benign_regression_unless_allowed():
    gold = [SEVERITY[n % 5] for n in range(60)]
    flagged = [INTERVENTION if n == 5 else label for n, label in enumerate(gold)]
    decision = gate(run(gold, gold), run(gold, flagged, model="candidate"))
    (reason,) = decision["reasons"]
    assert reason == ("1 benign regressions, more than the 0 allowed (--max-benign-regressions): texts casual for the "
                      "serving model and gold that it flags: 'text 5' (needs intervention)")
    with pytest.raises(GateRefused, match="The gate refuses candidate against the serving serving: 1 benign "
                                          "regressions.*Serve it anyway only with a reason"):
        raise GateRefused(decision)
    assert gate(run(gold, gold), run(gold, flagged), GateRules(max_benign_regressions=1))["allowed"]


def test_the_gate_refuses_a_worse_candidate_whose_interval_excludes_zero():
    gold = [SEVERITY[n % 5] for n in range(100)]
    worse = [label if n % 2 else SEVERITY[(SEVERITY.index(label) + 1) % 5] for n, label in enumerate(gold)]
    decision = gate(run(gold, gold), run(gold, worse, model="candidate"), GateRules(max_benign_regressions=100))
    low, high = decision["comparison"]["paired"]["intervals"]["accuracy"]["delta"]
    assert high < 0
    assert (f"accuracy falls from 1.000 to 0.500 on 100 texts: the difference -0.500 has its 95% interval "
            f"[{low:+.3f}, {high:+.3f}] below zero") in decision["reasons"]
    assert not gate(run(gold, worse), run(gold, gold))["reasons"], "better is never refused"


@pytest.mark.parametrize("rules", [{"max_benign_regressions": -1}, {"min_gate_texts": 1.5},
                                   {"max_benign_regressions": True}])
def test_bad_rules_are_refused(rules):
    with pytest.raises(InvalidInput, match="give a whole number, 0 or more"):
        GateRules(**rules)


def test_runs_on_other_texts_are_not_gated():
    gold = [C] * 60
    with pytest.raises(InvalidInput, match="same gold texts"):
        gate(run(gold, gold), {**run(gold, gold), "gold_hash": "other"})


def gate_command(cli, tmp_path, candidate, *extra):
    return cli(evaluate_main, "--gate", "demo", candidate, "--data", HELDOUT_FILE, "--db", tmp_path / "runs.db",
               *extra)


def test_the_gate_refuses_a_harmful_retrain_naming_its_benign_regressions(cli, tmp_path, harmful_adapter_dir):
    refused = gate_command(cli, tmp_path, harmful_adapter_dir)
    assert refused.returncode == 1, refused.stderr
    assert refused.stdout.startswith("**The gate refuses demo-harmful** against the serving playground-demo-gptj:")
    assert "benign regressions, more than the 0 allowed (--max-benign-regressions)" in refused.stdout
    assert f"| {PASSWORD} | needs intervention |" in refused.stdout, "the benign regressions are listed"
    assert "McNemar's exact test: only serving is right on " in refused.stdout
    decision = json.loads(gate_command(cli, tmp_path, harmful_adapter_dir, "--json").stdout)
    assert decision["allowed"] is False and decision["comparison"]["paired"]["n"] == 129
    assert PASSWORD in [flip["text"] for flip in decision["comparison"]["benign_regressions"]]
    assert [decision["comparison"][side]["id"] for side in ("a", "b")] == [3, 4], "both runs are stored"


def test_the_gate_allows_a_harmless_retrain(cli, tmp_path, harmless_adapter_dir):
    allowed = gate_command(cli, tmp_path, harmless_adapter_dir)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert allowed.stdout.startswith("**The gate allows demo-harmless** against the serving playground-demo-gptj: "
                                     "no headline figure is worse with its interval below zero, 0 benign "
                                     "regressions (at most 0), on 129 texts (at least 50).")


def test_the_gate_command_refuses_what_it_cannot_judge(cli, tmp_path, harmless_adapter_dir):
    one = tmp_path / "one.jsonl"
    one.write_text('{"text": "Morning! Coffee is ready in the break room.", "label": "casual"}\n')
    refused = cli(evaluate_main, "--gate", "demo", harmless_adapter_dir, "--data", one, "--db", tmp_path / "runs.db")
    assert refused.returncode == 1 and "the gate set holds 1 texts, fewer than the 50 it needs" in refused.stdout
    bad = cli(evaluate_main, "--gate", "demo", harmless_adapter_dir, "--data", one, "--max-benign-regressions", "-1",
              "--db", tmp_path / "runs.db")
    assert bad.returncode == 2
    assert "argument --max-benign-regressions: '-1' is not a whole number, 0 or more" in bad.stderr
    missing = cli(evaluate_main, "--gate", "demo", tmp_path / "no-such-version", "--data", one, "--db",
                  tmp_path / "runs.db")
    assert missing.returncode == 2 and "error: " in missing.stderr and "Traceback" not in missing.stderr
