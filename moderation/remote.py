"""The remote backend: the same prompts, scored by a vLLM (or any OpenAI-compatible) completions server.

Label scoring asks ``/v1/completions`` to echo each prompt with its log-probabilities (``echo`` +
``logprobs``, no new tokens), one prompt per text and label, all in one request; generate mode asks
for a plain greedy completion. Both are features of the OpenAI completions API that vLLM serves.
"""

import time

import httpx

from .generation import MAX_NEW_TOKENS
from .labels import LABELS

CONTINUATIONS = tuple(f" {label}\n" for label in LABELS)
"""What the model continues a prompt with, one per label (the label, then the newline)."""


class RemoteError(RuntimeError):
    """The completions server cannot be reached or did not answer as expected; the message says what to do.

    ``status`` is the HTTP status of the server's answer, when there was one.
    """

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class RemoteBackend:
    """Scores labels and generates through a completions server that serves ``model``.

    ``base_url`` is the server's root (``http://host:8000``) or its OpenAI base URL (``.../v1``);
    ``tokenizer`` is the served checkpoint's, for fitting texts into ``context_length`` tokens.
    A request that cannot connect, times out (after ``timeout`` seconds), or gets HTTP 429 or 5xx is
    tried ``retries`` times in all, waiting ``backoff`` seconds, then twice that, and so on.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        tokenizer,
        *,
        context_length: int = 2048,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.5,
    ):
        if retries < 1:
            raise ValueError(f"retries counts attempts in all and must be at least 1, not {retries}.")
        base = base_url.rstrip("/")
        self.url = base + ("/completions" if base.endswith("/v1") else "/v1/completions")
        self.model = model
        self.tokenizer = tokenizer
        self.context_length = context_length
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._echo_max_tokens = 0
        self._client = httpx.Client(timeout=timeout)

    def label_logprobs(self, prefix: str, requests: list[str]) -> list[list[float]]:
        """log p(`` <label>\\n`` | prefix + request) for each request and each of the five labels."""
        prompts = [prefix + request + continuation for request in requests for continuation in CONTINUATIONS]
        body, generated = self._echo(prompts)
        try:
            choices = ordered_choices(body, len(prompts))
            flat = [
                continuation_logprob(c, cont, generated)
                for c, cont in zip(choices, CONTINUATIONS * len(requests))
            ]
        except (ValueError, TypeError) as error:
            raise self._shape_error(f"{error}", "the OpenAI completions shape with echo + logprobs") from None
        return [flat[start : start + len(LABELS)] for start in range(0, len(flat), len(LABELS))]

    def generate(self, prefix: str, requests: list[str]) -> list[str]:
        """Greedy continuations of each prompt, up to the first newline."""
        payload = {
            "prompt": [prefix + request for request in requests],
            "temperature": 0,
            "max_tokens": MAX_NEW_TOKENS,
            "stop": ["\n"],
        }
        body = self._post(payload)
        try:
            return [completion_text(choice) for choice in ordered_choices(body, len(requests))]
        except (ValueError, TypeError) as error:
            raise self._shape_error(f"{error}") from None

    def close(self):
        """Close the connections to the server."""
        self._client.close()

    def _echo(self, prompts: list[str]) -> tuple[dict, int]:
        """The server's echo of ``prompts`` with log-probabilities, and how many tokens it added to each.

        ``max_tokens: 0`` asks for the prompt alone; a server that refuses it is asked for one token
        (which is then left out), as lm-evaluation-harness does, from then on.
        """
        generated = self._echo_max_tokens
        payload = {"prompt": prompts, "echo": True, "logprobs": 1, "max_tokens": generated, "temperature": 0}
        try:
            return self._post(payload), generated
        except RemoteError as error:
            if generated or error.status not in (400, 422) or "max_tokens" not in str(error):
                raise
        self._echo_max_tokens = 1
        return self._echo(prompts)

    def _post(self, payload: dict) -> dict:
        """The JSON answer to ``payload``; failed connections, timeouts, 429 and 5xx are retried."""
        failure = None
        for attempt in range(self.retries):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = self._client.post(self.url, json={"model": self.model, **payload})
            except httpx.TransportError as error:
                failure = error
                continue
            if response.status_code != 429 and response.status_code < 500:
                return self._json(response)
            failure = response
        raise self._give_up(failure)

    def _json(self, response: httpx.Response) -> dict:
        if response.is_error:
            raise self._http_error(response)
        try:
            return response.json()
        except ValueError:
            raise self._shape_error(f"the body is not JSON: {response.text[:80]!r}") from None

    def _give_up(self, failure) -> RemoteError:
        """The error after the last attempt failed with ``failure`` (an answer, or an httpx error)."""
        tries = f"{self.retries} attempt{'s' if self.retries > 1 else ''}"
        if isinstance(failure, httpx.Response):
            return self._http_error(failure, f" (after {tries})")
        if isinstance(failure, httpx.TimeoutException):
            return RemoteError(
                f"The completions server at {self.url} did not answer within the {self.timeout:g} s timeout "
                f"({tries}): it may be overloaded, or the batch too big for it; "
                "raise the timeout or check the server."
            )
        return RemoteError(
            f"Could not reach the completions server at {self.url} ({type(failure).__name__}: {failure}; "
            f"{tries}). Is the vLLM server running? Start it with `vllm serve {self.model}`, "
            "or check --base-url (MODERATION_BASE_URL)."
        )

    def _http_error(self, response: httpx.Response, note: str = "") -> RemoteError:
        return RemoteError(
            f"The completions server at {self.url} answered HTTP {response.status_code}{note}: "
            f"{server_message(response)}",
            status=response.status_code,
        )

    def _shape_error(self, detail: str, shape: str = "the OpenAI completions shape") -> RemoteError:
        return RemoteError(
            f"The answer of {self.url} was not in {shape} ({detail}): "
            "is --base-url an OpenAI-compatible completions server such as vLLM?"
        )


def server_message(response: httpx.Response) -> str:
    """An error answer's message: OpenAI's ``{"error": {"message"}}``, a bare ``{"message"}``, or the text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        message = error.get("message") if isinstance(error, dict) else body.get("message")
        if message:
            return str(message)[:300]
    return response.text.strip()[:300] or response.reason_phrase


