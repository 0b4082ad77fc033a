"""``python app.py`` in its own process on its default model, and the race between publishing the default
prompt and API traffic, both in this process (fake backend) and against that real server (demo model)."""

import threading
import time
import urllib.request

import httpx
import pytest
import sqlite_utils
from gradio_client import Client
from servers import running_app

from moderation.prompt import PromptTemplate

CLIENTS = 8
PUBLISHES = 30


@pytest.fixture(scope="module")
def real_app(demo_model_dir, tmp_path_factory):
    """``python app.py`` with no --model: offline and without a GPU, its default is the demo model."""
    db_path = tmp_path_factory.mktemp("real-app") / "feedback.db"
    with running_app(None, db_path) as url:
        yield url, db_path


@pytest.mark.slow
@pytest.mark.xdist_group("real-app")  # one python app.py for both
def test_the_app_starts_on_its_default_model_and_serves_page_and_api(real_app):
    url, _ = real_app
    page = urllib.request.urlopen(url, timeout=30).read().decode()
    assert "<title>Moderation Playground</title>" in page or "gradio" in page.lower()
    assert httpx.get(url + "healthz").json() == {"status": "ok", "model": "playground-demo-gptj"}
    client = Client(url, verbose=False)
    label, _, prompt, _ = client.predict("Good morning, how are you?", "score", api_name="/moderate")
    client.close()
    assert prompt == PromptTemplate().assemble("Good morning, how are you?") and label["label"]
    metrics = httpx.get(url + "metrics").text
    (loaded,) = [line for line in metrics.splitlines() if line.startswith("moderation_model_load_seconds ")]
    assert float(loaded.split()[1]) > 0


def publish_while_moderating(url: str, db_path) -> None:
    """8 REST clients moderate while another session publishes the default 30 times, and a third session
    holds a draft: no errors, every prediction names a stored template, and the API ends on the last
    published template, never the draft."""
    drafting, publishing = Client(url, verbose=False), Client(url, verbose=False)
    _, status = drafting.predict({"headers": ["text", "label"], "data": [["A draft nobody else sees", "casual"]]},
                                 "never", api_name="/set_prompt")
    draft_id = status.split()[1]
    stop, errors, answered = threading.Event(), [], [0]

    def moderate(number: int):
        with httpx.Client(base_url=url, timeout=60) as http:
            while not stop.is_set():
                answer = http.post("v1/moderations", json={"input": [f"client {number} says hello", "and bye"]})
                if answer.status_code != 200:
                    errors.append(answer.text)
                answered[0] += 1

    threads = [threading.Thread(target=moderate, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        for number in range(PUBLISHES):
            examples = [[f"Published example number {number}", "casual"], ["I will hurt you", "needs intervention"]]
            _, status = publishing.predict({"headers": ["text", "label"], "data": examples}, "needs caution",
                                           api_name="/publish_prompt")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        drafting.close()
        publishing.close()
    last_id = status.split()[1]
    assert errors == [] and answered[0] >= CLIENTS
    after = httpx.post(url + "v1/moderations", json={"input": "the last word"}).json()
    assert after["results"][0]["label"]
    db = sqlite_utils.Database(db_path)
    deadline = time.monotonic() + 30  # the API's predictions are committed by the writer, moments after the answer
    while not db["predictions"].count_where("text = 'the last word'") and time.monotonic() < deadline:
        time.sleep(0.05)
    stored = {row["id"] for row in db["templates"].rows}
    used = [row["template"] for row in db.query("select template from predictions order by id")]
    assert set(used) <= stored, "a prediction names a template that is not stored"
    assert used[-1] == last_id and draft_id not in used


@pytest.mark.slow
def test_publishing_races_no_api_request_in_this_process(fake_app):
    publish_while_moderating(fake_app.url, fake_app.db_path)


@pytest.mark.slow
@pytest.mark.xdist_group("real-app")  # one python app.py for both
def test_publishing_races_no_api_request_on_a_real_server(real_app):
    publish_while_moderating(*real_app)
