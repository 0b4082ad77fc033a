"""Logins that cannot stall the server, nor lock a reviewer out: the password check runs in a worker thread, and
failed logins are limited per reviewer name from one client address and per client address, with waits that grow
past the limit (429 with when to retry).

A try is counted before its password is checked, under a lock, so that tries sent at once check no more passwords
than the limit; a success gives its try back. The client's address is the one the server settled on: the
connection's, or the one a proxy named in ``--forwarded-allow-ips`` forwarded (uvicorn's proxy headers)."""

import contextvars
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from feedback.reviewers import Reviewers

CLIENT = contextvars.ContextVar("login_client", default="unknown")
"""The address of the client whose request is being answered (set by :class:`ClientAddress`)."""
SWEEP_EVERY_S = 60
"""How often, at most, the tries of names and addresses that have been forgotten are dropped."""


@dataclass
class _Tries:
    """The tries of one name from one address, or of one address."""

    failures: int = 0
    running: int = 0
    """Tries whose password is being checked."""
    wait: float = 0.0
    """Past the limit, how long the last failure made the next try wait."""
    wait_until: float = 0.0
    last_failure: float = 0.0


class LoginLimiter:
    """Failed logins limited to ``per_name`` for one name from one address and ``per_address`` from one address.
    Past a limit, one try at a time, after a wait of ``first_wait`` seconds that doubles with each failure, up to
    ``max_wait``; failures are forgotten ``forget_after`` seconds after the last one, and a name's from an address
    as soon as it logs in from there."""

    def __init__(self, *, per_name: int = 5, per_address: int = 20, first_wait: float = 10, max_wait: float = 900,
                 forget_after: float = 3600, clock=time.monotonic):
        self.per_name, self.per_address = per_name, per_address
        self.first_wait, self.max_wait, self.forget_after = first_wait, max_wait, forget_after
        self.clock = clock
        self._tries: dict[tuple, _Tries] = {}
        self._lock = threading.Lock()
        self._next_sweep = clock() + SWEEP_EVERY_S

    def check(self, name: str, address: str, verify: Callable[[], bool]) -> bool:
        """``verify()`` (the password check) as a try of ``name`` from ``address``; HTTP 429 saying when to retry,
        without calling it, when the name from that address or the address has failed too often of late."""
        tries = self._start(name, address)
        passed = False
        try:
            passed = verify()
        finally:
            self._settle(tries, passed)
        return passed

    def _start(self, name: str, address: str) -> list[tuple[_Tries, int]]:
        """The try counted as running, with its (tries, limit); HTTP 429 when it may not start."""
        with self._lock:
            now = self.clock()
            if now >= self._next_sweep:
                self._sweep(now)
            limited = self._limited(name, address)
            wait = self._retry_after(limited, now)
            if wait is not None:
                raise HTTPException(429, f"Too many failed logins: try again in {wait} seconds.",
                                    headers={"Retry-After": str(wait)})
            for tries, _ in limited:
                tries.running += 1
            return limited

    def _settle(self, limited: list[tuple[_Tries, int]], passed: bool) -> None:
        """The try ended: a success clears its name's failures from its address, a failure counts (and, past a
        limit, sets the next wait)."""
        with self._lock:
            now = self.clock()
            for tries, limit in limited:
                tries.running -= 1
                if not passed:
                    tries.failures += 1
                    tries.last_failure = now
                    if tries.failures >= limit:
                        tries.wait = min(self.max_wait, tries.wait * 2 or self.first_wait)
                        tries.wait_until = now + tries.wait
            if passed:
                limited[0][0].failures = limited[0][0].wait = 0

    def _limited(self, name: str, address: str) -> list[tuple[_Tries, int]]:
        """(tries, limit) of the name from the address, then of the address."""
        return [(self._tries.setdefault(key, _Tries()), limit)
                for key, limit in ((("name", name, address), self.per_name), (("address", address), self.per_address))]

    @staticmethod
    def _retry_after(limited: list[tuple[_Tries, int]], now: float) -> int | None:
        """Seconds until every one of ``limited`` allows a try, or None when they do now: below its limit (tries
        running included), or past it, with none running and its wait over."""
        waits = [max(tries.wait_until - now, 1) for tries, limit in limited
                 if tries.failures + tries.running >= limit and (tries.running or now < tries.wait_until)]
        return math.ceil(max(waits)) if waits else None

    def _sweep(self, now: float) -> None:
        """Drop the tries with none running and no failure within ``forget_after`` seconds."""
        self._tries = {key: tries for key, tries in self._tries.items()
                       if tries.running or (tries.failures and now - tries.last_failure < self.forget_after)}
        self._next_sweep = now + SWEEP_EVERY_S


def login_check(reviewers: Reviewers, limiter: LoginLimiter):
    """The ``auth`` function for Gradio: async, so Gradio awaits it instead of running scrypt on the event loop;
    it refuses a name or address over its limit with 429 and a Retry-After before checking anything."""

    async def check(name: str, password: str) -> bool:
        return await run_in_threadpool(limiter.check, name, CLIENT.get(), lambda: reviewers.check(name, password))

    return check


def client_address(scope) -> str:
    """The client's address as the server settled on it (a forwarded one only from --forwarded-allow-ips)."""
    client = scope.get("client")
    return client[0] if client else "unknown"


class ClientAddress:
    """ASGI middleware that makes the client's address known to :func:`login_check` (through :data:`CLIENT`)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            CLIENT.set(client_address(scope))
        await self.app(scope, receive, send)
