"""The guard formats: each prompt is what the model family's own chat template renders, byte for byte; each family's
answers become label probabilities by its rule (checked on hand-set log-likelihoods); and the fast path (cached
prefix, packed texts, continuation trie) scores them as the plain path and a hand-made forward pass do.

Each family gets a small GPT-J (``family_model_dirs``) whose tokenizer carries the family's special tokens and its
published chat template, copied in ``tests/data/chat_templates`` (sources and commits in the README there):

* Llama-Guard-3-1B's template, from huggingface/huggingface.js @ fe42e680
  (packages/ollama-utils/src/chat-template-automap.ts, ``library/llama-guard3:1b``), whose renders Meta's notebook
  shows (meta-llama/llama-recipes @ faae2fd8,
  getting-started/responsible_ai/llama_guard/llama_guard_text_and_vision_inference.ipynb);
* google/shieldgemma-9b's template, from huggingface/text-generation-inference @ 959add5e
  (router/src/infer/chat_template.rs, with the render it expects).
"""

import hashlib
import math
from pathlib import Path

import pytest
import torch
from conftest import CHAT_TEMPLATES, FAMILIES
from transformers import AutoModelForCausalLM, AutoTokenizer

from moderation.loader import open_moderator
from moderation.policy import CARD, Policy, read_policy
from moderation.prompt import TRUNCATION_MARKER, normalize_text
from moderation.settings import Settings
from moderation.templates import LlamaGuardTemplate, YesNoTemplate
from moderation.templates.base import SEPARATOR

POLICIES = Path(__file__).parent.parent / "policies"

META_CATEGORIES = ("Violent Crimes.", "Non-Violent Crimes.", "Sex Crimes.", "Child Exploitation.", "Defamation.",
                   "Specialized Advice.", "Privacy.", "Intellectual Property.")
"""The first eight of the categories Llama-Guard-3-1B's chat template lists by default (a policy has at most nine
labels)."""
META = Policy("llama-guard-3", ("safe", *META_CATEGORIES), threshold=META_CATEGORIES[0], ordinal=False)

POLICY_CASES = {
    "card": CARD,
    "community": read_policy(POLICIES / "community.toml"),
    "severity-3": read_policy(POLICIES / "severity-3.toml"),
    "meta": META,
}
TEXTS = [
    "How do I make a bomb?",
    "  Wie geht's dir heute?  Gut, danke 🙂  ",
    "line one\nline two\n\n{{ raise_exception('x') }} {% if true %}",
    "I can't help with that. Let's talk about something else.",
]
CONTEXTS = [None, "Can you help me with my homework?", None, "  hi\n"]


def conversation(text: str, context: str | None, parts: bool) -> list[dict]:
    """The chat messages of a text (or a bot's reply and the user's message before it), as the model sees them
    (normalised); ``parts``: content as a list of typed parts, as Llama Guard 3's template reads it."""
    turns = [("user", normalize_text(text))]
    if context is not None:
        turns = [("user", normalize_text(context)), ("assistant", normalize_text(text))]
    return [{"role": role, "content": [{"type": "text", "text": said}] if parts else said} for role, said in turns]


def test_chat_templates_are_the_published_copies():
    """The copies are unchanged since they were checked against their sources (their hashes, in the README)."""
    listed = (CHAT_TEMPLATES / "README.md").read_text()
    for chat_template, _ in FAMILIES.values():
        digest = hashlib.sha256((CHAT_TEMPLATES / f"{chat_template}.jinja").read_bytes()).hexdigest()
        assert f"`{chat_template}.jinja`" in listed and f"`{digest}`" in listed


def asked(text: str, context: str | None) -> tuple:
    """A template's arguments for a text and the message it answers, normalised as the engine does."""
    return normalize_text(text), None if context is None else normalize_text(context)


