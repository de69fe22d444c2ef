import json

import numpy as np
import pytest

from bilite.errors import ParityError
from bilite.golden import EDGE_TEXTS, make_golden, pick_texts
from bilite_device import load_bundle
from conftest import FIXTURES


def test_pick_texts_spreads_over_labels_and_keeps_edge_cases():
    texts = [f"ham {i}" for i in range(50)] + [f"spam {i}" for i in range(10)]
    labels = ["ham"] * 50 + ["spam"] * 10
    picked = pick_texts(texts, labels, 24)
    assert len(picked) == 24 and picked[: len(EDGE_TEXTS)] == list(EDGE_TEXTS)
    assert sum(t.startswith("spam") for t in picked) == 10


def _golden_inputs():
    bundle = load_bundle(FIXTURES / "tiny-sms-while")
    meta = json.loads((FIXTURES / "tiny-sms-while" / "metadata.json").read_text())
    model = (FIXTURES / "tiny-sms-while" / "model.tflite").read_bytes()
    texts = [v["text"] for v in bundle.golden]
    return bundle, meta, model, texts


def test_golden_scores_are_the_tflite_models_and_drift_fails_the_build():
    bundle, meta, model, texts = _golden_inputs()
    truth = np.array([bundle.scores_for_ids(bundle.tokenizer.encode(t)) for t in texts])
    items, ids = [{"text": t} for t in texts], bundle.tokenizer.encode_batch(texts)
    golden = make_golden(items, ids, model, meta["model"], bundle.labels, lambda ids: truth,
                         "dynamic", sigmoid=True)
    assert golden["keras_max_abs_diff"] == 0.0
    # The golden scores are this runtime's, on this machine, to the bit...
    np.testing.assert_array_equal(np.array([v["scores"] for v in golden["vectors"]], np.float32), truth)
    # ...and agree with the ones stored when the fixture was made only to ~1e-7: TFLite's kernels
    # round differently per CPU (measured: 3.4e-8 between an AVX-512 machine and the one that made
    # the fixture), which is why the device checks golden vectors with a tolerance.
    stored = np.array([v["scores"] for v in bundle.golden])
    np.testing.assert_allclose(np.array([v["scores"] for v in golden["vectors"]]), stored, rtol=0, atol=1e-6)
    assert [v["label"] for v in golden["vectors"]] == [v["label"] for v in bundle.golden]
    shifted = truth.copy()
    shifted[5] += np.array([-0.2, 0.2], dtype=np.float32)  # a "Keras" that disagrees on one text
    with pytest.raises(ParityError, match=r"1 golden vector\(s\) drift.*#5 \(0\.2"):
        make_golden(items, ids, model, meta["model"], bundle.labels, lambda ids: shifted,
                    "dynamic", sigmoid=True)
