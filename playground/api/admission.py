"""A bound on the requests in flight: past it, a request is told "busy, retry" at once instead of waiting."""

from moderation.errors import Busy


class Admission:
    """Counts the requests in flight; past ``limit`` a request gets :class:`Busy` (HTTP 503) at once.

    Used from the event loop only (the routes are async and await the service), so the count needs no lock.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.waiting = 0

    async def run(self, work, *args, **kwargs):
        """``await work(*args, **kwargs)``, or Busy when too many requests are in flight."""
        if self.waiting >= self.limit:
            raise Busy(f"Busy: {self.waiting} requests are waiting; retry in a moment.")
        self.waiting += 1
        try:
            return await work(*args, **kwargs)
        finally:
            self.waiting -= 1
