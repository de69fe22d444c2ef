"""Keras <-> TFLite parity, reused by the build and by the tests.

Inputs run *in sequence through one loaded interpreter*: a graph that leaks state from one input
to the next (the fused LSTM without resets) fails here, where a fresh interpreter per input
would hide it. The report lists every failing input with its max difference, not just the first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bilite_device.model import TfliteModel

# How far TFLite scores may drift from the float Keras model, per quantization mode. float32
# differs only by summation order; float16 rounds weights to 11 bits; dynamic range quantizes
# weights to int8 and activations per invoke. Chosen from measurements on the SMS model.
KERAS_TOLERANCE = {"float32": 1e-4, "float16": 1e-2, "dynamic": 5e-2}


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


def tflite_scores(model: TfliteModel, ids: np.ndarray, sigmoid: bool) -> np.ndarray:
    """Scores for each row, run in sequence through one interpreter: [n, num_labels]."""
    rows = []
    for row in ids:
        raw = model.run(row)
        rows.append(np.array([1.0 - raw[0], raw[0]], dtype=np.float32) if sigmoid else raw)
    return np.stack(rows) if rows else np.zeros((0, 2), dtype=np.float32)


def compare(reference: np.ndarray, model: TfliteModel, ids: np.ndarray, sigmoid: bool,
            tolerance: float, repeats: int = 10) -> ParityReport:
    """Compare TFLite with reference scores; then re-run the first ``repeats`` inputs after all
    the others, which must give bit-identical scores (no state between invokes)."""
    got = tflite_scores(model, ids, sigmoid)
    diffs = np.abs(got - reference).max(axis=1) if len(got) else np.zeros(0)
    agree = got.argmax(axis=1) == reference.argmax(axis=1)
    failures = [f"input {i}: max |diff| {diffs[i]:.3g} > {tolerance:g}"
                for i in np.flatnonzero(diffs > tolerance)]
    again = tflite_scores(model, ids[:repeats], sigmoid)
    repeat_diff = float(np.abs(again - got[:repeats]).max()) if len(again) else 0.0
    if repeat_diff != 0.0:
        failures.append(f"the same input scored differently after other inputs (max |diff| "
                        f"{repeat_diff:.3g}): the graph keeps state between invokes")
    return ParityReport(
        n=len(ids),
        max_abs_diff=float(diffs.max()) if len(diffs) else 0.0,
        label_agreement=float(agree.mean()) if len(agree) else 1.0,
        tolerance=tolerance,
        failures=failures,
        repeat_max_diff=repeat_diff,
    )
