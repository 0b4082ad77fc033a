"""``GET /healthz`` (the server is up, its model loaded) and ``GET /metrics`` (Prometheus' text format)."""

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from ..service import PlaygroundService
from .errors import documented
from .protocol import Health


class PrometheusText(Response):
    """Prometheus' text format."""

    media_type = CONTENT_TYPE_LATEST


def monitoring_router(service: PlaygroundService) -> APIRouter:
    """The routes a load balancer and Prometheus call."""
    router = APIRouter(tags=["service"])

    @router.get("/healthz", response_model=Health, responses=documented())
    async def healthz() -> dict:
        """The server is up and its model is loaded (the version served now)."""
        return {"status": "ok", "model": service.moderator.name}

    @router.get("/metrics", response_class=PrometheusText, responses=documented())
    def metrics() -> PrometheusText:
        """Requests by route and status with their latency, batch sizes, queue depths, labels given, verdicts by
        status and the model's load time, in Prometheus' text format."""
        return PrometheusText(service.metrics.exposition())

    return router
