"""Errors in OpenAI's shape. The user's mistakes (and a busy or unreachable model) say what to change;
anything else is a bug: a 500 with a generic message, and the traceback in the server's log."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from moderation.errors import Busy, Conflict, InvalidInput, ModelLoadError, NotFound, RemoteError, Unavailable

from .protocol import ErrorResponse

log = logging.getLogger("playground.api")

STATUS = {InvalidInput: 400, ModelLoadError: 400, NotFound: 404, Conflict: 409, RemoteError: 502, Busy: 503,
          Unavailable: 503}
"""The HTTP status of each kind of error a client can act on."""

ANSWERS = {
    400: "The request is malformed or breaks a limit: the message says what to change.",
    401: "The credentials are missing or wrong: the message says what to send.",
    404: "What the request names is not here (a model not served, a version never trained here, a verdict or a batch "
         "that does not exist): the message says what is.",
    409: "The request conflicts with the state of things (an Idempotency-Key sent before with another request, a "
         "verdict that changed since it was shown, a version the gate refuses): the message says what changed and "
         "what to do.",
    413: "The request body is over the server's limit (--max-body).",
    429: "Too many failed logins: retry after Retry-After seconds.",
    500: "A failure of the server itself: a generic message (the server's log has the details).",
    502: "The vLLM server that labels (--backend vllm) cannot be reached or answered badly.",
    503: "Too many requests are waiting (--max-waiting): retry after Retry-After seconds.",
}
"""What each error status of the API means, as its OpenAPI document says."""
HEADERS = {401: "WWW-Authenticate", 429: "Retry-After", 503: "Retry-After"}
"""The header that every answer with this status carries."""

INTERNAL = "Internal error: the server failed to answer this request. Its log has the details."


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


def documented(*statuses: int) -> dict:
    """The ``responses`` of a route that may answer ``statuses`` (and 500, as any route may): JSON in the error
    model, whatever the route answers when it succeeds, and the header that the status carries, if any."""
    error = {"application/json": {"schema": {"$ref": f"#/components/schemas/{ErrorResponse.__name__}"}}}
    return {status: {"description": ANSWERS[status], "content": error,
                     **({"headers": {HEADERS[status]: {"required": True, "schema": {"type": "string"}}}}
                        if status in HEADERS else {})}
            for status in sorted({*statuses, 500})}


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error as JSON in OpenAI's shape, never with a traceback."""

    @app.exception_handler(ApiError)
    async def refused(request: Request, error: ApiError):
        return error_response(error.status, error.message, error.param)

    for kind, status in STATUS.items():
        app.add_exception_handler(kind, _answer_with(status))

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

    app.add_middleware(BugsAreServerErrors)


class BugsAreServerErrors:
    """ASGI middleware: an exception that no handler answered is a bug. The client gets a 500 with a generic
    message (never the exception's text), and the traceback is logged once, naming the route."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def sending(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            log.exception("%s %s failed", scope["method"], scope["path"])
            if started:  # too late for an error answer: the connection is cut
                raise
            await error_response(500, INTERNAL)(scope, receive, send)


def _answer_with(status: int):
    async def answer(request: Request, error: Exception):
        return error_response(status, str(error), getattr(error, "param", None))

    return answer


def _field(location) -> str:
    """``('body', 'input', 'list[str]', 1)`` -> ``input[1]``: the field a client sent, without union branches."""
    field = ""
    for part in location[1:]:
        if isinstance(part, int):
            field += f"[{part}]"
        elif part not in ("str", "list[str]"):
            field += f".{part}" if field else part
    return field
