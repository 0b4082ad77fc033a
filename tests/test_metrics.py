"""GET /metrics in Prometheus' format: requests by route and status, latency, batches, queues, labels, verdicts."""

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from prometheus_client.parser import text_string_to_metric_families
from servers import PageClient

from playground.prometheus import SCRAPE_INTERVAL_S


def scrape(url) -> dict:
    """{(sample name, frozenset of labels): value} from /metrics, parsed with prometheus_client's own parser."""
    answer = httpx.get(url + "metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(answer.text) for sample in family.samples}


def value(samples, name, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_count_the_requests_labels_batches_and_verdicts(fake_app):
    before = scrape(fake_app.url)
    for text in ("hello there", "you idiot", "I will hurt you"):
        assert httpx.post(fake_app.url + "v1/moderations", json={"input": text}).status_code == 200
    assert httpx.post(fake_app.url + "v1/moderations", json={"input": ""}).status_code == 400
    client = PageClient(fake_app.url)
    label, _, _, prediction_id = client.predict("I hate mondays", "score", api_name="/moderate")
    client.predict(prediction_id, "", "ana", api_name="/confirm")
    after = scrape(fake_app.url)

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    route = dict(route="/v1/moderations", method="POST")
    assert grew("moderation_http_requests_total", **route, status="200") == 3
    assert grew("moderation_http_requests_total", **route, status="400") == 1
    assert grew("moderation_http_request_duration_seconds_count", route="/v1/moderations") == 4
    assert grew("moderation_labels_total", label="casual") == 1
    assert grew("moderation_labels_total", label="probably needs caution") == 1
    assert grew("moderation_labels_total", label="needs intervention") == 1
    assert grew("moderation_labels_total", label="possibly needs caution") == 1
    assert grew("moderation_batch_size_count") == 4 and grew("moderation_batch_size_sum") == 4
    assert grew("moderation_verdicts", status="pending") == 1
    assert value(after, "moderation_queue_depth", queue="batcher") == 0
    assert ("moderation_queue_depth", frozenset({("queue", "prediction_writer")})) in after
    unknown = httpx.get(fake_app.url + "no/such/page/at/all")
    assert unknown.status_code == 404
    assert not any("no/such" in str(labels) for _, labels in scrape(fake_app.url)), "unknown paths add no labels"


def test_metrics_answer_at_once_while_the_database_is_busy(fake_app):
    client = PageClient(fake_app.url)
    label, _, _, prediction_id = client.predict("Counted as it happens", "score", api_name="/moderate")
    client.predict(prediction_id, "", "ana", api_name="/confirm")
    client.close()
    pending = value(scrape(fake_app.url), "moderation_verdicts", status="pending")
    with fake_app.service.store.connection.lock:  # as a long write would hold it
        answer = httpx.get(fake_app.url + "metrics", timeout=5)
    assert answer.status_code == 200, "/metrics waited for the store's lock"
    assert f'moderation_verdicts{{status="pending"}} {pending}' in answer.text


def test_clients_scraping_without_pause_get_a_few_expositions_a_second(fake_app):
    start = time.monotonic()
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: httpx.get(fake_app.url + "metrics", timeout=30), range(6)))
    assert all(answer.status_code == 200 for answer in answers)
    assert time.monotonic() - start >= 5 * SCRAPE_INTERVAL_S, "six scrapes at once were not paced"
