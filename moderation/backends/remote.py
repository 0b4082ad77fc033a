"""The remote backend: the same prompts, as token ids, scored by a vLLM (or any OpenAI-compatible) completions server.

Prompts are tokenized here exactly as the local backend tokenizes them (:mod:`moderation.backends.tokens`) and
sent as token ids. Label scoring asks ``/v1/completions`` to echo each prompt followed by a label's
continuation with its log-probabilities (``echo`` + ``logprobs``, no new tokens), one prompt per text
and label, all in one request, and sums the last tokens' log-probabilities by their count, as
lm-evaluation-harness does; generate mode asks for a plain greedy completion.
"""

import time
from itertools import cycle

import httpx

from ..errors import ModelLoadError, RemoteError
from .base import DEFAULT_CONTEXT, MAX_NEW_TOKENS, context_length
from .tokens import PromptTokens


class RemoteBackend:
    """Scores continuations and generates through a completions server that serves ``model``.

    ``base_url`` is the server's root (``http://host:8000``) or its OpenAI base URL (``.../v1``);
    ``tokenizer`` is the served checkpoint's: prompts are tokenized with it and sent as token ids.
    A request that cannot connect, times out (after ``timeout`` seconds), or gets HTTP 429 or 5xx is
    tried ``retries`` times in all, waiting ``backoff`` seconds, then twice that, and so on.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        tokenizer,
        *,
        context_length: int = DEFAULT_CONTEXT,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.5,
    ):
        if retries < 1:
            raise ValueError(f"retries counts attempts in all and must be at least 1, not {retries}.")
        base = base_url.rstrip("/")
        self.url = base + ("/completions" if base.endswith("/v1") else "/v1/completions")
        self.model = model
        self.tokens = PromptTokens(tokenizer)
        self.context_length = context_length
        self.memory_bytes = None
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._echo_max_tokens = 0
        self._client = httpx.Client(timeout=timeout)

    @classmethod
    def load(cls, base_url: str, model: str, *, served: str | None = None, **options) -> "RemoteBackend":
        """The backend for ``model`` served at ``base_url``; its tokenizer and config load here. ``served`` is
        the name requests give instead, for an adapter the server holds on ``model`` (vLLM's LoRA modules)."""
        from transformers import AutoConfig, AutoTokenizer  # the tokenizer only: no model code loads

        try:
            tokenizer = AutoTokenizer.from_pretrained(model)
            config = AutoConfig.from_pretrained(model)
        except (OSError, ValueError) as error:
            raise ModelLoadError(f"Could not load the tokenizer of {model!r} (prompts are tokenized here): "
                                 f"{error}. Give a model id in the local cache or a local folder.") from None
        return cls(base_url, served or model, tokenizer, context_length=context_length(config), **options)

    def logprobs(self, prefix: str, requests: list[str], continuations: tuple[str, ...]) -> list[list[float]]:
        """log p(continuation | prefix + request) for each request and each of ``continuations``, in their order."""
        endings = self.tokens.continuation_ids(continuations)
        prompts = [self.tokens.prompt(prefix, request) + ending for request in requests for ending in endings]
        body, generated = self._echo(prompts)
        try:
            choices = ordered_choices(body, len(prompts))
            flat = [
                continuation_logprob(choice, len(prompt), len(ending), generated)
                for choice, prompt, ending in zip(choices, prompts, cycle(endings))
            ]
        except (ValueError, TypeError) as error:
            raise self._shape_error(f"{error}", "the OpenAI completions shape with echo + logprobs") from None
        return [flat[start : start + len(endings)] for start in range(0, len(flat), len(endings))]

    def generate(self, prefix: str, requests: list[str]) -> list[str]:
        """Greedy continuations of each prompt, up to the first newline."""
        payload = {
            "prompt": [self.tokens.prompt(prefix, request) for request in requests],
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

    def _echo(self, prompts: list[list[int]]) -> tuple[dict, int]:
        """The server's echo of ``prompts`` with log-probabilities, and how many tokens it may add to each.

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


def continuation_logprob(choice: dict, prompt_length: int, continuation_length: int, generated: int) -> float:
    """Sum of the log-probabilities of the last ``continuation_length`` of the ``prompt_length`` tokens a choice echoes.

    The echo holds one log-probability a token: the prompt's, then at most ``generated`` of the server's
    own (left out). The label's tokens are found by counting, never by matching text.
    """
    logprobs = choice.get("logprobs")
    if not isinstance(logprobs, dict) or not isinstance(logprobs.get("token_logprobs"), list):
        raise ValueError("a choice has no logprobs with token_logprobs")
    values = logprobs["token_logprobs"]
    if not prompt_length <= len(values) <= prompt_length + generated:
        raise ValueError(f"a choice echoes {len(values)} tokens for a prompt of {prompt_length}")
    picked = values[prompt_length - continuation_length : prompt_length]
    if not all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in picked):
        raise ValueError("the echo lacks log-probabilities for the label's tokens")
    return float(sum(picked))


def completion_text(choice: dict) -> str:
    """A choice's completion, up to (not including) the first newline."""
    text = choice.get("text")
    if not isinstance(text, str):
        raise ValueError("a choice has no text")
    return text.split("\n", 1)[0]
