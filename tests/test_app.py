"""``python app.py`` in its own process on its default model, through its life (it serves, survives the race
between publishing the default prompt and API traffic, and stops cleanly), and the same race in this process
(fake backend)."""

import threading
import time
import urllib.request

import httpx
import pytest
import sqlite_utils
from gradio.utils import get_upload_folder
from servers import ApiStream, PageClient, stored_texts

from bench.app_process import running_app
from moderation.templates import PromptTemplate
from playground.scratch import runs_folder

CLIENTS = 8
PUBLISHES = 30


def publish_while_moderating(url: str, db_path) -> None:
    """8 REST clients moderate while another session publishes the default 30 times, and a third session
    holds a draft: no errors, every prediction names a stored template, and the API ends on the last
    published template, never the draft."""
    drafting, publishing = PageClient(url), PageClient(url)
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


def serves_page_and_api(url: str) -> None:
    """The page, /healthz on the default model, a moderation through the page's API and the model's metrics."""
    page = urllib.request.urlopen(url, timeout=30).read().decode()
    assert "<title>Moderation Playground</title>" in page or "gradio" in page.lower()
    assert httpx.get(url + "healthz").json() == {"status": "ok", "model": "playground-demo-gptj"}
    client = PageClient(url)
    label, _, prompt, _ = client.predict("Good morning, how are you?", "score", api_name="/moderate")
    client.close()
    assert prompt == PromptTemplate().assemble("Good morning, how are you?") and label["label"]
    metrics = httpx.get(url + "metrics").text
    (loaded,) = [line for line in metrics.splitlines() if line.startswith("moderation_model_load_seconds ")]
    assert float(loaded.split()[1]) > 0


@pytest.mark.slow
def test_the_app_on_its_default_model_serves_survives_the_race_and_stops_cleanly(demo_model_dir, tmp_path):
    """``python app.py`` with no --model: offline and without a GPU, its default is the demo model. Stopped as an
    operator (or a container runtime) stops it, with SIGTERM, it keeps every API prediction it acknowledged: a
    clean stop commits what the writer still holds."""
    db_path = tmp_path / "feedback.db"
    scratch = runs_folder(get_upload_folder(), db_path)
    with running_app(None, db_path, log=tmp_path / "app.log") as (url, process):
        serves_page_and_api(url)
        publish_while_moderating(url, db_path)
        assert len(list(scratch.glob("run-*"))) == 1, "the server's scratch folder"
        posting = ApiStream(url, "stopped")
        poster = threading.Thread(target=posting.run, daemon=True)
        poster.start()
        deadline = time.monotonic() + 30
        while len(posting.acked) < 10 and time.monotonic() < deadline:  # stopped while it posts
            time.sleep(0.01)
        process.terminate()
        process.wait(timeout=30)  # uvicorn stops gracefully, then ends by the signal it caught
        poster.join(timeout=30)
    assert posting.acked and set(posting.acked) <= stored_texts(db_path), "a clean stop lost API predictions"
    assert not scratch.exists(), "the scratch folder (uploads, downloads) outlived the server"
    assert {oct(path.stat().st_mode & 0o777) for path in tmp_path.glob("feedback.db*")} == {"0o600"}
