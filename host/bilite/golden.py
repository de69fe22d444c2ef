"""Golden vectors: texts with the ids and TFLite scores the device must reproduce.

Scores are computed with a *fresh interpreter per text*, so they are the stateless truth; the
device replays them through one interpreter in two orders. Before they ship, each is compared
with the float Keras model: a conversion that drifts beyond the mode's tolerance fails the build.
"""

from __future__ import annotations

import numpy as np

from bilite_device.model import TfliteModel
from bilite_device.tokenizer import Tokenizer

from .compare import KERAS_TOLERANCE
from .errors import ParityError

# How far the device may differ from the host's TFLite scores. Same .tflite file, but another
# runtime build (tflite-runtime 2.14 vs ai-edge-litert) may order sums differently; dynamic
# range also quantizes activations per invoke, where rounding can differ by one step.
DEVICE_TOLERANCE = {"float32": 1e-5, "float16": 1e-5, "dynamic": 1e-3}

# Odd inputs every device must handle: empty, blank, emoji and symbols only, and very long.
EDGE_TEXTS = ("", "   \t ", "\U0001F600\U0001F389 !!! \u00A3\u00A3\u00A3", "free " * 400)


def pick_texts(texts: list[str], labels: list[str], count: int) -> list[str]:
    """``count`` texts: a few edge cases, then test texts spread over labels and lengths."""
    wanted = count - len(EDGE_TEXTS)
    by_label: dict[str, list[str]] = {}
    for text, label in zip(texts, labels):
        by_label.setdefault(label, []).append(text)
    picked: list[str] = []
    names = sorted(by_label)
    for k, label in enumerate(names):
        share = wanted // len(names) + (1 if k < wanted % len(names) else 0)
        pool = sorted(by_label[label], key=lambda t: (len(t), t))
        if share and pool:
            step = max(1, len(pool) // share)
            picked += pool[::step][:share]
    return list(EDGE_TEXTS) + picked


def make_golden(texts: list[str], tokenizer: Tokenizer, model_bytes: bytes, model_meta: dict,
                labels: list[str], keras_scores, quantization: str) -> dict:
    sigmoid = model_meta["outputs"][0]["shape"][-1] == 1 and len(labels) == 2
    ids = tokenizer.encode_batch(texts)
    reference = keras_scores(ids)
    vectors, drift = [], []
    for text, row, ref in zip(texts, ids, reference):
        fresh = TfliteModel(model_bytes, model_meta, num_threads=1)
        raw = fresh.run(row)
        scores = np.array([1.0 - raw[0], raw[0]], dtype=np.float32) if sigmoid else raw
        diff = float(np.abs(scores - ref).max())
        drift.append(diff)
        vectors.append({"text": text, "ids": row.tolist(), "scores": [float(s) for s in scores],
                        "label": labels[int(np.argmax(scores))], "keras_max_abs_diff": diff})
    tolerance = KERAS_TOLERANCE[quantization]
    bad = [(i, d) for i, d in enumerate(drift) if d > tolerance]
    if bad:
        listed = ", ".join(f"#{i} ({d:.3g})" for i, d in bad[:10])
        raise ParityError(
            f"{len(bad)} golden vector(s) drift from the Keras model beyond the {quantization} "
            f"tolerance {tolerance:g}: {listed}. The converted model does not compute what was "
            "trained; refusing to ship it. Try --quantize float32 or another --form."
        )
    return {
        "tolerance": DEVICE_TOLERANCE[quantization],
        "keras_tolerance": tolerance,
        "keras_max_abs_diff": max(drift) if drift else 0.0,
        "vectors": vectors,
    }
