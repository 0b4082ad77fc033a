"""``POST /v1/moderations`` (one text or a list), ``POST /v1/moderations/chat`` (a chat turn),
and ``GET /v1/models``: thin routes over the service."""

import uuid

import orjson
from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from feedback.api_keys import ApiKeys

from ..service import PlaygroundService
from .admission import Admission
from .errors import ApiError
from .protocol import ChatRequest, ChatResponse, ModerationRequest, ModerationResponse, Result


bearer = HTTPBearer(auto_error=False, description="An API key (see --api-keys).")


def moderation_router(service: PlaygroundService, *, record: bool = True, api_keys: ApiKeys | None = None) -> APIRouter:
    """The moderation routes; with ``record`` every result is kept in the feedback store like a page's; with
    ``api_keys`` they need ``Authorization: Bearer KEY``."""
    router = APIRouter()
    admission = Admission(service.limits.max_waiting)
    name = service.moderator.name

    def key_holder(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if api_keys is not None and (credentials is None or api_keys.owner(credentials.credentials) is None):
            raise HTTPException(401, "Send an API key: Authorization: Bearer KEY (keys are made with "
                                "'python -m feedback api-keys add NAME --file FILE').",
                                headers={"WWW-Authenticate": "Bearer"})

    keyed = [Depends(key_holder)]

    def served(model: str | None) -> None:
        if model not in (None, name):
            raise ApiError(404, f"The model {model!r} is not served here: use {name!r} or leave it out.", "model")

    @router.post("/v1/moderations", response_model=ModerationResponse, tags=["moderation"], dependencies=keyed)
    async def moderations(request: ModerationRequest) -> Response:
        """Label one text or a list of texts with the five moderation labels."""
        served(request.model)
        texts = request.input
        fields = ["input"] if isinstance(texts, str) else [f"input[{n}]" for n in range(len(texts))]
        results = await admission.run(service.label_soon, [texts] if isinstance(texts, str) else texts,
                                      fields=fields, record=record)
        return _json({"id": _id(), "model": name, "results": [Result.of(result) for result in results]})

    @router.post("/v1/moderations/chat", response_model=ChatResponse, tags=["moderation"], dependencies=keyed)
    async def chat(request: ChatRequest) -> Response:
        """Check a user's message and the bot's reply; the reply is replaced when either intervenes."""
        served(request.model)
        turn = await admission.run(service.check_turn_soon, request.user, request.bot, record=record)
        return _json({"id": _id(), "model": name, "user": Result.of(turn.user), "bot": Result.of(turn.bot),
                      "reply": turn.reply, "intervened": turn.intervened, "triggered_by": turn.triggered_by})

    @router.get("/v1/models", tags=["service"])
    def models() -> dict:
        """The model this server labels with."""
        return {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "moderation-playground"}]}

    @router.api_route("/v1/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    def unknown(path: str):
        raise ApiError(404, f"No route /v1/{path} for this method: see /docs for the API.")

    return router


def _json(body: dict) -> Response:
    """``body`` serialised at once (the route's response model documents it, and is not checked again)."""
    return Response(orjson.dumps(body), media_type="application/json")


def _id() -> str:
    return f"modr-{uuid.uuid4().hex}"
