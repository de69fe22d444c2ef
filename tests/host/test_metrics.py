import pytest

from bilite.metrics import classification_metrics


def test_pinned_values():
    m = classification_metrics([0, 0, 0, 1, 1], [0, 0, 1, 1, 0], ["ham", "spam"])
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["per_label"]["ham"] == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3})
    assert m["per_label"]["spam"]["f1"] == pytest.approx(0.5)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.5) / 2)
    assert m["confusion"]["matrix"] == [[2, 1], [1, 1]]


def test_label_never_predicted_has_zero_f1():
    m = classification_metrics([0, 1], [0, 0], ["a", "b"])
    assert m["per_label"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
