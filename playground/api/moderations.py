"""``POST /v1/moderations`` (one text or a list), ``POST /v1/moderations/chat`` (a chat turn),
and ``GET /v1/models`` (the serving model, its shadow and the trained versions): thin routes over the service."""

import uuid

import orjson
from fastapi import APIRouter, Depends, Header, HTTPException
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from feedback.api_keys import ApiKeys
from feedback.idempotency import MAX_KEY
from moderation.results import TurnResult

from ..service import PlaygroundService
from .admission import Admission
from .errors import documented
from .patterns import HTTP_WHITESPACE, header_token
from .protocol import ChatResponse, ModelList, ModerationResponse, PolicyCard, Result, absent_or, request_models

bearer = HTTPBearer(auto_error=False, description="An API key (see --api-keys).")
IDEMPOTENCY = Header(None, description=f"Any unique string of up to {MAX_KEY} printable characters (a UUID): a retry "
                     "with the same key (within the keys' lifetime, 24 h by default) gets the first answer again, "
                     "and records nothing.",
                     json_schema_extra=absent_or({"type": "string", "pattern": header_token(MAX_KEY)}))


def moderation_router(service: PlaygroundService, *, record: bool = True, api_keys: ApiKeys | None = None) -> APIRouter:
    """The moderation routes; with ``record`` every result is kept in the feedback store like a page's; with
    ``api_keys`` they need ``Authorization: Bearer KEY``."""
    router = APIRouter()
    admission = Admission(service.limits.max_waiting)
    ModerationRequest, ChatRequest = request_models(service.limits)

    def key_holder(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if credentials is None or api_keys.owner(credentials.credentials) is None:
            raise HTTPException(401, "Send an API key: Authorization: Bearer KEY (keys are made with "
                                "'python -m feedback api-keys add NAME --file FILE').",
                                headers={"WWW-Authenticate": "Bearer"})

    keyed = [Depends(key_holder)] if api_keys is not None else []
    answers = documented(400, 404, 409, 413, 502, 503, *([401] if api_keys is not None else []))

    async def answer(route: str, request, idempotency_key: str | None, texts: list[str], fields: list[str],
                     roles: list[str] | None, respond) -> Response:
        """``respond(answer)`` as JSON from the model the request names (404 listing them for another): labelled
        now, or with an idempotency key, the key's answer."""
        service.served(request.model)
        if idempotency_key is None:
            answered = await admission.run(service.answer, texts, fields=fields, roles=roles, record=record,
                                           response_id=_id(), model=request.model)
        else:
            answered = await admission.run(service.answer_once, idempotency_key.strip(HTTP_WHITESPACE),
                                           f"{route} {request.model_dump_json()}", texts, fields=fields, roles=roles,
                                           record=record, response_id=_id(), model=request.model)
        return _json(respond(answered))

    @router.post("/v1/moderations", response_model=ModerationResponse, responses=answers, tags=["moderation"],
                 dependencies=keyed)
    async def moderations(request: ModerationRequest, idempotency_key: str | None = IDEMPOTENCY) -> Response:
        """Label one text or a list of texts with the default model in the published policy (the card's five labels by
        default), or with the served ``model`` named, in its own."""
        texts = [request.input] if isinstance(request.input, str) else request.input
        fields = ["input"] if isinstance(request.input, str) else [f"input[{n}]" for n in range(len(texts))]
        return await answer(
            "/v1/moderations", request, idempotency_key, texts, fields, None,
            lambda answered: {"id": answered.id, "model": answered.results[0].model,
                              "results": [Result.of(result) for result in answered.results]})

    @router.post("/v1/moderations/chat", response_model=ChatResponse, responses=answers, tags=["moderation"],
                 dependencies=keyed)
    async def chat(request: ChatRequest, idempotency_key: str | None = IDEMPOTENCY) -> Response:
        """Check a user's message and the bot's reply (shown to a guard format with the message it answers) with the
        default model or the served ``model`` named; the reply is replaced when either intervenes."""

        def respond(answered):
            turn = TurnResult.of(*answered.results, request.bot, answered.intervention)
            return {"id": answered.id, "model": turn.user.model, "user": Result.of(turn.user),
                    "bot": Result.of(turn.bot), "reply": turn.reply, "intervened": turn.intervened,
                    "triggered_by": turn.triggered_by}

        return await answer("/v1/moderations/chat", request, idempotency_key, [request.user, request.bot],
                            ["user", "bot"], ["user", "bot"], respond)

    @router.get("/v1/models", response_model=ModelList, responses=documented(), tags=["service"])
    def models() -> dict:
        """The models this server labels with (the default first, then those served beside it), the shadow beside
        the default (if one runs), and the other versions trained here (which can be served through the gate)."""
        served = service.served_models()
        roles = {model.name: ("serving", model.settings.policy) for model in served}
        shadow = service.serving.shadow
        if shadow:
            roles.setdefault(shadow.name, ("shadow", served[0].settings.policy))
        for version in service.versions():
            roles.setdefault(version["name"], ("trained", version["policy"]))
        default = served[0].name
        return {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "moderation-playground",
                                            "role": role, "default": name == default, "policy": PolicyCard.of(policy)}
                                           for name, (role, policy) in roles.items()]}

    return router


def _json(body: dict) -> Response:
    """``body`` serialised at once (the route's response model documents it, and is not checked again)."""
    return Response(orjson.dumps(body), media_type="application/json")


def _id() -> str:
    return f"modr-{uuid.uuid4().hex}"
