"""Log-likelihood of label continuations, scored like lm-evaluation-harness scores answer choices.

:func:`continuation_logprobs` is the plain way (one padded row per text and label, the whole prompt
each time); :func:`packed_label_logprobs` computes the same numbers from a cached prompt prefix.
"""

import torch
from transformers import DynamicCache

from .packing import LabelTrie, pack


@torch.inference_mode()
def continuation_logprobs(model, prompts: list[list[int]], continuations: list[list[int]], pad_id: int):
    """Sum of token log-probabilities of each continuation after each prompt: a [prompts, continuations] tensor.

    All (prompt, continuation) pairs go through the model in one right-padded batch; only the
    positions that predict continuation tokens are projected onto the vocabulary.
    """
    rows = [prompt + cont for prompt in prompts for cont in continuations]
    width = max(map(len, rows))
    longest = max(map(len, continuations))
    device = model.device
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    keep = torch.zeros((len(rows), longest), dtype=torch.long)
    targets = torch.zeros((len(rows), longest), dtype=torch.long)
    target_mask = torch.zeros((len(rows), longest), dtype=torch.bool)
    for r, row in enumerate(rows):
        cont = continuations[r % len(continuations)]
        start = len(row) - len(cont)
        input_ids[r, : len(row)] = torch.tensor(row)
        attention_mask[r, : len(row)] = 1
        keep[r, : len(cont)] = torch.arange(start - 1, start - 1 + len(cont))
        targets[r, : len(cont)] = torch.tensor(cont)
        target_mask[r, : len(cont)] = True
    logits = model(
        input_ids=input_ids.to(device),
        attention_mask=attention_mask.to(device),
        logits_to_keep=keep.to(device),
        use_cache=False,
    ).logits
    logprobs = torch.log_softmax(logits.float(), dim=-1).cpu()
    picked = logprobs.gather(-1, targets[..., None])[..., 0] * target_mask
    return picked.sum(-1).view(len(prompts), len(continuations))


@torch.inference_mode()
def prefix_key_values(model, prefix: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The key/value cache of ``prefix`` (batch 1), one (keys, values) pair per layer."""
    cache = model(input_ids=torch.tensor([prefix], device=model.device), use_cache=True).past_key_values
    return [(layer.keys, layer.values) for layer in cache.layers]


@torch.inference_mode()
def packed_label_logprobs(model, prefix_kv, requests: list[list[int]], trie: LabelTrie) -> torch.Tensor:
    """Sum of token log-probabilities of each label after each request: a [requests, labels] tensor.

    One forward pass over all requests packed into a few rows (see :mod:`moderation.backends.local.packing`), attending
    to the prefix's cached keys and values, broadcast to the rows rather than computed or stored again.
    """
    prefix_length = prefix_kv[0][0].shape[-2]
    packed = pack(requests, trie, prefix_length, dtype=model.dtype)
    device = model.device
    rows = packed.input_ids.shape[0]
    shared_prefix = [(keys.expand(rows, -1, -1, -1), values.expand(rows, -1, -1, -1)) for keys, values in prefix_kv]
    logits = model(
        input_ids=packed.input_ids.to(device),
        position_ids=packed.position_ids.to(device),
        attention_mask=packed.attention_mask.to(device),
        past_key_values=DynamicCache(ddp_cache_data=shared_prefix),
        use_cache=True,
        logits_to_keep=packed.keep.to(device),
    ).logits
    logprobs = torch.log_softmax(logits.flatten(0, 1).float(), dim=-1)
    picked = logprobs[packed.sources.to(device), packed.targets.to(device)] * packed.valid.to(device)
    return picked.sum(-1).cpu()
