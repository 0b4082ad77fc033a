"""Bounds on requests: past ``--max-body`` bytes a request gets 413 before it is parsed (file uploads have a bound
of their own, ``--max-upload``), and an upload that would keep more than ``--max-uploads`` bytes on the server (or a
client's share of it) gets 429 before it is read."""

import json

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException

from ..logins import CLIENT
from ..uploads import UploadRefused, Uploads
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


class UploadQuota:
    """ASGI middleware on the page's upload ``route``: an upload is counted against its client address and the
    server as ``Content-Length`` bytes (``max_request`` without one) while it comes in, then as the files it stored
    until the call that uses them ends; one that would take either past its bound is answered 429 unread."""

    def __init__(self, app, uploads: Uploads, route: str, max_request: int):
        self.app = app
        self.uploads = uploads
        self.route = route
        self.max_request = max_request

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != self.route:
            return await self.app(scope, receive, send)
        client = CLIENT.get()
        length = Headers(scope=scope).get("content-length", "")
        size = int(length) if length.isdigit() else self.max_request
        try:
            self.uploads.admit(client, size)
        except UploadRefused as refused:
            await _drain(receive, size)  # at most what --max-upload lets through: the client then reads the answer
            response = error_response(429, str(refused))
            response.headers["Retry-After"] = "60"
            return await response(scope, receive, send)
        status, body, counted = None, [], False

        async def watched(message):  # what the upload stored is counted before its client hears of it
            nonlocal status, counted
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))
                if not message.get("more_body"):
                    counted = True
                    self.uploads.received(client, size, _paths(b"".join(body)) if status == 200 else None)
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            if not counted:  # no answer: the client went away
                self.uploads.received(client, size, None)


def _paths(body: bytes) -> list[str] | None:
    """The paths an upload's answer lists (None when it lists none)."""
    try:
        paths = json.loads(body)
    except ValueError:
        return None
    return paths if isinstance(paths, list) and all(isinstance(path, str) for path in paths) else None


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
