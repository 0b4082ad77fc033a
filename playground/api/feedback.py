"""``GET /v1/feedback/export`` (jsonl, streamed), ``GET /v1/feedback/stats``, ``POST /v1/feedback/verdicts/bulk`` and
``POST /v1/feedback/batches/{batch_id}/undo``: for reviewers only, when logins are on."""

from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from feedback.ids import LARGEST
from feedback.reviewers import Reviewers

from ..logins import LoginLimiter, client_address
from ..service import PlaygroundService
from .errors import documented
from .protocol import MOMENTS, CurationDone, Undone, absent_or, curation_request

basic = HTTPBasic(auto_error=False, description="A reviewer's name and password (see --auth).")


class JsonLines(StreamingResponse):
    """One JSON object a line, streamed."""

    media_type = "application/x-ndjson"


def reviewer_login(reviewers: Reviewers | None, limiter: LoginLimiter, what: str):
    """With ``reviewers``, the dependency that checks a reviewer's HTTP Basic login (limited by ``limiter``, as the
    page's logins are) and gives their name; the 401 says it is needed ``what`` for. None when logins are off."""
    if reviewers is None:
        return None

    def reviewer(request: Request, credentials: HTTPBasicCredentials | None = Depends(basic)) -> str:
        if credentials is None or not limiter.check(
                credentials.username, client_address(request.scope),
                lambda: reviewers.check(credentials.username, credentials.password)):
            raise HTTPException(401, f"Log in as a reviewer (HTTP Basic) {what}.",
                                headers={"WWW-Authenticate": 'Basic realm="moderation-playground"'})
        return credentials.username

    return reviewer


LOGIN_REFUSALS = (401, 429)
"""What a route behind a reviewer's login may answer for it."""


def feedback_router(service: PlaygroundService, reviewers: Reviewers | None, limiter: LoginLimiter) -> APIRouter:
    """The feedback routes; with ``reviewers``, each needs a reviewer's HTTP Basic login (limited by ``limiter``,
    as the page's logins are), and only then does the OpenAPI document ask for one."""
    reviewer = reviewer_login(reviewers, limiter, "to read feedback")
    logins, refusals = ([Depends(reviewer)], LOGIN_REFUSALS) if reviewer is not None else ([], [])
    router = APIRouter(prefix="/v1/feedback", tags=["feedback"], dependencies=logins)
    curator = reviewer if reviewers is not None else lambda: None  # who curates: the login (checked once a request)
    CurationChange = curation_request(service.limits)

    @router.get("/export", response_class=JsonLines, responses=documented(400, *refusals))
    def export(
        format: Literal["oig", "full"] = Query("oig", description="oig: training records; full: every field"),
        status: Literal["pending", "accepted", "discarded"] | None = Query(None, description="only this status"),
        since: str | None = Query(None, description="only verdicts given since: a date like 2026-11-29, or a time "
                                  "like 2026-11-29T14:30:00Z (UTC unless it says otherwise)",
                                  json_schema_extra=absent_or(*MOMENTS)),
        split: Literal["train", "test"] | None = Query(None, description="only the texts of this split: train (what "
                                                      "retraining learns from) or test (what judges a version)"),
    ) -> JsonLines:
        """The verdicts as jsonl, streamed row by row; each carries its text's split (null until it is accepted)."""
        return JsonLines(service.export_lines(format=format, status=status, since=since, split=split))

    @router.get("/stats", responses=documented(*refusals))
    def stats() -> dict:
        """Counts, the model's labels against the reviewers', agreement between reviewers, daily figures, the queue
        (the figures of ``python -m feedback stats --json``)."""
        return service.stats()

    @router.post("/batches/{batch_id}/undo", responses=documented(400, 404, 409, *refusals))
    def undo(batch_id: int = Path(ge=1, le=LARGEST, description="The batch, as a bulk change answered it."),
             by: str | None = Depends(curator)) -> Undone:
        """Take a batch back: each of its verdicts gets the status and label it had before, in one transaction; 409
        when the batch was undone already, or one of its verdicts changed since (the message names it)."""
        done = service.undo(batch_id, curator=by)
        return {"batch": done["batch"], "restored": [row["id"] for row in done["restored"]]}

    @router.post("/verdicts/bulk", responses=documented(400, 404, 409, *refusals))
    def bulk(change: CurationChange, by: str | None = Depends(curator)) -> CurationDone:
        """Set the status and/or the label of many verdicts in one transaction, recorded as one batch (which undo
        takes back): those listed, or every verdict the filters keep. When a listed verdict changed since the updated
        time given (or is gone), nothing changes: 409 names it and says what changed."""
        shown = ({verdict.id: verdict.updated for verdict in change.verdicts} if change.verdicts is not None else
                 service.matching(**change.filters.model_dump()))
        return CurationDone.of(service.change(shown, status=change.status, label=change.label, curator=by))

    return router
