"""Pack many texts and their label continuations into one sequence over a shared prompt prefix.

Every text is followed by the inner nodes of the label trie (labels share first tokens, like
`` needs ...``, and a label's last token is never fed, since nothing is predicted from it). A
tree-shaped attention mask lets each token see the prefix, its own text, and its own trie ancestors;
explicit position ids give each token the position it would have in its own, unpacked prompt.
"""

from dataclasses import dataclass

import torch

REQUEST_END = -1
"""Source of a label's first token: the last token of the text's request."""


@dataclass(frozen=True)
class LabelTrie:
    """The fed nodes of a trie of label token sequences.

    ``tokens[n]`` and ``parents[n]`` describe node ``n`` (parent -1: a child of the request's end);
    ``steps[k]`` lists, for label ``k``, each token it is scored on with the node whose output
    predicts it (``REQUEST_END`` for the first token).
    """

    tokens: tuple[int, ...]
    parents: tuple[int, ...]
    steps: tuple[tuple[tuple[int, int], ...], ...]

    @classmethod
    def build(cls, sequences: list[list[int]]) -> "LabelTrie":
        """The trie of ``sequences`` (token ids of each label's continuation)."""
        index: dict[tuple[int, ...], int] = {}
        tokens, parents, steps = [], [], []
        for sequence in sequences:
            source, label_steps = REQUEST_END, []
            for depth, token in enumerate(sequence):
                label_steps.append((source, token))
                if depth == len(sequence) - 1:
                    break
                path = tuple(sequence[: depth + 1])
                if path not in index:
                    index[path] = len(tokens)
                    tokens.append(token)
                    parents.append(source)
                source = index[path]
            steps.append(tuple(label_steps))
        return cls(tuple(tokens), tuple(parents), tuple(steps))

    def depths(self) -> list[int]:
        """Depth of each node (1 for a child of the request's end)."""
        depths = []
        for parent in self.parents:
            depths.append(1 if parent == REQUEST_END else depths[parent] + 1)
        return depths

    def ancestry(self) -> torch.Tensor:
        """[nodes, nodes] bool: node i may attend to node j (j is i or an ancestor of i)."""
        size = len(self.tokens)
        allowed = torch.eye(size, dtype=torch.bool)
        for node, parent in enumerate(self.parents):
            if parent != REQUEST_END:
                allowed[node] |= allowed[parent]
        return allowed


@dataclass
class Packed:
    """Packed rows: model inputs, plus where each text's label scores come from."""

    input_ids: torch.Tensor  # [rows, Q]
    position_ids: torch.Tensor  # [rows, Q]
    attention_mask: torch.Tensor  # [rows, 1, Q, prefix + Q], additive
    keep: torch.Tensor  # [rows, K] positions whose logits are needed
    sources: torch.Tensor  # [texts, labels, steps] index into the [rows * K] kept logits
    targets: torch.Tensor  # [texts, labels, steps] token ids
    valid: torch.Tensor  # [texts, labels, steps] bool


def pack(requests: list[list[int]], trie: LabelTrie, prefix_length: int, *, row_tokens: int = 128,
         dtype=torch.float32) -> Packed:
    """Pack requests, each followed by the trie's nodes, into rows of about ``row_tokens`` tokens.

    Several short rows instead of one long one keep the attention (quadratic in a row's length, and
    mostly masked between texts) small, while the matrix products still see every token at once.
    """
    rows = _split_rows(requests, len(trie.tokens), row_tokens)
    width = max(sum(len(r) + len(trie.tokens) for r in row) for row in rows)
    per_row = max(len(row) for row in rows) * (len(trie.tokens) + 1)
    shape = (len(rows), width)
    input_ids = torch.zeros(shape, dtype=torch.long)
    position_ids = torch.full(shape, prefix_length, dtype=torch.long)
    allowed = torch.zeros((len(rows), width, prefix_length + width), dtype=torch.bool)
    allowed[:, :, :prefix_length] = True
    keep = torch.zeros((len(rows), per_row), dtype=torch.long)
    starts = []
    for number, row in enumerate(rows):
        ids, positions, kept = _fill_row(row, trie, prefix_length, allowed[number])
        input_ids[number, : len(ids)] = torch.tensor(ids)
        position_ids[number, : len(ids)] = torch.tensor(positions)
        keep[number, : len(kept)] = torch.tensor(kept)
        starts += [number * per_row + i * (len(trie.tokens) + 1) for i in range(len(row))]
    sources, targets, valid = _label_steps(trie, torch.tensor(starts))
    mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, torch.finfo(dtype).min)
    return Packed(input_ids, position_ids, mask[:, None], keep, sources, targets, valid)


def _split_rows(requests, nodes: int, row_tokens: int) -> list[list[list[int]]]:
    rows, size = [], row_tokens
    for request in requests:
        length = len(request) + nodes
        if size + length > row_tokens:
            rows.append([])
            size = 0
        rows[-1].append(request)
        size += length
    return rows


def _fill_row(row, trie: LabelTrie, prefix_length: int, allowed: torch.Tensor):
    """Token ids, positions and kept positions of one row; fills the row's ``allowed`` [Q, prefix + Q]."""
    nodes = len(trie.tokens)
    depths = torch.tensor(trie.depths(), dtype=torch.long)
    ancestry = trie.ancestry()
    ids, positions, kept = [], [], []
    offset = 0
    for request in row:
        length = len(request)
        text = slice(prefix_length + offset, prefix_length + offset + length)
        allowed[offset : offset + length, text] = torch.ones((length, length), dtype=torch.bool).tril()
        tree = slice(offset + length, offset + length + nodes)
        allowed[tree, text] = True
        allowed[tree, prefix_length + offset + length : prefix_length + offset + length + nodes] = ancestry
        ids += request + list(trie.tokens)
        positions += list(range(prefix_length, prefix_length + length))
        positions += (prefix_length + length - 1 + depths).tolist()
        kept += [offset + length - 1, *range(offset + length, offset + length + nodes)]
        offset += length + nodes
    return ids, positions, kept


def _label_steps(trie: LabelTrie, starts: torch.Tensor):
    """For each text (kept logits from ``starts``), label and step: logit index, target token, validity."""
    longest = max(len(steps) for steps in trie.steps)
    shape = (len(starts), len(trie.steps), longest)
    sources = torch.zeros(shape, dtype=torch.long)
    targets = torch.zeros(shape, dtype=torch.long)
    valid = torch.zeros(shape, dtype=torch.bool)
    for label, steps in enumerate(trie.steps):
        for step, (source, token) in enumerate(steps):
            sources[:, label, step] = starts + source + 1
            targets[:, label, step] = token
            valid[:, label, step] = True
    return sources, targets, valid
