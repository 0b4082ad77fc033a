"""The card's way to label: greedy decoding of at most 10 tokens, stopped at the first newline."""

import torch

from ..base import MAX_NEW_TOKENS


@torch.inference_mode()
def generate_greedy(model, tokenizer, prompts: list[list[int]]) -> list[str]:
    """The text each prompt is continued with, up to (not including) the first newline."""
    width = max(map(len, prompts))
    pad_id = tokenizer.pad_token_id
    input_ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in prompts])
    attention_mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    output = model.generate(
        input_ids=input_ids.to(model.device),
        attention_mask=attention_mask.to(model.device),
        max_new_tokens=MAX_NEW_TOKENS,
        do_sample=False,
        stop_strings=["\n"],
        tokenizer=tokenizer,
        pad_token_id=pad_id,
    )
    texts = tokenizer.batch_decode(output[:, width:], skip_special_tokens=True)
    return [text.split("\n", 1)[0] for text in texts]
