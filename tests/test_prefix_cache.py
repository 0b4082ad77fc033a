"""The fast path (cached prefix, packed texts, label trie) gives the plain path's numbers."""

import pytest

from moderation.backends.local.packing import REQUEST_END, LabelTrie, pack
from moderation.backends.tokens import PREFIXES_KEPT
from moderation.labels import LABELS
from moderation.loader import open_moderator
from moderation.policy import CARD
from moderation.prompt import Example
from moderation.settings import Settings
from moderation.templates import PromptTemplate

TEMPLATES = {
    "card": PromptTemplate(),
    "one example": PromptTemplate(CARD.with_examples(CARD.examples[:1])),
    "no examples": PromptTemplate(CARD.with_examples(())),
    "six examples": PromptTemplate(CARD.with_examples(
        CARD.examples
        + (Example("Let's meet at the station at five", "casual"),
           Example("I will find you and hurt you", "needs intervention"))
    )),
}
TEXTS = [
    "hi",
    "I want to call in sick",
    "You are a worthless piece of garbage and everyone at school knows it, so just stop talking to me forever",
    "Nobody would care if I just disappeared tonight.",
    "word " * 400,
]


def assert_same_results(fast, plain):
    assert [r.text for r in fast] == [r.text for r in plain]
    assert [r.label for r in fast] == [r.label for r in plain]
    for a, b in zip(fast, plain):
        for label in LABELS:
            assert a.scores[label] == pytest.approx(b.scores[label], abs=1e-4)


@pytest.mark.parametrize(
    "model, template",
    [("tiny_model_dir", name) for name in TEMPLATES] + [("demo_model_dir", "card"), ("demo_model_dir", "six examples")],
)
def test_cached_equals_uncached(request, model, template):
    settings = Settings(TEMPLATES[template])
    path = str(request.getfixturevalue(model))
    texts = TEXTS if model == "tiny_model_dir" else TEXTS[:4]  # the long text is cut only by tiny's short context
    fast = open_moderator(path, batch_size=3)
    plain = open_moderator(path, prefix_cache=False)
    assert_same_results(fast.moderate(texts, settings), plain.moderate(texts, settings))


def test_templates_used_in_turn_each_keep_their_own_cache(demo_model_dir):
    """Drafts and the default alternate: each template's cached prefix gives the plain path's numbers."""
    fast = open_moderator(str(demo_model_dir))
    plain = open_moderator(str(demo_model_dir), prefix_cache=False)
    for name in [*TEMPLATES, *reversed(TEMPLATES)]:
        settings = Settings(TEMPLATES[name])
        assert_same_results(fast.moderate(TEXTS[:4], settings), plain.moderate(TEXTS[:4], settings))
    assert len(fast.backend._key_values) == len(TEMPLATES) <= PREFIXES_KEPT


def test_labels_share_first_tokens_in_the_trie():
    # casual = [5, 9]; needs caution = [1, 2, 9]; needs intervention = [1, 3, 9]
    trie = LabelTrie.build([[5, 9], [1, 2, 9], [1, 3, 9]])
    assert trie.tokens == (5, 1, 2, 3)  # " needs" once; no label's last token
    assert trie.parents == (REQUEST_END, REQUEST_END, 1, 1)
    assert trie.steps == (
        ((REQUEST_END, 5), (0, 9)), ((REQUEST_END, 1), (1, 2), (2, 9)), ((REQUEST_END, 1), (1, 3), (3, 9)))


def test_packed_row_feeds_each_text_and_the_trie_once():
    trie = LabelTrie.build([[5, 9], [1, 2, 9], [1, 3, 9]])
    packed = pack([[7, 8], [6]], trie, prefix_length=10)
    assert packed.input_ids.tolist() == [[7, 8, 5, 1, 2, 3, 6, 5, 1, 2, 3]]
    assert packed.position_ids.tolist() == [[10, 11, 12, 12, 13, 13, 10, 11, 11, 12, 12]]
    allowed = packed.attention_mask[0, 0] == 0
    assert allowed[:, :10].all()  # every token sees the prefix
    assert allowed[4, 10:].tolist() == [True, True, False, True, True, False, False, False, False, False, False]
    assert not allowed[6, 10:16].any()  # the second text sees nothing of the first
    assert packed.keep.tolist() == [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]]
    assert packed.sources[1, 1].tolist() == [5, 7, 8]  # needs caution: from text 2's end, " needs", " caution"


def test_long_batches_split_into_rows():
    trie = LabelTrie.build([[5, 9], [1, 2, 9], [1, 3, 9]])
    packed = pack([[7, 8], [6], [4, 4, 4]], trie, prefix_length=10, row_tokens=12)
    assert packed.input_ids.tolist() == [[7, 8, 5, 1, 2, 3, 6, 5, 1, 2, 3], [4, 4, 4, 5, 1, 2, 3, 0, 0, 0, 0]]
    assert packed.position_ids[1].tolist() == [10, 11, 12, 13, 13, 14, 14, 10, 10, 10, 10]
    assert packed.keep.shape == (2, 10)
    assert packed.sources[2, 0].tolist() == [10, 11, 0]  # casual: row 2's first kept logits (padded step)
    assert packed.valid[2, 0].tolist() == [True, True, False]
