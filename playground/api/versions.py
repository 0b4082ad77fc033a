"""``POST /v1/versions/{version}/serve``: serve a version trained here, through the gate (for reviewers only, when
logins are on)."""

from fastapi import APIRouter, Depends, Path

from feedback.reviewers import Reviewers

from ..logins import LoginLimiter
from ..service import PlaygroundService
from .errors import documented
from .feedback import LOGIN_REFUSALS, reviewer_login
from .protocol import Served, serve_request


def versions_router(service: PlaygroundService, reviewers: Reviewers | None, limiter: LoginLimiter) -> APIRouter:
    """The route that serves a trained version; with ``reviewers``, it needs a reviewer's login, whose name it
    records."""
    router = APIRouter(prefix="/v1/versions", tags=["versions"])
    login = reviewer_login(reviewers, limiter, "to serve a version")
    ServeRequest = serve_request(service.limits)

    def nobody() -> None:
        return None

    @router.post("/{version}/serve", response_model=Served,
                 responses=documented(400, 404, 409, 413, *(LOGIN_REFUSALS if login else ())))
    def serve(request: ServeRequest, version: str = Path(description="A version trained here: its name (see GET "
                                                                     "/v1/models) or its folder's."),
              reviewer: str | None = Depends(login or nobody)) -> dict:
        """Compare the version with the serving model on the gate set and serve it if the gate allows it; 409 when
        it refuses, naming the figures and the texts. With a ``reason``, serve it even so (an override, kept in the
        serving history with who gave it and the refused figures)."""
        event = service.serve_version(version, reviewer=reviewer or request.reviewer, reason=request.reason)
        return {"model": event["version"], "action": event["action"], "gate": event["gate"]}

    return router
