"""``GET /healthz`` (the server is up, its model loaded, its database writable) and ``GET /metrics`` (Prometheus'
text format)."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
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

    health = {"model": Health, "content": {"application/json": {}}}

    @router.get("/healthz", response_model=Health, response_model_exclude_none=True,
                responses={**documented(), 503: {**health, "description": "Degraded: the feedback database cannot be "
                                                 "written (until a write succeeds again)."}})
    async def healthz() -> JSONResponse:
        """The server is up and its model is loaded (the version served now); 503 ``degraded``, with the reason,
        while the feedback database cannot be written (until a write succeeds again)."""
        failure = service.store.failure
        if failure is not None:
            return JSONResponse({"status": "degraded", "reason": failure, "model": service.moderator.name},
                                status_code=503)
        return JSONResponse({"status": "ok", "model": service.moderator.name})

    @router.get("/metrics", response_class=PrometheusText, responses=documented())
    async def metrics() -> PrometheusText:
        """Requests by route and status with their latency, batch sizes, queue depths, labels given, predictions
        lost, verdicts by status and the model's load time, in Prometheus' text format (at most ten times a second:
        faster scrapes wait their turn)."""
        return PrometheusText(await service.metrics.scrape())

    return router
