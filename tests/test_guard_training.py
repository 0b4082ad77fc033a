"""Retraining in the guard formats: each record becomes a sequence a query its label answers (its prompt as the
Moderator sends it, the answer alone learned), and a LoRA trained by ``python -m moderation.training`` in the
llama-guard and yes-no formats learns the policy's answers, records its format, and serves in it."""

import json

import pytest
from conftest import ROOT

from moderation.errors import InvalidInput
from moderation.loader import open_moderator
from moderation.models import ModelSpec, open_served
from moderation.policy import Policy, read_policy
from moderation.prompt import normalize_text
from moderation.settings import Settings
from moderation.templates import LlamaGuardTemplate, PromptTemplate, YesNoTemplate, template_for
from moderation.training.__main__ import main as train
from moderation.training.data import IGNORE, training_sequences
from moderation.training.recipe import Recipe
from moderation.training.trainer import with_lora
from moderation.versions import ModelVersion

THREE = Policy("three", ("ok", "rude", "threat"), threshold="rude", ordinal=False)
COMMUNITY = read_policy(ROOT / "policies" / "community.toml")


def learned(tokenizer, sequence) -> str:
    ids, targets = sequence
    return tokenizer.decode([target for target in targets if target != IGNORE])


def prompt_of(tokenizer, sequence) -> list[int]:
    ids, targets = sequence
    return [token for token, target in zip(ids, targets) if target == IGNORE]


def test_llama_guard_learns_safe_or_unsafe_and_the_category(family_model_dirs):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(family_model_dirs["llama-guard"])
    template = LlamaGuardTemplate(THREE)
    safe, unsafe, category = training_sequences(tokenizer, [("see you soon", "ok"), ("I will hurt you", "threat")],
                                                per_sequence=5, max_length=2048, template=template)
    assert [learned(tokenizer, s) for s in (safe, unsafe, category)] == ["\n\nsafe", "\n\nunsafe", "S2"]
    verdict, which = template.queries(normalize_text("I will hurt you"))
    encode = lambda text: tokenizer.encode(text, add_special_tokens=False)  # noqa: E731
    assert prompt_of(tokenizer, unsafe) == encode(verdict.prefix) + encode(verdict.request)  # as the engine asks
    assert prompt_of(tokenizer, category) == encode(which.prefix) + encode(which.request)
    assert tokenizer.decode(prompt_of(tokenizer, category)).endswith("<|end_header_id|>\n\nunsafe\n")


def test_yes_no_learns_yes_to_the_labels_question_and_no_to_the_others(family_model_dirs):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(family_model_dirs["yes-no"])
    template = YesNoTemplate(THREE)
    sequences = training_sequences(tokenizer, [("you fool", "rude"), ("hello", "ok")], 5, 2048, template)
    assert [learned(tokenizer, s) for s in sequences] == ["Yes", "No", "No", "No"]
    assert '"No rude"' in tokenizer.decode(prompt_of(tokenizer, sequences[0]))
    assert '"No threat"' in tokenizer.decode(prompt_of(tokenizer, sequences[1]))


def test_a_text_too_long_is_cut_until_its_prompt_fits(family_model_dirs):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(family_model_dirs["yes-no"])
    long_text = " ".join(f"word{n}" for n in range(3000))
    sequences = training_sequences(tokenizer, [(long_text, "threat")], 5, 600, YesNoTemplate(THREE))
    assert all(len(ids) <= 600 for ids, _ in sequences)
    assert [learned(tokenizer, s) for s in sequences] == ["No", "Yes"]
    assert "word0 word1" in tokenizer.decode(sequences[0][0])
    with pytest.raises(InvalidInput, match="prompt fills the model's 100 tokens"):
        training_sequences(tokenizer, [("hi", "rude")], 5, 100, YesNoTemplate(THREE))


