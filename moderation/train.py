"""Fine-tune a causal LM on moderation records (``{"text": "Input: ...\\nOutput: <label>"}`` jsonl).

Records are packed under the prompt's header in the card's layout, several to a sequence, so the
model learns exactly the format it is prompted with; the loss counts only the label continuations
(`` <label>\\n``). AdamW with the learning rate warmed up, then kept constant, as on the model card.

    python -m moderation.train --model PATH --data feedback.jsonl --out new-model/
"""

import argparse
import random
import sys

import torch
from tqdm.auto import tqdm

from .errors import USER_ERRORS
from .loading import load_model
from .prompt import HEADER, INPUT, OUTPUT
from .records import read_labelled

IGNORE = -100


def encode_sequence(tokenizer, records: list[tuple[str, str]]) -> tuple[list[int], list[int]]:
    """Token ids of the header and ``records`` in the card's layout, and targets for the labels only.

    Each piece is tokenized as the Moderator tokenizes a prompt, so training and scoring agree.
    """

    def encode(text):
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    ids = encode(HEADER + "\n")
    targets = [IGNORE] * len(ids)
    for n, (text, label) in enumerate(records):
        context = encode(("\n" if n else "") + INPUT) + encode(f" {text}{OUTPUT}")
        answer = encode(f" {label}\n")
        ids += context + answer
        targets += [IGNORE] * len(context) + answer
    return ids, targets


def batches(tokenizer, records, *, per_sequence: int, batch_size: int, rng: random.Random):
    """Endless padded batches of packed sequences, records shuffled each epoch."""
    pad = tokenizer.pad_token_id
    while True:
        order = records[:]
        rng.shuffle(order)
        sequences = [
            encode_sequence(tokenizer, order[i : i + per_sequence]) for i in range(0, len(order), per_sequence)
        ]
        for i in range(0, len(sequences) - batch_size + 1, batch_size):
            chunk = sequences[i : i + batch_size]
            width = max(len(ids) for ids, _ in chunk)
            yield (
                torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in chunk]),
                torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in chunk]),
                torch.tensor([t + [IGNORE] * (width - len(t)) for _, t in chunk]),
            )


def train(
    model,
    tokenizer,
    records: list[tuple[str, str]],
    *,
    steps: int = 300,
    batch_size: int = 8,
    per_sequence: int = 5,
    learning_rate: float = 1e-5,
    warmup_steps: int = 100,
    seed: int = 0,
    progress: bool = True,
):
    """Fine-tune ``model`` in place on (text, label) records; returns the final loss."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    batch_size = min(batch_size, max(1, len(records) // per_sequence))
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup_steps))
    data = batches(tokenizer, records, per_sequence=per_sequence, batch_size=batch_size, rng=rng)
    model.train()
    bar = tqdm(range(steps), desc="training", disable=not progress, unit="step")
    loss = None
    for _ in bar:
        input_ids, attention_mask, labels = (t.to(model.device) for t in next(data))
        loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    return loss.item()


def main(argv=None) -> int:
    """Fine-tune the checkpoint on the data file and save it; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m moderation.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="checkpoint to start from (Hugging Face id or folder)")
    parser.add_argument("--data", required=True, help="jsonl of {\"text\": \"Input: ...\\nOutput: <label>\"}")
    parser.add_argument("--out", required=True, help="folder to save the fine-tuned model to")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=1e-5)
    parser.add_argument("--warmup-steps", type=int, default=100)
    args = parser.parse_args(argv)
    try:
        records = read_labelled(args.data)
        model, tokenizer = load_model(args.model, dtype="float32")
    except (*USER_ERRORS, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    loss = train(
        model,
        tokenizer,
        records,
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        warmup_steps=args.warmup_steps,
    )
    model.save_pretrained(args.out)
    tokenizer.save_pretrained(args.out)
    print(f"Trained on {len(records)} records, final loss {loss:.3f}; saved to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
