"""Keras <-> TFLite parity, reused by the build and by the tests.

Inputs run *in sequence through one loaded interpreter*, and the first few run again after all
the others: a graph that leaks state from one input to the next (the fused LSTM without resets)
fails here, where a fresh interpreter per input would hide it. The report lists every failing
input with its max difference, not just the first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bilite_device.model import TfliteModel

# How far TFLite scores may drift from the float Keras model, per quantization mode. float32
# differs only by summation order; float16 rounds weights to 11 bits; dynamic range quantizes
# weights to int8 and activations per invoke. Chosen from measurements (dynamic range, max over
# 200 validation texts: SMS BiLSTM 0.002-0.008, Banking77 77-way softmax 0.037); a conversion
# that computes something else differs by far more.
KERAS_TOLERANCE = {"float32": 1e-4, "float16": 1e-2, "dynamic": 1e-1, "int8": 2e-1}


@dataclass
class ParityReport:
    n: int
    max_abs_diff: float
    label_agreement: float
    tolerance: float
    failures: list[str] = field(default_factory=list)
    repeat_max_diff: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self) -> dict:
        return {"n": self.n, "max_abs_diff": self.max_abs_diff, "label_agreement": self.label_agreement,
                "tolerance": self.tolerance, "repeat_max_diff": self.repeat_max_diff,
                "failures": self.failures[:20]}


def label_scores(raw, sigmoid: bool) -> np.ndarray:
    """Raw model outputs [n, k] as per-label scores (a sigmoid head gives [1 - p, p])."""
    raw = np.asarray(raw, dtype=np.float32).reshape(len(raw), -1) if len(raw) else np.zeros((0, 1), np.float32)
    return np.concatenate([1.0 - raw, raw], axis=1) if sigmoid else raw


def tflite_scores(model: TfliteModel, ids: np.ndarray, sigmoid: bool) -> np.ndarray:
    """Scores for each row, run in sequence through one interpreter: [n, num_labels]."""
    return label_scores([model.run(row) for row in ids], sigmoid)


def compare_scores(reference: np.ndarray, got: np.ndarray, again: np.ndarray,
                   tolerance: float) -> ParityReport:
    """``got``: scores in sequence; ``again``: the first rows re-run after all the others.
    Scores are [n, C] (classifiers) or [n, T, C] (taggers: labels are compared per token)."""
    got = np.asarray(got).reshape(reference.shape)
    again = np.asarray(again).reshape((len(again),) + reference.shape[1:])
    diffs = np.abs(got - reference).reshape(len(got), -1).max(axis=1) if len(got) else np.zeros(0)
    agree = got.argmax(axis=-1) == reference.argmax(axis=-1)
    failures = [f"input {i}: max |diff| {diffs[i]:.3g} > {tolerance:g}"
                for i in np.flatnonzero(diffs > tolerance)]
    repeat_diff = float(np.abs(again - got[: len(again)]).max()) if len(again) else 0.0
    if repeat_diff != 0.0:
        failures.append(f"the same input scored differently after other inputs (max |diff| "
                        f"{repeat_diff:.3g}): the graph keeps state between invokes")
    return ParityReport(
        n=len(got),
        max_abs_diff=float(diffs.max()) if len(diffs) else 0.0,
        label_agreement=float(agree.mean()) if len(agree) else 1.0,
        tolerance=tolerance,
        failures=failures,
        repeat_max_diff=repeat_diff,
    )


def compare(reference: np.ndarray, model: TfliteModel, ids: np.ndarray, sigmoid: bool,
            tolerance: float, repeats: int = 10) -> ParityReport:
    got = tflite_scores(model, ids, sigmoid)
    return compare_scores(reference, got, tflite_scores(model, ids[:repeats], sigmoid), tolerance)
