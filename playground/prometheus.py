"""The app's Prometheus metrics (``GET /metrics``): requests by route and status with their latency, batch sizes,
queue depths, labels given, predictions lost (acknowledged, then not committed), verdicts by status, the model's
load time, and the texts the shadow labelled and dropped.

Each service has its own registry, so several apps in one process (as in the tests) never share counts.
"""

import asyncio
import time

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
SCRAPE_INTERVAL_S = 0.1
"""/metrics answers at most once in this time: scrapes that come faster wait their turn. An exposition takes
milliseconds of CPU, so clients scraping without pause would otherwise take the server's time from the requests it
serves; Prometheus scrapes every few seconds, and never waits."""
UNROUTED = "unrouted"
"""The route label of a request that matched no route (so that unknown paths cannot add labels without end)."""


class Metrics:
    """The counters, histograms and gauges of one service, in a registry of their own."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("moderation_http_requests", "HTTP requests answered, by route, method and status.",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("moderation_http_request_duration_seconds", "Time to answer an HTTP request.",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch_size = Histogram("moderation_batch_size", "Texts labelled together in one call of the model.",
                                    buckets=BATCH_BUCKETS, registry=self.registry)
        self.labels = Counter("moderation_labels", "Labels given, by label.", ["label"], registry=self.registry)
        self._turn = asyncio.Lock()
        self._last = float("-inf")

    def watch(self, service) -> None:
        """Read the service's queue depths, verdict counts and model load time whenever metrics are scraped."""
        self.registry.register(_ServiceState(service))

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)

    async def scrape(self) -> bytes:
        """:meth:`exposition`, made in a worker thread, at most once every :data:`SCRAPE_INTERVAL_S`."""
        async with self._turn:
            await asyncio.sleep(self._last + SCRAPE_INTERVAL_S - time.monotonic())
            self._last = time.monotonic()
            return await asyncio.to_thread(self.exposition)


class _ServiceState:
    """A collector of what is read from the service at scrape time: counts the service keeps as things happen,
    never a query of the database, nor its lock."""

    def __init__(self, service):
        self.service = service

    def collect(self):
        service = self.service
        shadow = service.serving.shadow
        depth = GaugeMetricFamily("moderation_queue_depth", "Work waiting, by queue.", labels=["queue"])
        depth.add_metric(["batcher"], service.batcher.depth)
        depth.add_metric(["prediction_writer"], service.writer.depth)
        if shadow is not None:
            depth.add_metric(["shadow"], shadow.depth)
        yield depth
        if shadow is not None:
            texts = CounterMetricFamily("moderation_shadow_texts", "Texts the serving model answered that were handed "
                                        "to the shadow running now: labelled, or dropped because it fell behind.",
                                        labels=["outcome"])
            texts.add_metric(["labelled"], shadow.labelled)
            texts.add_metric(["dropped"], shadow.dropped)
            yield texts
        yield CounterMetricFamily("moderation_predictions_lost", "REST predictions answered whose batch then failed "
                                  "to commit (a full disk): not in the database.", value=service.writer.lost)
        verdicts = GaugeMetricFamily("moderation_verdicts", "Verdicts in the database, by status.", labels=["status"])
        for status, count in service.store.connection.verdicts_by_status().items():
            verdicts.add_metric([status], count)
        yield verdicts
        loaded = service.moderator.load_seconds
        if loaded is not None:
            yield GaugeMetricFamily("moderation_model_load_seconds", "How long the model took to load.", value=loaded)


class CountRequests:
    """ASGI middleware that counts each HTTP request in ``metrics`` by its route's template and status."""

    def __init__(self, app, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = 500  # what the client gets when the app fails before answering
        start = time.perf_counter()

        async def sending(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", None) or UNROUTED
            self.metrics.requests.labels(name, scope["method"], str(status)).inc()
            self.metrics.latency.labels(name).observe(time.perf_counter() - start)
