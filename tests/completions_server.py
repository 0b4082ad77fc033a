"""A small OpenAI-compatible completions server on a transformers checkpoint, for the remote backend's tests.

    python tests/completions_server.py --model PATH --port N [--delay SECONDS] [--garbage]
                                       [--fail-first N] [--reject-zero-max-tokens]
                                       [--enable-lora --lora-modules NAME=DIR [NAME=DIR ...]]

It answers ``POST /v1/completions`` in vLLM's response shape: a prompt is a text (tokenized whole) or a
list of token ids (taken as they are; a list of such lists is many prompts), ``echo``
returns its tokens with ``token_logprobs`` (None first), ``top_logprobs`` and ``text_offset`` (the
cumulative lengths of the tokens decoded one by one, as vLLM counts them), and ``max_tokens: 0`` with
``echo`` returns the prompt alone. Decoding is always greedy (``temperature`` is not read), stopped at
``max_tokens``, the end-of-text token or the first of the ``stop`` strings.

With ``--enable-lora --lora-modules NAME=DIR`` it serves LoRA adapters as vLLM does: each is a model of its
own named NAME (``/v1/models`` lists it with the base as its ``parent``), put on the base through peft for
the requests that name it; the base model still answers under its own name.

For the failure tests: ``--delay`` waits before answering, ``--garbage`` answers 200 with an HTML page,
``--fail-first N`` answers the first N completion requests with HTTP 503, and ``--reject-zero-max-tokens``
refuses ``max_tokens: 0`` with HTTP 400 as vLLM's SamplingParams do. ``GET /attempts`` counts the
completion requests received.
"""

import argparse
import asyncio
import contextlib
import threading
import time
import uuid
from itertools import accumulate

import torch
import uvicorn
from fastapi import Body, FastAPI
from fastapi.responses import HTMLResponse, JSONResponse
from peft import PeftModel
from starlette.concurrency import run_in_threadpool
from transformers import AutoModelForCausalLM, AutoTokenizer


