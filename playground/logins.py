"""Logins that cannot stall the server: the password check runs in a worker thread, and failed logins are
limited per reviewer name and per client address (past the limit: 429 with when to retry)."""

import contextvars
import math
import threading
import time
from collections import defaultdict, deque

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from feedback.reviewers import Reviewers

CLIENT = contextvars.ContextVar("login_client", default="unknown")
"""The address of the client whose request is being answered (set by :class:`ClientAddress`)."""


class FailedLogins:
    """Failed logins in a sliding window: at most ``per_name`` for one name and ``per_address`` from one address
    within ``window`` seconds."""

    def __init__(self, *, per_name: int = 5, per_address: int = 20, window: float = 300, clock=time.monotonic):
        self.limits = {"name": per_name, "address": per_address}
        self.window = window
        self.clock = clock
        self._failures: dict[tuple[str, str], deque] = defaultdict(deque)
        self._lock = threading.Lock()

    def retry_after(self, name: str, address: str) -> int | None:
        """Seconds until ``name`` may try again from ``address``, or None when it may try now."""
        now = self.clock()
        waits = []
        with self._lock:
            for kind, key in (("name", name), ("address", address)):
                failures = self._recent((kind, key), now)
                if len(failures) >= self.limits[kind]:
                    waits.append(failures[len(failures) - self.limits[kind]] + self.window - now)
        return max(1, math.ceil(max(waits))) if waits else None

    def hold_back(self, name: str, address: str) -> None:
        """HTTP 429, saying when to retry, when ``name`` or ``address`` has failed too often of late."""
        wait = self.retry_after(name, address)
        if wait is not None:
            raise HTTPException(429, f"Too many failed logins: try again in {wait} seconds.",
                                headers={"Retry-After": str(wait)})

    def failed(self, name: str, address: str) -> None:
        """Count a failed login of ``name`` from ``address``."""
        now = self.clock()
        with self._lock:
            for key in (("name", name), ("address", address)):
                self._recent(key, now)
                self._failures[key].append(now)

    def _recent(self, key, now) -> deque:
        """The failures of ``key`` within the window (a key with none left is forgotten)."""
        failures = self._failures.get(key, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            self._failures.pop(key, None)
        return failures


def login_check(reviewers: Reviewers, failed: FailedLogins):
    """The ``auth`` function for Gradio: async, so Gradio awaits it instead of running scrypt on the event loop;
    it refuses a name or address over its limit with 429 and a Retry-After before checking anything."""

    async def check(name: str, password: str) -> bool:
        address = CLIENT.get()
        failed.hold_back(name, address)
        if await run_in_threadpool(reviewers.check, name, password):
            return True
        failed.failed(name, address)
        return False

    return check


class ClientAddress:
    """ASGI middleware that makes the client's address known to :func:`login_check` (through :data:`CLIENT`)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("client"):
            CLIENT.set(scope["client"][0])
        await self.app(scope, receive, send)
