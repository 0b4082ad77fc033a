"""Log-likelihood of label continuations, scored like lm-evaluation-harness scores answer choices."""

import torch


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
