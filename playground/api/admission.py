"""A bound on the requests in flight: past it, a request is told "busy, retry" at once instead of waiting."""

from starlette.concurrency import run_in_threadpool

from moderation.errors import Busy


class Admission:
    """Counts the requests in flight; past ``limit`` a request gets :class:`Busy` (HTTP 503) at once.

    Used from the event loop only (the routes are async and hand their work to worker threads),
    so the count needs no lock and is taken before a request waits for a thread.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.waiting = 0

    async def run(self, work, *args):
        """``work(*args)`` in a worker thread, or Busy when too many requests are in flight."""
        if self.waiting >= self.limit:
            raise Busy(f"Busy: {self.waiting} requests are waiting; retry in a moment.")
        self.waiting += 1
        try:
            return await run_in_threadpool(work, *args)
        finally:
            self.waiting -= 1
