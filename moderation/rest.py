"""The REST API, shaped like OpenAI's moderation API so existing clients work unchanged.

``POST /v1/moderations`` labels one text or a list; ``POST /v1/moderations/chat`` checks a chat turn;
``GET /v1/models`` and ``GET /healthz`` describe the server. Our five labels are the categories.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from .batcher import Busy
from .engine import ModerationResult, Moderator, TurnResult
from .labels import LABELS
from .prompt import normalize_text
from .remote import RemoteError


@dataclass(frozen=True)
class Limits:
    """How much one request may ask for, and how many requests may wait at once."""

    max_inputs: int = 64
    max_chars: int = 20_000
    max_waiting: int = 128


class Admission:
    """Counts the requests in flight; past ``limit`` a request is answered 503 "busy, retry" at once.

    Used from the event loop only (the routes are async and hand their work to worker threads),
    so the count needs no lock and is taken before a request waits for a thread.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.waiting = 0

    async def run(self, work, *args):
        """``work(*args)`` in a worker thread, or ApiError(503) when too many requests are in flight."""
        if self.waiting >= self.limit:
            raise ApiError(503, f"Busy: {self.waiting} requests are waiting; retry in a moment.")
        self.waiting += 1
        try:
            return await run_in_threadpool(work, *args)
        finally:
            self.waiting -= 1


class ModerationRequest(BaseModel):
    input: str | list[str] = Field(description="A text, or a list of texts, to moderate.")
    model: str | None = Field(None, description="The served model's id (see GET /v1/models); optional.")


class ChatRequest(BaseModel):
    user: str = Field(description="The user's message.")
    bot: str = Field(description="The chat bot's reply to it.")
    model: str | None = Field(None, description="The served model's id; optional.")


class Result(BaseModel):
    flagged: bool = Field(description="The label is anything but casual.")
    categories: dict[str, bool] = Field(description="Each label: true for the predicted one.")
    category_scores: dict[str, float] = Field(description="Each label's probability; they sum to 1.")
    label: str
    intervene: bool = Field(description="The label reaches the intervention threshold.")


class ModerationResponse(BaseModel):
    id: str
    model: str
    results: list[Result]


class ChatResponse(BaseModel):
    id: str
    model: str
    user: Result
    bot: Result
    reply: str = Field(description="The bot's reply, or the intervention message.")
    intervened: bool
    triggered_by: list[str] = Field(description="The sides (user, bot) that reached the threshold.")


class ApiError(Exception):
    """A request the API refuses: an HTTP status and a message saying what to change."""

    def __init__(self, status: int, message: str, param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param = status, message, param


def error_response(status: int, message: str, param: str | None = None) -> JSONResponse:
    """An error in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``."""
    kind = "invalid_request_error" if status < 500 else "server_error"
    body = {"error": {"message": message, "type": kind, "param": param, "code": status}}
    headers = {"Retry-After": "1"} if status == 503 else None
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Answer refused and malformed requests with a 4xx JSON error, never a 500 with a traceback."""

    @app.exception_handler(ApiError)
    async def refused(request: Request, error: ApiError):
        return error_response(error.status, error.message, error.param)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        response = error_response(error.status_code, str(error.detail))
        response.headers.update(error.headers or {})
        return response

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, error: RequestValidationError):
        worst = max(error.errors(), key=lambda item: len(item["loc"]))
        where = _field(worst["loc"])
        return error_response(400, f"Invalid request: {where or 'body'}: {worst['msg']}.", where or None)


def _field(location) -> str:
    """``('body', 'input', 'list[str]', 1)`` -> ``input[1]``: the field a client sent, without union branches."""
    field = ""
    for part in location[1:]:
        if isinstance(part, int):
            field += f"[{part}]"
        elif part not in ("str", "list[str]"):
            field += f".{part}" if field else part
    return field


def moderation_router(
    moderator: Moderator,
    submit: Callable[[list[str]], list[ModerationResult]],
    record: Callable[[ModerationResult, str | None], None] | None,
    limits: Limits = Limits(),
) -> APIRouter:
    """The routes, labelling through ``submit`` (a batcher's) and keeping each result with ``record``."""
    router = APIRouter()

    def check(texts: list[str], model: str | None, fields: list[str] | None = None) -> list[str]:
        if model not in (None, moderator.name):
            raise ApiError(404, f"The model {model!r} is not served here: use {moderator.name!r} or leave it out.", "model")
        if not texts:
            raise ApiError(400, "input is an empty list: give at least one text.", "input")
        if len(texts) > limits.max_inputs:
            raise ApiError(400, f"input has {len(texts)} texts; send at most {limits.max_inputs} per request.", "input")
        for number, text in enumerate(texts):
            field = fields[number] if fields else f"input[{number}]"
            if len(text) > limits.max_chars:
                raise ApiError(400, f"{field} has {len(text)} characters; the limit is {limits.max_chars}.", field)
            try:
                normalize_text(text)
            except ValueError as error:
                raise ApiError(400, f"{field}: {error}", field) from None
        return texts

    def label(texts: list[str]) -> list[ModerationResult]:
        try:
            return submit(texts)
        except Busy as error:
            raise ApiError(503, str(error)) from None
        except RemoteError as error:
            raise ApiError(502, str(error)) from None
        except ValueError as error:
            raise ApiError(400, str(error)) from None

    def keep(result: ModerationResult, role: str | None = None) -> Result:
        if record is not None:
            record(result, role)
        return Result(
            flagged=result.flagged,
            categories={name: name == result.label for name in LABELS},
            category_scores=result.scores,
            label=result.label,
            intervene=result.intervene,
        )

    admission = Admission(limits.max_waiting)

    @router.post("/v1/moderations", response_model=ModerationResponse, tags=["moderation"])
    async def moderations(request: ModerationRequest) -> ModerationResponse:
        """Label one text or a list of texts with the five moderation labels."""
        return await admission.run(moderate_texts, request)

    def moderate_texts(request: ModerationRequest) -> ModerationResponse:
        texts = check([request.input] if isinstance(request.input, str) else request.input, request.model)
        results = [keep(result) for result in label(texts)]
        return ModerationResponse(id=f"modr-{uuid.uuid4().hex}", model=moderator.name, results=results)

    @router.post("/v1/moderations/chat", response_model=ChatResponse, tags=["moderation"])
    async def chat(request: ChatRequest) -> ChatResponse:
        """Check a user's message and the bot's reply; the reply is replaced when either intervenes."""
        return await admission.run(check_turn, request)

    def check_turn(request: ChatRequest) -> ChatResponse:
        check([request.user, request.bot], request.model, ["user", "bot"])
        turn = TurnResult.of(*label([request.user, request.bot]), request.bot, moderator.intervention)
        return ChatResponse(
            id=f"modr-{uuid.uuid4().hex}",
            model=moderator.name,
            user=keep(turn.user, "user"),
            bot=keep(turn.bot, "bot"),
            reply=turn.reply,
            intervened=turn.intervened,
            triggered_by=turn.triggered_by,
        )

    @router.get("/v1/models", tags=["service"])
    def models() -> dict:
        """The model this server labels with."""
        return {"object": "list", "data": [{"id": moderator.name, "object": "model", "owned_by": "moderation-playground"}]}

    @router.get("/healthz", tags=["service"])
    def healthz() -> dict:
        """The server is up and its model is loaded."""
        return {"status": "ok", "model": moderator.name}

    @router.api_route("/v1/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    def unknown(path: str):
        raise ApiError(404, f"No route /v1/{path} for this method: see /docs for the API.")

    return router
