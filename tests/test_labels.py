import pytest

from moderation.labels import LABELS, SEVERITY, intervenes, is_flagged, parse_label


def test_labels_in_card_order_and_severity_order():
    assert LABELS == (
        "casual", "needs caution", "needs intervention", "possibly needs caution", "probably needs caution")
    assert sorted(LABELS) == sorted(SEVERITY)
    assert SEVERITY[0] == "casual" and SEVERITY[-1] == "needs intervention"


@pytest.mark.parametrize(
    "generated, label",
    [
        (" casual\n", "casual"),
        (" needs caution", "needs caution"),
        (" Needs Intervention\nInput: more", "needs intervention"),
        (" probably needs caution\n\n", "probably needs caution"),
        (" needs", None),
        (" casual, I think", None),
        ("", None),
        ("\n casual", None),
    ],
)
def test_parse_label(generated, label):
    assert parse_label(generated) == label


def test_flagged_is_anything_but_casual():
    assert [is_flagged(label) for label in SEVERITY] == [False, True, True, True, True]


def test_intervention_threshold():
    assert [intervenes(label) for label in SEVERITY] == [False, False, False, True, True]
    assert [intervenes(label, "possibly needs caution") for label in SEVERITY] == [False, True, True, True, True]
    assert not any(intervenes(label, "never") for label in SEVERITY)
    with pytest.raises(ValueError, match="never"):
        intervenes("casual", "sometimes")
