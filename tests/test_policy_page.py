"""A second policy through the page's calls (the real gradio_client, the app served in this process): the community
policy published (once its new labels are confirmed) or loaded from its file, then moderation, the Queue, curation,
the export and evaluation in it, all on the fake backend; and a retrain from the page on the tiny model, whose job is
given the policy and whose version names it."""

import json
import time

import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from servers import PageClient, running_in_process

from feedback.splits import TEST_SHARE, split_for
from moderation.policy import POLICIES, read_policy
from moderation.versions import ModelVersion

COMMUNITY_FILE = POLICIES / "community.toml"
COMMUNITY = read_policy(COMMUNITY_FILE)
LABELS = {"headers": ["label", "description"], "data": [[label, COMMUNITY.description(label) or ""]
                                                          for label in COMMUNITY.labels]}
EXAMPLES = {"headers": ["text", "label"], "data": [[example.text, example.label] for example in COMMUNITY.examples]}
TEXTS = ["see you at the meetup", "this is spam, buy now", "stop the harassment of me", "that is hate",
         "a threat to the town"]
"""Texts the fake backend labels ok, spam, harassment, hate and threat in the community policy (the first label
each names)."""


def publish(client, confirmed: bool, examples=EXAMPLES):
    return client.predict(examples, "harassment", LABELS, "community", False, confirmed, api_name="/publish_prompt")


def saved_id(saved: str) -> int:
    return int(saved.split("#")[1].split()[0])


@pytest.fixture
def app(tmp_path):
    with running_in_process(tmp_path) as app:
        yield app


@pytest.fixture
def client(app):
    client = PageClient(app.url)
    yield client
    client.close()


def test_a_new_policy_is_published_once_confirmed_then_moderated_judged_curated_exported_and_evaluated(
        app, client, tmp_path):
    with pytest.raises(AppError, match=r"The draft's labels \(ok, spam, harassment, hate, threat\) are not those of "
                                       r"the published policy 'prosocial' .* confirm the change of labels, then "
                                       r"publish again\. Verdicts on older predictions keep their own policy\."):
        publish(client, confirmed=False)
    assert app.service.settings.policy.name == "prosocial", "nothing was published"
    preview, status = publish(client, confirmed=True)
    assert app.service.settings.policy == COMMUNITY
    assert preview.startswith("Possible labels:\n1. ok\n2. spam\n3. harassment\n4. hate\n5. threat\n\n")
    assert status.endswith("intervene at harassment; policy community (ok, spam, harassment, hate, threat).")

    shown = [client.predict(text, "score", api_name="/moderate") for text in TEXTS]
    assert [label["label"] for label, *_ in shown] == list(COMMUNITY.labels)
    assert [set(item["label"] for item in label["confidences"]) for label, *_ in shown] == [set(COMMUNITY.labels)] * 5
    assert shown[3][1] == "**Flagged:** yes · **Would intervene:** yes (threshold: harassment)"

    corrections = dict(zip(TEXTS, ["spam", "ok", "threat", "hate", "threat"]))
    verdicts = []
    for _ in TEXTS:
        prediction, text, *_ = client.predict("newest", "kim", api_name="/queue_next")
        saved = client.predict(prediction, corrections[text], "kim", api_name="/queue_label")
        assert saved.endswith(f": {'right' if corrections[text] == COMMUNITY.labels[TEXTS.index(text)] else 'wrong'}"
                              f", {corrections[text]}.")
        verdicts.append(saved_id(saved))
    with pytest.raises(AppError, match=r"Prediction #\d+ is in the policy 'community': Unknown label 'casual': "
                                       "choose one of ok, spam, harassment, hate, threat"):
        client.predict(shown[0][3], "casual", "", "kim", api_name="/flag")
    for verdict in verdicts:
        assert client.predict(verdict, "", "cy", api_name="/accept").endswith("is now accepted.")

    path, said = client.predict("oig", "accepted", "", api_name="/export")
    lines = [json.loads(line) for line in open(path, encoding="utf-8")]
    assert said == "5 texts exported as oig."
    assert {line["text"].rsplit("Output: ", 1)[1] for line in lines} == set(corrections.values())
    assert all(line["policy"] == {"name": "community", "id": COMMUNITY.id} for line in lines)

    gold = tmp_path / "community-gold.jsonl"
    gold.write_text("".join(json.dumps({"text": text, "label": label}) + "\n" for text, label in corrections.items()))
    summary, *_ = client.predict("a file", handle_file(str(gold)), "score", api_name="/evaluate")
    run = app.service.runs(1)[0]
    assert summary.startswith(f"**Run #{run['id']}**: accuracy **40.0%**")
    assert "macro_f1" in run["metrics"] and "quadratic_kappa" not in json.dumps(run["metrics"]), "a nominal policy"
    card_gold = tmp_path / "card-gold.jsonl"
    card_gold.write_text('{"text": "hi", "label": "casual"}\n{"text": "you idiot", "label": "needs caution"}\n')
    with pytest.raises(AppError, match=r"card-gold\.jsonl: .*'casual'.*'needs caution'"):
        client.predict("a file", handle_file(str(card_gold)), "score", api_name="/evaluate")
    with pytest.raises(AppError, match="The held-out set is labelled in the card's policy, not in 'community'"):
        client.predict("held-out set", None, "score", api_name="/evaluate")


