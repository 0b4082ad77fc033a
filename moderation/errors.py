"""The errors a caller can act on. Only these reach a user as a message; any other exception is a bug."""


class InvalidInput(ValueError):
    """The input is wrong; the message says what to change. ``param`` names the field, when one is known."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


class Conflict(InvalidInput):
    """The input is well formed but conflicts with the state of things (an idempotency key sent with another
    request, a job already running, nothing to roll back to): HTTP 409; the message says what to change."""


class NotFound(InvalidInput):
    """The input names something that does not exist (a verdict, a batch of curation, a version never trained here):
    HTTP 404; the message says where to find one that does."""


class Busy(RuntimeError):
    """Too much work is waiting: the caller should retry in a moment."""


class Unavailable(RuntimeError):
    """Something the server needs is failing (its feedback database cannot be written, say): the message says
    what is wrong and what to do about it."""


class RemoteError(RuntimeError):
    """The completions server cannot be reached or did not answer as expected; the message says what to do.

    ``status`` is the HTTP status of the server's answer, when there was one.
    """

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class ModelLoadError(RuntimeError):
    """A model that was asked for cannot be loaded; the message says how to fix it."""


USER_ERRORS = (InvalidInput, Busy, Unavailable, RemoteError, ModelLoadError)
"""What a page or an API may show its user as it is; anything else is answered with a generic error."""
