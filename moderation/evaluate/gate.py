"""The gate a version passes before it serves: compared with the serving model on the same gold texts, it is refused
when it is worse with the interval excluding zero, when it flags more benign texts than allowed, or when the texts
are too few to tell. The page, the API and ``python -m moderation.evaluate --gate`` all decide with :func:`gate`."""

from dataclasses import asdict, dataclass

from ..engine import Moderator
from ..errors import Conflict, InvalidInput
from ..settings import Settings
from .compare import compare
from .gold import GoldSet
from .intervals import FIGURES, figures_of
from .runner import Progress, evaluate

MAX_BENIGN_REGRESSIONS = 0
MIN_GATE_TEXTS = 50
SHOWN_TEXTS = 10
"""How many benign regressions a refusal's message names (the report lists them all)."""


@dataclass(frozen=True)
class GateRules:
    """What the gate allows: at most ``max_benign_regressions`` texts that the serving model and gold call benign and
    the candidate flags, on at least ``min_gate_texts`` texts."""

    max_benign_regressions: int = MAX_BENIGN_REGRESSIONS
    min_gate_texts: int = MIN_GATE_TEXTS

    def __post_init__(self):
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidInput(f"--{name.replace('_', '-')} is {value!r}: give a whole number, 0 or more.", name)


def gate_runs(serving: Moderator, candidate: Moderator, gold: GoldSet, settings: Settings = Settings(),
              progress: Progress | None = None) -> tuple[dict, dict]:
    """The runs of the serving model and the candidate on the texts of ``gold`` that neither trained on (each run
    says how many were left out); ``progress`` hears of both runs as one."""
    hashes = {digest for model in (serving, candidate) if model.version for digest in model.version.trained_texts}
    left_out = gold.trained_on(hashes)
    if left_out:
        gold = gold.without(hashes, f"Together, {serving.name} and {candidate.name}")
    size = len(gold.items)
    runs = [evaluate(model, gold, settings, progress=progress and (lambda done, _, start=start: progress(
        start + done, 2 * size))) for start, model in ((0, serving), (size, candidate))]
    return tuple({**run, "trained_left_out": left_out} for run in runs)


def gate(serving: dict, candidate: dict, rules: GateRules = GateRules()) -> dict:
    """The gate's decision on run ``candidate`` against run ``serving`` (both on the same gold set): ``allowed``,
    ``reasons`` (each refusal, in words that name its figures), ``rules`` and the ``comparison``
    (:func:`~moderation.evaluate.compare.compare`, with the intervals and the benign regressions)."""
    if serving["gold_hash"] != candidate["gold_hash"]:
        raise InvalidInput("The gate compares two runs on the same gold texts: evaluate both on one gold set.")
    comparison = compare(serving, candidate)
    texts = comparison["paired"]["n"]
    reasons = []
    if texts < rules.min_gate_texts:
        reasons.append(f"the gate set holds {texts} texts, fewer than the {rules.min_gate_texts} it needs "
                       "(--min-gate-texts): accept more verdicts, or give a larger gold set")
    for figure in figures_of(serving["metrics"]):
        delta = comparison["paired"]["intervals"][figure]["delta"]
        if delta is not None and delta[1] < 0:
            values = comparison["metrics"][figure]
            reasons.append(f"{figure} falls from {values['a']:.3f} to {values['b']:.3f} on {texts} texts: the "
                           f"difference {values['delta']:+.3f} has its 95% interval [{delta[0]:+.3f}, {delta[1]:+.3f}] "
                           "below zero")
    benign = comparison["benign_regressions"]
    if len(benign) > rules.max_benign_regressions:
        named = "; ".join(f"{flip['text']!r} ({flip['b']})" for flip in benign[:SHOWN_TEXTS])
        more = f"; and {len(benign) - SHOWN_TEXTS} more" if len(benign) > SHOWN_TEXTS else ""
        reasons.append(f"{len(benign)} benign regressions, more than the {rules.max_benign_regressions} allowed "
                       f"(--max-benign-regressions): texts {comparison['benign']} for the serving model and gold "
                       f"that it flags: {named}{more}")
    return {"allowed": not reasons, "reasons": reasons, "rules": asdict(rules), "comparison": comparison}


def gate_summary(decision: dict) -> dict:
    """What is kept of a decision beside a serve or an override: allowed or not, the reasons, the two runs, how many
    texts, the headline figures with the interval of their change, and the benign regressions."""
    comparison = decision["comparison"]
    return {"allowed": decision["allowed"], "reasons": decision["reasons"], "rules": decision["rules"],
            "runs": [comparison[side].get("id") for side in ("a", "b")], "texts": comparison["paired"]["n"],
            "figures": {figure: {**comparison["metrics"][figure],
                                 "interval": comparison["paired"]["intervals"][figure]["delta"]}
                        for figure in FIGURES if figure in comparison["metrics"]},
            "benign_regressions": [{"text": flip["text"], "label": flip["b"]}
                                   for flip in comparison["benign_regressions"]]}


def refusal(decision: dict) -> str:
    """What a refused serve says: the candidate, the serving model, and every reason with its figures and texts."""
    runs = decision["comparison"]["a"], decision["comparison"]["b"]
    return (f"The gate refuses {runs[1]['version'] or runs[1]['model']} against the serving "
            f"{runs[0]['version'] or runs[0]['model']}: " + "; ".join(decision["reasons"]) + ".")


class GateRefused(Conflict):
    """Serving a version the gate refused: the message names the figures and the texts; ``decision`` is the gate's
    (:func:`gate`). An override with a reason serves it anyway."""

    def __init__(self, decision: dict):
        super().__init__(refusal(decision) + " Serve it anyway only with a reason (an override, which is logged).",
                         "version")
        self.decision = decision