def test_a_policy_file_loads_as_the_sessions_draft_and_a_broken_one_is_refused(app, client, tmp_path):
    name, ordinal, labels, examples, threshold, status, preview = client.predict(
        handle_file(str(COMMUNITY_FILE)), api_name="/load_policy")
    assert (name, ordinal, [row[0] for row in labels["data"]]) == ("community", False, list(COMMUNITY.labels))
    assert threshold["value"] == "harassment" and len(examples["data"]) == len(COMMUNITY.examples)
    assert "(this session's draft)" in status and preview.startswith("Possible labels:\n1. ok\n")
    label, *_ = client.predict("this is spam", "score", api_name="/moderate")
    assert label["label"] == "spam", "this session moderates in the draft"
    assert app.service.settings.policy.name == "prosocial", "nobody else's moderation changes"
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "x"\nthreshold = "block"\n\n[[labels]]\nname = "allow"\n\n[[labels]]\nname = "allow"\n')
    with pytest.raises(AppError, match=r"broken\.toml:5: the label 'allow' is given twice"):
        client.predict(handle_file(str(broken)), api_name="/load_policy")


def test_a_retrain_from_the_page_trains_in_the_published_policy(tmp_path, tiny_moderator):
    with running_in_process(tmp_path, tiny_moderator) as app:
        client = PageClient(app.url)
        short = {"headers": ["text", "label"], "data": [["hi", "ok"], ["buy", "spam"]]}  # the tiny model's context
        publish(client, confirmed=True, examples=short)
        texts = [f"message number {n} about spam" for n in range(40)]
        train = [text for text in texts if split_for(text, TEST_SHARE) == "train"][:6]
        test = [text for text in texts if split_for(text, TEST_SHARE) == "test"][:2]
        for text in train + test:
            (shown,) = app.service.moderate([text])
            verdict = app.service.judge(shown.id, "spam", reviewer="ana")
            app.service.set_status(verdict["id"], "accepted")
        client.predict("ana", api_name="/retrain")
        deadline = time.monotonic() + 120
        while (job := app.service.training()).state == "running":
            assert time.monotonic() < deadline, job.log
            time.sleep(0.2)
        assert job.state == "finished", job.log
        policy_file = app.service.jobs.folder / f"{job.name}-policy.toml"
        assert read_policy(policy_file) == app.service.settings.policy, "the published policy, with its two examples"
        assert app.service.settings.policy.labels == COMMUNITY.labels
        version = ModelVersion.read(job.folder)
        assert version.trained_policy == app.service.settings.policy and version.trained_policy.name == "community"
        assert version.policy["name"] == "community"
        client.close()
