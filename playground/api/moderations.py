"""``POST /v1/moderations`` (one text or a list), ``POST /v1/moderations/chat`` (a chat turn),
``GET /v1/models`` and ``GET /healthz``: thin routes over the service."""

import uuid

from fastapi import APIRouter

from ..service import PlaygroundService
from .admission import Admission
from .errors import ApiError
from .protocol import ChatRequest, ChatResponse, ModerationRequest, ModerationResponse, Result


def moderation_router(service: PlaygroundService, *, record: bool = True) -> APIRouter:
    """The moderation routes; with ``record`` every result is kept in the feedback store like a page's."""
    router = APIRouter()
    admission = Admission(service.limits.max_waiting)

    def served(model: str | None) -> None:
        name = service.moderator.name  # the version served now: it changes when another is served
        if model not in (None, name):
            raise ApiError(404, f"The model {model!r} is not served here: use {name!r} or leave it out.", "model")

    @router.post("/v1/moderations", response_model=ModerationResponse, tags=["moderation"])
    async def moderations(request: ModerationRequest) -> ModerationResponse:
        """Label one text or a list of texts with the five moderation labels."""
        served(request.model)
        return await admission.run(moderate, request.input)

    def moderate(texts: str | list[str]) -> ModerationResponse:
        fields = ["input"] if isinstance(texts, str) else [f"input[{n}]" for n in range(len(texts))]
        texts = [texts] if isinstance(texts, str) else texts
        shown = service.moderate(texts, fields=fields, record=record)
        results = [Result.of(item.result) for item in shown]
        return ModerationResponse(id=_id(), model=shown[0].result.model, results=results)

    @router.post("/v1/moderations/chat", response_model=ChatResponse, tags=["moderation"])
    async def chat(request: ChatRequest) -> ChatResponse:
        """Check a user's message and the bot's reply; the reply is replaced when either intervenes."""
        served(request.model)
        return await admission.run(check_turn, request)

    def check_turn(request: ChatRequest) -> ChatResponse:
        turn, _, _ = service.check_turn(request.user, request.bot, record=record)
        return ChatResponse(id=_id(), model=turn.user.model, user=Result.of(turn.user), bot=Result.of(turn.bot),
                            reply=turn.reply, intervened=turn.intervened, triggered_by=turn.triggered_by)

    @router.get("/v1/models", tags=["service"])
    def models() -> dict:
        """The model this server labels with."""
        card = {"id": service.moderator.name, "object": "model", "owned_by": "moderation-playground"}
        return {"object": "list", "data": [card]}

    @router.get("/healthz", tags=["service"])
    def healthz() -> dict:
        """The server is up and its model is loaded."""
        return {"status": "ok", "model": service.moderator.name}

    @router.api_route("/v1/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    def unknown(path: str):
        raise ApiError(404, f"No route /v1/{path} for this method: see /docs for the API.")

    return router


def _id() -> str:
    return f"modr-{uuid.uuid4().hex}"