def create_app(
    model_path: str, *, delay=0.0, garbage=False, fail_first=0, reject_zero_max_tokens=False, lora_modules=None
) -> FastAPI:
    """The app serving the checkpoint at ``model_path`` under that name (as ``vllm serve PATH`` does), and
    each adapter of ``lora_modules`` ({name: folder}) under its name."""
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    base = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).eval()
    served = serving_models(base, lora_modules or {})
    app = FastAPI()
    attempts = [0]

    @app.get("/v1/models")
    def models():
        card = {"object": "model", "owned_by": "tests", "max_model_len": base.config.n_positions}
        cards = [{"id": model_path, "root": model_path, "parent": None, **card}]
        cards += [{"id": name, "root": folder, "parent": model_path, **card}
                  for name, folder in (lora_modules or {}).items()]
        return {"object": "list", "data": cards}

    @app.get("/attempts")
    def count():
        return {"completions": attempts[0]}

    @app.post("/v1/completions")
    async def completions(request: dict = Body(...)):
        attempts[0] += 1
        if attempts[0] <= fail_first:
            return error(503, "ServiceUnavailableError", "The server is warming up, try again.")
        await asyncio.sleep(delay)  # a server stopped meanwhile never starts the work
        return await run_in_threadpool(answer, request)

    def answer(request: dict):
        if garbage:
            return HTMLResponse("<html><body><h1>Welcome to nginx!</h1></body></html>")
        name = request.get("model")
        if name != model_path and name not in (lora_modules or {}):
            return error(404, "NotFoundError", f"The model `{name}` does not exist.")
        if reject_zero_max_tokens and request.get("max_tokens") == 0:
            return error(400, "BadRequestError", "max_tokens must be at least 1, got 0.")
        choices, prompt_tokens, completion_tokens = [], 0, 0
        with served(name) as model:
            for index, prompt in enumerate(prompts_of(request["prompt"])):
                if isinstance(prompt, str):
                    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
                else:
                    prompt_ids, prompt = prompt, tokenizer.decode(prompt)
                choice, new_ids = complete(model, tokenizer, prompt, prompt_ids, request)
                choices.append({"index": index, **choice})
                prompt_tokens += len(prompt_ids)
                completion_tokens += len(new_ids)
        return {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": name,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    return app


def serving_models(base, lora_modules: dict[str, str]):
    """A context manager that gives the model to answer a request naming a model: the base, or the base with
    that LoRA module active (peft), one request at a time while adapters switch."""
    if not lora_modules:
        return lambda name: contextlib.nullcontext(base)
    names = iter(lora_modules.items())
    first, folder = next(names)
    model = PeftModel.from_pretrained(base, folder, adapter_name=first).eval()
    for name, folder in names:
        model.load_adapter(folder, adapter_name=name)
    lock = threading.Lock()

    @contextlib.contextmanager
    def served(name):
        with lock:
            if name in lora_modules:
                model.set_adapter(name)
                yield model
            else:
                with model.disable_adapter():
                    yield model

    return served


def prompts_of(prompt) -> list:
    """The prompts of a request: texts, or lists of token ids (OpenAI's four shapes of ``prompt``)."""
    if isinstance(prompt, str) or (prompt and all(isinstance(token, int) for token in prompt)):
        return [prompt]
    return prompt


def error(status: int, kind: str, message: str) -> JSONResponse:
    """An error answer in the OpenAI shape that vLLM uses."""
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": status}}, status)


def complete(model, tokenizer, prompt: str, prompt_ids: list[int], request: dict) -> tuple[dict, list[int]]:
    """The choice (without its index) that answers ``request`` for ``prompt``, and the ids it generated."""
    stop = request.get("stop") or []
    stop = [stop] if isinstance(stop, str) else stop
    new_ids = generate(model, tokenizer, prompt_ids, request.get("max_tokens", 16), stop)
    text = tokenizer.decode(new_ids, skip_special_tokens=True)
    cut = min((text.index(s) for s in stop if s in text), default=None)
    stopped = cut is not None or new_ids[-1:] == [tokenizer.eos_token_id]
    text = text[:cut]
    logprobs = None
    if request.get("logprobs") is not None:
        shown = len(prompt_ids) + len(new_ids) if request.get("echo") else len(new_ids)
        logprobs = token_logprobs(model, tokenizer, prompt_ids + new_ids, request["logprobs"], shown)
    choice = {
        "text": prompt + text if request.get("echo") else text,
        "logprobs": logprobs,
        "finish_reason": "stop" if stopped else "length",
    }
    return choice, new_ids


@torch.inference_mode()
def generate(model, tokenizer, prompt_ids: list[int], max_tokens: int, stop: list[str]) -> list[int]:
    """Greedy continuation of ``prompt_ids``: up to ``max_tokens`` ids, ending at end-of-text or a stop."""
    if not max_tokens:
        return []
    output = model.generate(
        input_ids=torch.tensor([prompt_ids]),
        attention_mask=torch.ones(1, len(prompt_ids), dtype=torch.long),
        max_new_tokens=max_tokens,
        do_sample=False,
        stop_strings=stop or None,
        tokenizer=tokenizer,
        pad_token_id=tokenizer.eos_token_id,
    )
    return output[0, len(prompt_ids) :].tolist()


@torch.inference_mode()
def token_logprobs(model, tokenizer, ids: list[int], top: int, shown: int) -> dict:
    """vLLM's ``logprobs`` object for the last ``shown`` of ``ids``, each scored after those before it."""
    logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), dim=-1)
    tokens, values, tops = [], [], []
    for position in range(len(ids) - shown, len(ids)):
        tokens.append(tokenizer.decode([ids[position]]))
        if position == 0:
            values.append(None)
            tops.append(None)
            continue
        row = logprobs[position - 1]
        values.append(row[ids[position]].item())
        best = torch.topk(row, top)
        entries = [(ids[position], values[-1]), *zip(best.indices.tolist(), best.values.tolist())]
        tops.append({tokenizer.decode([token]): value for token, value in entries})
    offsets = list(accumulate(map(len, tokens), initial=0))[:-1]
    return {"tokens": tokens, "token_logprobs": values, "top_logprobs": tops, "text_offset": offsets}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a checkpoint folder (saved by save_pretrained)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to wait before each answer")
    parser.add_argument("--garbage", action="store_true", help="answer 200 with a body that is no completion")
    parser.add_argument("--fail-first", type=int, default=0, help="answer the first N requests with HTTP 503")
    parser.add_argument(
        "--reject-zero-max-tokens", action="store_true", help="refuse max_tokens 0 with HTTP 400"
    )
    parser.add_argument("--enable-lora", action="store_true", help="serve the --lora-modules")
    parser.add_argument("--lora-modules", nargs="+", default=[], metavar="NAME=DIR", help="LoRA adapters to serve")
    args = parser.parse_args()
    if args.lora_modules and not args.enable_lora:
        parser.error("--lora-modules needs --enable-lora")
    app = create_app(
        args.model,
        delay=args.delay,
        garbage=args.garbage,
        fail_first=args.fail_first,
        reject_zero_max_tokens=args.reject_zero_max_tokens,
        lora_modules=dict(module.split("=", 1) for module in args.lora_modules),
    )
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
