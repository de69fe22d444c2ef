"""Golden vectors: texts with the ids and TFLite scores the device must reproduce.

Scores are computed with a *fresh interpreter per text*, so they are the stateless truth; the
device replays them through one interpreter in two orders. Before they ship, each is compared
with the float Keras model: a conversion that drifts beyond the mode's tolerance fails the build.
"""

from __future__ import annotations

import numpy as np

from bilite_device.model import TfliteModel

from .compare import KERAS_TOLERANCE
from .errors import ParityError

# How far a device may differ from the golden scores, which are computed on the target runtime
# (the device environment) when there is one. On that runtime they reproduce exactly; another
# runtime build may order sums differently, and dynamic range quantizes activations per invoke
# with kernels that differ between tflite-runtime 2.14 and ai-edge-litert: measured up to 0.0103
# on a 2-layer BiGRU for a 400-word text, so dynamic range allows 0.02.
DEVICE_TOLERANCE = {"float32": 1e-5, "float16": 1e-5, "dynamic": 2e-2, "int8": 2e-2}

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


def make_golden(items: list[dict], ids: np.ndarray, model_bytes: bytes, model_meta: dict,
                labels: list[str], keras_scores, quantization: str, sigmoid: bool,
                fresh_scores=None) -> dict:
    """``items``: one dict per vector, ``{"text": ...}`` or ``{"words": [...]}`` (taggers), with
    ``ids`` their encoded inputs. Each is scored with a fresh interpreter, by ``fresh_scores``
    (the target runtime's, see target.py) or else on the host's runtime."""
    reference = keras_scores(ids)
    if fresh_scores is None:
        raws = [TfliteModel(model_bytes, model_meta, num_threads=1).run(row) for row in ids]
    else:
        raws = list(fresh_scores(model_bytes, model_meta, ids))
    vectors, drift = [], []
    for item, row, ref, raw in zip(items, ids, reference, raws):
        scores = np.array([1.0 - raw[0], raw[0]], dtype=np.float32) if sigmoid else raw
        diff = float(np.abs(scores - ref).max())
        drift.append(diff)
        label = ([labels[int(k)] for k in scores.argmax(axis=-1)] if scores.ndim == 2
                 else labels[int(np.argmax(scores))])
        vectors.append({**item, "ids": row.tolist(), "scores": scores.tolist(), "label": label,
                        "keras_max_abs_diff": diff})
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