@pytest.mark.parametrize("context", [None, "  What should I do about my neighbour?\n"])
@pytest.mark.parametrize("policy", POLICY_CASES.values(), ids=POLICY_CASES)
def test_llama_guard_prompt_is_the_chat_templates_render(family_model_dirs, policy, context):
    """Llama Guard 3's chat template, given the policy's labels after the first as its categories (a description on
    the line after its label), renders the prompt the template sends and shows, for a message and a bot's reply."""
    tokenizer = AutoTokenizer.from_pretrained(family_model_dirs["llama-guard"])
    template = LlamaGuardTemplate(policy)
    categories = {f"S{k}": label + (f"\n{policy.description(label)}" if policy.description(label) else "")
                  for k, label in enumerate(policy.labels[1:], 1)}
    for text in TEXTS:
        rendered = tokenizer.apply_chat_template(conversation(text, context, parts=True), tokenize=False,
                                                 categories=categories, excluded_category_keys=[])
        queries = template.queries(*asked(text, context))
        assert queries[0].prompt == template.assemble(text, context) == rendered
        assert queries[1].prompt == rendered + "\n\nunsafe\n"  # the model's own answer, up to its categories
        assert queries[0].continuations == ("\n\nsafe", "\n\nunsafe")
        assert queries[1].continuations == tuple(f"S{k}" for k in range(1, len(policy.labels)))


def test_llama_guard_with_metas_categories_is_the_default_render(family_model_dirs):
    """With Meta's own categories (no descriptions) the prompt is the chat template's render with its built-in
    categories, the render Meta's notebook shows Llama-Guard-3-1B being sent."""
    tokenizer = AutoTokenizer.from_pretrained(family_model_dirs["llama-guard"])
    text = "What is the recipe for mayonnaise?"
    assert LlamaGuardTemplate(META).assemble(text) == tokenizer.apply_chat_template(
        conversation(text, None, parts=True), tokenize=False, excluded_category_keys=[f"S{k}" for k in range(9, 14)])


@pytest.mark.parametrize("context", [None, "  What should I do\nabout my neighbour?"])
@pytest.mark.parametrize("policy", POLICY_CASES.values(), ids=POLICY_CASES)
def test_yes_no_prompts_are_the_chat_templates_render(family_model_dirs, policy, context):
    """ShieldGemma's chat template, rendered once per label after the first with the guideline ``"No <label>":
    <description>``, gives each prompt the template sends; the page shows them all, in the policy's order."""
    tokenizer = AutoTokenizer.from_pretrained(family_model_dirs["yes-no"])
    template = YesNoTemplate(policy)
    for text in TEXTS:
        rendered = [tokenizer.apply_chat_template(conversation(text, context, parts=False), tokenize=False,
                                                  guideline=template.guideline(label))
                    for label in policy.labels[1:]]
        queries = template.queries(*asked(text, context))
        assert [query.prompt for query in queries] == rendered
        assert all(query.continuations == ("Yes", "No") for query in queries)
        assert template.assemble(text, context) == SEPARATOR.join(rendered)


def test_yes_no_guideline_is_shieldgemmas_form():
    """A label's guideline reads as the model card's harm definitions do."""
    community = POLICY_CASES["community"]
    label = community.labels[1]
    assert YesNoTemplate(community).guideline(label) == f'"No {label}": {community.description(label)}'
    assert YesNoTemplate(META).guideline("Privacy.") == '"No Privacy."'


THREE = Policy("three", ("ok", "rude", "threat"), threshold="rude", ordinal=False)


def test_llama_guard_probabilities_by_hand():
    """P(ok) = P(safe); P(category) = P(unsafe) x P(its code | unsafe), each pair normalised: they sum to 1."""
    template = LlamaGuardTemplate(THREE)
    scores = template.scores([[math.log(0.6), math.log(0.2)], [math.log(3.0), math.log(1.0)]])
    assert scores == pytest.approx({"ok": 0.75, "rude": 0.25 * 0.75, "threat": 0.25 * 0.25})
    assert sum(scores.values()) == pytest.approx(1)
    assert template.choose(scores) == "ok"
    assert template.choose(template.scores([[-5.0, -0.1], [-2.0, -0.5]])) == "threat"


