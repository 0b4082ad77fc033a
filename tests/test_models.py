"""Several models side by side: their specs on the command line and in models.toml (each refusal names the fix),
the formats preset for the known families, and ``python -m moderation`` running every text through every model."""

import json

import pytest
from conftest import ROOT

from moderation.__main__ import main
from moderation.errors import InvalidInput
from moderation.models import ModelSpec, check_names, family_format, parse_spec, read_specs
from moderation.policy import read_policy

COMMUNITY = ROOT / "policies" / "community.toml"
SEVERITY = ROOT / "policies" / "severity-3.toml"


def test_a_spec_names_its_model_format_policy_and_where_it_runs():
    spec = parse_spec(f"lg=/models/lg,format=llama-guard,policy={COMMUNITY}")
    assert spec == ModelSpec("lg", "/models/lg", "llama-guard", read_policy(COMMUNITY))
    assert parse_spec("demo") == ModelSpec(None, "demo")
    remote = parse_spec("sg=google/shieldgemma-2b,base_url=http://gpu:8000", backend="vllm")
    assert (remote.format, remote.backend, remote.base_url) == (None, "vllm", "http://gpu:8000")  # its family's
    assert parse_spec("x=demo,backend=local", backend="vllm").backend == "local"  # its own wins over the shared


@pytest.mark.parametrize("model, format", [
    ("meta-llama/Llama-Guard-3-1B", "llama-guard"),
    ("meta-llama/Llama-Guard-4-12B", "llama-guard"),
    ("google/shieldgemma-2b", "yes-no"),
    ("ibm-granite/granite-guardian-3.1-2b", "yes-no"),
    ("togethercomputer/GPT-JT-Moderation-6B", "card"),
    ("/data/models/my-finetune", "card"),
    (None, "card"),
])
def test_known_families_get_their_format(model, format):
    assert family_format(model) == format


@pytest.mark.parametrize("text, named", [
    ("lg=demo,colour=red", "'colour=red' is not an option"),
    ("lg=demo,format", "'format' is not an option"),
    ("lg=demo,format=", "'format=' is not an option"),
    ("lg=demo,format=guardrail", "unknown format 'guardrail': choose one of card, llama-guard, yes-no"),
    ("bad name=demo", "the name 'bad name' must be letters"),
    ("=demo", "the name '' must be letters"),
    ("<script>=demo", "the name '<script>' must be letters"),
    ("x" * 65 + "=demo", "64 at most"),
])
def test_a_bad_spec_is_refused_with_the_fix(text, named):
    with pytest.raises(InvalidInput, match="--model") as refused:
        parse_spec(text)
    assert named in str(refused.value)


def test_models_toml_lists_the_models_with_policies_beside_it(tmp_path):
    (tmp_path / "community.toml").write_text(COMMUNITY.read_text())
    listing = tmp_path / "models.toml"
    listing.write_text('[[models]]\nname = "gptjt"\nmodel = "demo"\n\n'
                       '[[models]]\nname = "lg"\nmodel = "meta-llama/Llama-Guard-3-1B"\npolicy = "community.toml"\n'
                       'backend = "vllm"\nbase_url = "http://gpu:8000"\n')
    first, second = read_specs(listing)
    assert first == ModelSpec("gptjt", "demo")
    assert second == ModelSpec("lg", "meta-llama/Llama-Guard-3-1B", None, read_policy(COMMUNITY), "vllm",
                               "http://gpu:8000")


@pytest.mark.parametrize("content, named", [
    ("", "no [[models]] tables"),
    ('models = "demo"', "no [[models]] tables"),
    ("[[models]]\nmodel = \"demo\"", 'model 1: give it a name = "..."'),
    ('[[models]]\nname = "a"\nmodel = "demo"\ncolor = "red"', "model 1: give strings for name, model"),
    ('[[models]]\nname = "a"\nmodel = 3', "model 1: give strings"),
    ('[[models]]\nname = "a"\nformat = "nope"', "model 1: unknown format 'nope'"),
    ("[[models]\nname = 1", "not TOML"),
])
def test_a_bad_models_file_is_refused_with_the_fix(tmp_path, content, named):
    listing = tmp_path / "models.toml"
    listing.write_text(content)
    with pytest.raises(InvalidInput, match="models.toml") as refused:
        read_specs(listing)
    assert named in str(refused.value)


def test_two_models_of_one_name_are_refused():
    assert check_names(["a", "b"]) == ["a", "b"]
    with pytest.raises(InvalidInput, match="Two models are named 'a'"):
        check_names(["a", "b", "a"])


@pytest.fixture
def moderate(cli):
    return lambda *args: cli(main, *args)


def test_every_text_goes_through_every_model(moderate, demo_model_dir):
    run = moderate("--json", "--model", f"card={demo_model_dir}",
                   "--model", f"guard={demo_model_dir},format=yes-no,policy={SEVERITY}",
                   "--policy", COMMUNITY, "buy cheap followers now", "see you at five")
    assert run.returncode == 0, run.stderr
    results = [json.loads(line) for line in run.stdout.splitlines()]
    assert [(r["model"], r["text"]) for r in results] == [
        ("card", "buy cheap followers now"), ("card", "see you at five"),
        ("guard", "buy cheap followers now"), ("guard", "see you at five")]
    assert set(results[0]["scores"]) == set(read_policy(COMMUNITY).labels)  # the shared policy
    assert sum(results[0]["scores"].values()) == pytest.approx(1)
    assert set(results[2]["scores"]) == {"allow", "review", "block"}  # its own
    assert results[2]["prompt"].count("Our safety principle is defined in the below") == 2  # review, block


def test_the_llama_guard_command_of_the_issue(moderate, demo_model_dir):
    run = moderate("--model", f"lg={demo_model_dir},format=llama-guard", "--policy", COMMUNITY, "--show-prompt",
                   "--json", "buy cheap followers now")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert "S1: spam\nUnsolicited advertising" in result["prompt"] and "User: buy cheap followers now" in result[
        "prompt"]
    assert list(result["scores"]) == list(read_policy(COMMUNITY).labels)
    assert sum(result["scores"].values()) == pytest.approx(1)


@pytest.mark.parametrize("args, named", [
    (["--model", "a=demo", "--model", "a=demo"], "Two models are named 'a'"),
    (["--model", "a=demo", "--model", "b=demo", "--adapter", "x"], "give each its own (--model NAME=MODEL,adapter"),
    (["--model", "a=demo,format=llama-guard", "--mode", "generate"], "Generate mode is the card format's"),
    (["--model", "a=demo", "--model", "b=demo", "--input", "in.txt", "--output", "out.csv"],
     "a batch file is labelled by one model"),
    (["--model", "a=demo,policy=/nonexistent/policy.toml"], "/nonexistent/policy.toml: cannot read the policy"),
])
def test_the_command_line_refuses_what_cannot_run(moderate, demo_model_dir, args, named):
    run = moderate(*args, *([] if "--input" in args else ["hello"]))
    assert run.returncode == 2
    assert named in run.stderr and "Traceback" not in run.stderr
