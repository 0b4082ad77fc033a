"""Gold that training never sees: each accepted text belongs to ``train`` or ``test``, decided by a stable hash of the
text as the model sees it, and stored the first time, so that a later change of the test share, another accept of
the text or a merge from a replica never moves it."""

from moderation.errors import InvalidInput
from moderation.prompt import text_hash

from .rows import now

TEST_SHARE = 0.2
"""The share of accepted texts that go to ``test`` by default (``--test-share``)."""


def check_test_share(share) -> float:
    """``share`` when it is a number above 0 and below 1; InvalidInput otherwise."""
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share < 1:
        raise InvalidInput(f"The test share is {share!r}: give a number between 0 and 1, like {TEST_SHARE}.",
                           "test_share")
    return float(share)


def split_for(text: str, test_share: float) -> str:
    """The split the hash of ``text`` gives it: ``test`` for the hashes in the lowest ``test_share`` of their range."""
    return "test" if int(text_hash(text)[:16], 16) < test_share * 16**16 else "train"


def assign_split(db, text: str, test_share: float) -> None:
    """Give ``text`` (as stored in predictions) its split, unless it has one: the first assignment wins. The caller
    holds the connection's lock, in a transaction."""
    db.execute("insert or ignore into splits (text, split, created) values (?, ?, ?)",
               [text, split_for(text, test_share), now()])


def assign_accepted(db, test_share: float) -> int:
    """Give each text with an accepted verdict and no split its split (after a merge of a replica that kept none);
    how many it gave one."""
    texts = [row[0] for row in db.execute(
        "select distinct predictions.text from verdicts join predictions on predictions.id = verdicts.prediction_id "
        "where verdicts.status = 'accepted' and predictions.text not in (select text from splits)")]
    for text in texts:
        assign_split(db, text, test_share)
    return len(texts)