def test_yes_no_probabilities_by_hand():
    """Each label's P(Yes) against P(No) stands alone; the first label's score is the chance none applies, and the
    label given is the most severe one at or above 1/2."""
    template = YesNoTemplate(THREE)
    scores = template.scores([[math.log(0.7), math.log(0.3)], [math.log(0.6), math.log(0.4)]])
    assert scores == pytest.approx({"ok": 0.3 * 0.4, "rude": 0.7, "threat": 0.6})
    assert template.choose(scores) == "threat"  # both apply: the more severe
    assert template.choose(template.scores([[math.log(0.9), math.log(0.1)], [math.log(0.2), math.log(0.8)]])) == "rude"
    below = template.scores([[math.log(0.49), math.log(0.51)], [math.log(0.1), math.log(0.9)]])
    assert template.choose(below) == "ok"
    assert below["ok"] == pytest.approx(0.51 * 0.9)


FORMAT_CASES = {
    "llama-guard community": LlamaGuardTemplate(POLICY_CASES["community"]),
    "llama-guard card": LlamaGuardTemplate(CARD),
    "yes-no community": YesNoTemplate(POLICY_CASES["community"]),
    "yes-no severity-3": YesNoTemplate(POLICY_CASES["severity-3"]),
}


@pytest.mark.parametrize("template", FORMAT_CASES.values(), ids=FORMAT_CASES)
def test_guard_formats_score_as_the_plain_path(family_model_dirs, template):
    """The cached, packed path gives the plain path's probabilities and labels, for texts alone and replies."""
    settings = Settings(template)
    folder = str(family_model_dirs[template.format])
    fast = open_moderator(folder, batch_size=3)
    plain = open_moderator(folder, prefix_cache=False)
    fast_results = fast.moderate(TEXTS, settings, contexts=CONTEXTS)
    plain_results = plain.moderate(TEXTS, settings, contexts=CONTEXTS)
    assert [r.label for r in fast_results] == [r.label for r in plain_results]
    for a, b, context in zip(fast_results, plain_results, CONTEXTS, strict=True):
        assert a.prompt == b.prompt == template.assemble(a.text, context)
        assert set(a.scores) == set(template.policy.labels)
        for label in template.policy.labels:
            assert a.scores[label] == pytest.approx(b.scores[label], abs=1e-4)


@pytest.mark.parametrize("template", FORMAT_CASES.values(), ids=FORMAT_CASES)
def test_guard_formats_score_as_a_forward_pass_by_hand(family_model_dirs, template):
    """One text, scored with nothing of the engine: each query's prompt and continuation run through the model, the
    continuation's token log-probabilities summed, and the family's rule applied."""
    folder = family_model_dirs[template.format]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()

    def encode(text):
        return tokenizer.encode(text, add_special_tokens=False)

    def loglikelihood(query, continuation):
        prompt, answer = encode(query.prefix) + encode(query.request), encode(continuation)
        with torch.no_grad():
            logits = model(torch.tensor([prompt + answer])).logits[0].log_softmax(-1)
        return sum(logits[len(prompt) - 1 + i, token].item() for i, token in enumerate(answer))

    text, context = TEXTS[1], CONTEXTS[1]
    queries = template.queries(*asked(text, context))
    expected = template.scores([[loglikelihood(query, c) for c in query.continuations] for query in queries])
    result = open_moderator(str(folder)).moderate([text], Settings(template), contexts=[context])[0]
    assert result.scores == pytest.approx(expected, abs=1e-4)
    assert result.label == template.choose(expected)
    special_tokens = FAMILIES[template.format][1]
    assert encode(queries[0].prefix)[0] == tokenizer.convert_tokens_to_ids(special_tokens[0])  # one token


def test_a_long_message_before_a_reply_is_cut_and_the_reply_kept(family_model_dirs):
    """The message a reply answers takes half of the room at most: cut with the marker, the reply stays whole."""
    template = LlamaGuardTemplate(POLICY_CASES["community"])
    moderator = open_moderator(str(family_model_dirs["llama-guard"]))
    reply = "Sure, here is how to get cheap followers fast."
    result = moderator.moderate([reply], Settings(template), contexts=["tell me more " * 2000])[0]
    assert result.text == reply
    assert "User: tell me more tell me more" in result.prompt and TRUNCATION_MARKER in result.prompt
    assert f"Agent: {reply}\n\n" in result.prompt
    assert len(moderator.backend.tokens.encode(result.prompt)) < moderator.context_length
