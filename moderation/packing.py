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
    """One packed sequence: model inputs, plus where each text's label scores come from."""

    input_ids: torch.Tensor  # [1, Q]
    position_ids: torch.Tensor  # [1, Q]
    attention_mask: torch.Tensor  # [1, 1, Q, prefix + Q], additive
    keep: torch.Tensor  # [K] positions whose logits are needed
    sources: torch.Tensor  # [texts, labels, steps] index into keep (padded steps point anywhere)
    targets: torch.Tensor  # [texts, labels, steps] token ids
    valid: torch.Tensor  # [texts, labels, steps] bool


def pack(requests: list[list[int]], trie: LabelTrie, prefix_length: int, dtype=torch.float32) -> Packed:
    """Pack each request's tokens followed by the trie's nodes after a cached prefix of ``prefix_length``."""
    nodes = len(trie.tokens)
    depths = torch.tensor(trie.depths(), dtype=torch.long)
    ancestry = trie.ancestry()
    total = sum(len(r) for r in requests) + nodes * len(requests)
    allowed = torch.zeros((total, prefix_length + total), dtype=torch.bool)
    allowed[:, :prefix_length] = True
    input_ids, position_ids, keep = [], [], []
    offset = 0
    for request in requests:
        length = len(request)
        text = slice(prefix_length + offset, prefix_length + offset + length)
        rows = slice(offset, offset + length)
        allowed[rows, text] = torch.ones((length, length), dtype=torch.bool).tril()
        tree_rows = slice(offset + length, offset + length + nodes)
        allowed[tree_rows, text] = True
        allowed[tree_rows, prefix_length + offset + length : prefix_length + offset + length + nodes] = ancestry
        input_ids += request + list(trie.tokens)
        position_ids += list(range(prefix_length, prefix_length + length))
        position_ids += (prefix_length + length - 1 + depths).tolist()
        keep.append(offset + length - 1)
        keep += range(offset + length, offset + length + nodes)
        offset += length + nodes
    longest = max(len(steps) for steps in trie.steps)
    shape = (len(requests), len(trie.steps), longest)
    sources = torch.zeros(shape, dtype=torch.long)
    targets = torch.zeros(shape, dtype=torch.long)
    valid = torch.zeros(shape, dtype=torch.bool)
    for label, steps in enumerate(trie.steps):
        for step, (source, token) in enumerate(steps):
            sources[:, label, step] = torch.arange(len(requests)) * (nodes + 1) + source + 1
            targets[:, label, step] = token
            valid[:, label, step] = True
    mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, torch.finfo(dtype).min)
    return Packed(
        input_ids=torch.tensor([input_ids]),
        position_ids=torch.tensor([position_ids]),
        attention_mask=mask[None, None],
        keep=torch.tensor(keep),
        sources=sources,
        targets=targets,
        valid=valid,
    )