def ordered_choices(body, count: int) -> list[dict]:
    """The answer's choices in prompt order (by ``index``); ValueError unless there is one per prompt."""
    choices = body.get("choices") if isinstance(body, dict) else None
    if not isinstance(choices, list) or not all(isinstance(choice, dict) for choice in choices):
        raise ValueError("no list of choices")
    indexes = sorted(choice.get("index") for choice in choices)
    if indexes != list(range(count)):
        raise ValueError(
            f"{len(choices)} choices for {count} prompts, or their indexes are not 0 to {count - 1}"
        )
    return sorted(choices, key=lambda choice: choice["index"])


def continuation_logprob(choice: dict, continuation: str, generated: int) -> float:
    """Sum of the log-probabilities of the tokens of ``continuation``, the end of the prompt a choice echoes.

    The last ``generated`` tokens are the server's own and left out. The continuation's tokens are found
    from the end of the prompt: servers such as vLLM decode each token alone and count ``text_offset``
    in those pieces, so a character split across tokens (an emoji) counts twice and offsets drift from the
    prompt's characters, but only before the continuation, whose tokens must spell it exactly.
    """
    logprobs = choice.get("logprobs")
    if not isinstance(logprobs, dict):
        raise ValueError("a choice has no logprobs")
    tokens, values, offsets = (logprobs.get(key) for key in ("tokens", "token_logprobs", "text_offset"))
    if not all(isinstance(field, list) for field in (tokens, values, offsets)) or not (
        len(tokens) == len(values) == len(offsets)
    ):
        raise ValueError("a choice's logprobs lack tokens, token_logprobs or text_offset of one length")
    end = len(tokens) - generated
    if end < 1:
        raise ValueError("a choice echoes no prompt tokens")
    start = offsets[end - 1] + len(tokens[end - 1]) - len(continuation)
    picked = [i for i in range(end) if offsets[i] >= start]
    if "".join(tokens[i] for i in picked) != continuation or None in (values[i] for i in picked):
        raise ValueError(f"the echoed tokens do not end with {continuation!r} and its log-probabilities")
    return float(sum(values[i] for i in picked))


def completion_text(choice: dict) -> str:
    """A choice's completion, up to (not including) the first newline."""
    text = choice.get("text")
    if not isinstance(text, str):
        raise ValueError("a choice has no text")
    return text.split("\n", 1)[0]
