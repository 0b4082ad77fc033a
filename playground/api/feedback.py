"""``GET /v1/feedback/export`` (jsonl, streamed) and ``GET /v1/feedback/stats``: for reviewers only, when logins
are on."""

from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from feedback.reviewers import Reviewers

from ..logins import LoginLimiter, client_address
from ..service import PlaygroundService

basic = HTTPBasic(auto_error=False, description="A reviewer's name and password (see --auth).")


def feedback_router(service: PlaygroundService, reviewers: Reviewers | None, limiter: LoginLimiter) -> APIRouter:
    """The feedback routes; with ``reviewers``, each needs a reviewer's HTTP Basic login (limited by ``limiter``,
    as the page's logins are)."""

    def reviewer(request: Request, credentials: HTTPBasicCredentials | None = Depends(basic)) -> str | None:
        if reviewers is None:
            return None
        if credentials is None or not limiter.check(
                credentials.username, client_address(request.scope),
                lambda: reviewers.check(credentials.username, credentials.password)):
            raise HTTPException(401, "Log in as a reviewer (HTTP Basic) to read feedback.",
                                headers={"WWW-Authenticate": 'Basic realm="moderation-playground"'})
        return credentials.username

    router = APIRouter(prefix="/v1/feedback", tags=["feedback"], dependencies=[Depends(reviewer)])

    @router.get("/export")
    def export(
        format: Literal["oig", "full"] = Query("oig", description="oig: training records; full: every field"),
        status: Literal["pending", "accepted", "discarded"] | None = Query(None, description="only this status"),
        since: str | None = Query(None, description="only verdicts given since, like 2026-11-29"),
    ) -> StreamingResponse:
        """The verdicts as jsonl, streamed row by row."""
        return StreamingResponse(service.export_lines(format=format, status=status, since=since),
                                 media_type="application/x-ndjson")

    @router.get("/stats")
    def stats() -> dict:
        """Counts, the model's labels against the reviewers', agreement between reviewers, daily figures, the queue
        (the figures of ``python -m feedback stats --json``)."""
        return service.stats()

    return router