def test_the_cards_format_still_packs_records_under_the_header(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    (packed,) = training_sequences(tokenizer, [("hi", "casual"), ("you fool", "needs caution")], 5, 256,
                                   PromptTemplate())
    assert learned(tokenizer, packed) == " casual\n needs caution\n"


HELD_OUT = [("Is the meetup still on for Friday?", "ok"), ("Cheap followers here, click my profile link!", "spam"),
            ("You're a loser and nobody wants you here.", "harassment"),
            ("Watch your back, I will find you.", "threat")]


@pytest.mark.slow
@pytest.mark.parametrize("format", ["llama-guard", "yes-no"])
def test_lora_learns_the_policys_answers_in_the_format(family_model_dirs, tmp_path, cli, format):
    """A LoRA trained by the command line in the format, on the community policy's examples, raises the mean
    probability of each example's own label clearly over the base model's; the version records its format and
    policy and serves in them, and refuses another format. (A step sees all eight examples; the held-out loss is
    measured once, at the end, so the version kept is the last: the random base cannot carry what it learns of
    eight texts over to other texts, and an earlier checkpoint would win on them.)"""
    records = [(example.text, example.label) for example in COMMUNITY.examples]
    data = tmp_path / "export.jsonl"
    held_out = tmp_path / "held-out.jsonl"
    for path, rows in ((data, records), (held_out, HELD_OUT)):
        path.write_text("".join(json.dumps({"text": text, "label": label}) + "\n" for text, label in rows))
    adapter = tmp_path / "adapter"
    base = str(family_model_dirs[format])
    run = cli(train, "--model", base, "--data", data, "--eval-data", held_out, "--out", adapter, "--lora",
              "--policy", ROOT / "policies" / "community.toml", "--max-steps", "50", "--eval-steps", "50",
              "--learning-rate", "1e-2", "--replay-ratio", "0")
    assert run.returncode == 0, run.stderr
    version = ModelVersion.read(adapter)
    assert version.format == format and version.trained_policy.labels == COMMUNITY.labels

    texts = [text for text, _ in records]
    gold = [label for _, label in records]
    settings = Settings(template_for(format, COMMUNITY))

    def right(moderator) -> float:
        """The mean probability of each text's own label."""
        results = moderator.moderate(texts, settings)
        return sum(result.scores[label] for result, label in zip(results, gold)) / len(gold)

    served = open_served(ModelSpec("tuned", base, adapter=str(adapter)))  # the version's format and policy
    assert (served.settings.template.format, served.settings.policy.labels) == (format, COMMUNITY.labels)
    assert right(served.moderator) > right(open_moderator(base)) + 0.2
    with pytest.raises(InvalidInput, match=f"trained to answer in the {format} format"):
        open_served(ModelSpec("wrong", base, format="card", adapter=str(adapter)), COMMUNITY)


LLAMA_PROJECTIONS = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
ARCHITECTURES = {
    "llama": ({"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
               "num_key_value_heads": 1}, LLAMA_PROJECTIONS),
    "gemma2": ({"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                "num_key_value_heads": 1, "head_dim": 8}, LLAMA_PROJECTIONS),
    "granite": ({"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                 "num_key_value_heads": 1}, LLAMA_PROJECTIONS),
    "gptj": ({"n_embd": 16, "n_layer": 1, "n_head": 2, "rotary_dim": 4}, {"q_proj", "k_proj", "v_proj", "out_proj",
                                                                          "fc_in", "fc_out"}),
}


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_lora_adapts_every_projection_whatever_the_architecture_names_it(architecture):
    """Llama Guard (Llama), ShieldGemma (Gemma 2) and Granite Guardian (Granite) name their projections otherwise
    than GPT-J does: a LoRA fine-tune adapts each one of every attention and MLP, and never the output layer."""
    from peft.tuners.lora import LoraLayer
    from transformers import AutoConfig, AutoModelForCausalLM

    shape, projections = ARCHITECTURES[architecture]
    model = with_lora(AutoModelForCausalLM.from_config(AutoConfig.for_model(architecture, vocab_size=64, **shape)),
                      Recipe())
    adapted = {name for name, module in model.named_modules() if isinstance(module, LoraLayer)}
    assert {name.rsplit(".", 1)[-1] for name in adapted} == projections
    assert len(adapted) == len(projections)  # one layer: each projection once
