"""A bound on request bodies: past ``--max-body`` bytes a request gets 413 before it is parsed (file uploads have a
bound of their own, ``--max-upload``)."""

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException

from .errors import error_response

DRAIN_LIMIT = 64 * 2**20
"""Bytes of a refused body read and thrown away before the 413, so that a client that sends its whole body
before reading the answer gets it (instead of a reset connection); past this the connection is just closed."""


def too_large(limit: int, option: str = "--max-body") -> str:
    """What a client whose body is over ``limit`` bytes (set by ``option``) is told."""
    return f"The request body is over the server's limit of {limit} bytes ({option}): send less."


class BodyLimit:
    """ASGI middleware: a request whose Content-Length says more than ``max_body`` bytes is answered 413 without
    being parsed (what it sends is read and thrown away, up to :data:`DRAIN_LIMIT`); a body streamed without a
    length is counted as it is read, and reading past the limit raises a 413 that the app's error handlers
    answer. ``bounds`` gives paths a limit of their own: ``{path: (bytes, the option that sets it)}``."""

    def __init__(self, app, max_body: int, bounds: dict[str, tuple[int, str]] | None = None):
        self.app = app
        self.max_body = max_body
        self.bounds = bounds or {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit, option = self.bounds.get(scope["path"], (self.max_body, "--max-body"))
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > limit:
            await _drain(receive, min(int(length), DRAIN_LIMIT))
            return await error_response(413, too_large(limit, option))(scope, receive, send)
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, too_large(limit, option))
            return message

        await self.app(scope, counted, send)


async def _drain(receive, limit: int) -> None:
    """Read up to ``limit`` bytes of the request body and throw them away."""
    drained = 0
    while drained < limit:
        message = await receive()
        if message["type"] != "http.request":
            return
        drained += len(message.get("body", b""))
        if not message.get("more_body"):
            return
