"""Pick the conversion form (WHILE loop, unrolled, fused LSTM) from measurements, per model.

Every candidate is converted, checked (ops, variable tensors, target op versions), proven
against Keras on real validation inputs run in sequence through one interpreter, and timed with
one thread, on the target runtime itself when a device environment is available (see target.py:
tflite-runtime 2.14 and ai-edge-litert rank the forms differently). The fastest candidate that passes wins; the figures for all
of them go into the bundle's metadata, so the choice can be audited.

Why measure rather than assume: on x86 the stateless WHILE form ran 1.1-1.6x faster than the
fused LSTM (XNNPACK takes the loop's matrix products), which is the opposite of the folklore.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .compare import KERAS_TOLERANCE, ParityReport, compare_scores, label_scores
from .config import ConvertConfig, ModelConfig
from bilite_device.tflite_file import read_tflite_facts

from .convert import check_graph, convert_checked
from .convert_child import convert_in_child
from .errors import BiliteError, ConversionError, ParityError
from .keras_model import inference_twin, sigmoid_head
from .target import TargetRunner

# Within this fraction of the fastest, the smaller file wins: a 3 % timing gap is noise on a
# shared machine, a 2x larger download is not.
LATENCY_TIE = 0.03


@dataclass
class Candidate:
    form: str
    model_bytes: bytes
    meta: dict  # the model section for metadata.json
    latency_us: float
    parity: ParityReport


def candidate_forms(cfg: ModelConfig, convert: ConvertConfig) -> list[str]:
    if convert.form != "auto":
        return [convert.form]
    forms = ["while", "unrolled", "fused"] if cfg.cell == "lstm" else ["while", "unrolled"]
    if convert.quantization == "int8":
        forms.remove("while")  # full-int8 calibration of WHILE loops segfaults the converter
    return forms


def model_meta(form: str, facts, quantization: str, target: str) -> dict:
    return {
        "file": "model.tflite",
        "form": form,
        "reset_variables": form == "fused",
        "stateless": form != "fused",
        "quantization": quantization,
        "target": target,
        "inputs": facts.to_json()["inputs"],
        "outputs": facts.to_json()["outputs"],
        "ops": [{"name": o.name, "version": o.version, "count": o.count} for o in facts.ops],
        "subgraphs": facts.subgraph_count,
        "variable_tensors": len(facts.variable_tensors),
        "min_runtime_version": facts.min_runtime_version,
        "size_bytes": facts.size_bytes,
    }


def choose_form(trained, cfg: ModelConfig, convert: ConvertConfig, vocab_size: int, num_labels: int,
                max_len: int, ids: np.ndarray, reference: np.ndarray, target: TargetRunner,
                log=print, model_kwargs: dict | None = None,
                calibration: np.ndarray | None = None) -> tuple[Candidate, list[dict]]:
    """Convert every candidate form, then time and prove them all on the target runtime.
    int8 converts in a child process (the converter can crash) with ``calibration`` ids."""
    tried, converted = [], []
    for form in candidate_forms(cfg, convert):
        start = time.perf_counter()
        try:
            if convert.quantization == "int8":
                blob = convert_in_child(trained, cfg, vocab_size, num_labels, max_len, form,
                                        convert.quantization, convert.target, calibration, model_kwargs,
                                        int8_output=convert.int8_output)
                facts = read_tflite_facts(blob)
                width = tuple(ids.shape[2:])
                check_graph(facts, form, max_len, convert.target, width=width)
            else:
                twin = inference_twin(trained, cfg, vocab_size, num_labels, max_len, form, **(model_kwargs or {}))
                blob, facts = convert_checked(twin, form, convert.quantization, convert.target, max_len)
        except BiliteError as exc:
            log(f"  form {form}: unavailable: {exc}")
            tried.append({"form": form, "ok": False, "error": str(exc)})
            continue
        converted.append((form, blob, model_meta(form, facts, convert.quantization, convert.target),
                          time.perf_counter() - start))
    sigmoid = sigmoid_head(cfg, num_labels, bool((model_kwargs or {}).get("tagging")))
    return prove_forms(converted, tried, ids, reference, target, convert.quantization, sigmoid, log)


def prove_forms(converted: list[tuple], tried: list[dict], ids: np.ndarray, reference: np.ndarray,
                target: TargetRunner, quantization: str, sigmoid: bool, log=print) -> tuple[Candidate, list[dict]]:
    """Time every converted form on ``target`` and compare its scores on ``ids``, run in sequence,
    with the Keras ``reference``. ``converted``: (form, bytes, model metadata, seconds) tuples;
    ``tried`` lists forms that failed earlier. The fastest passing form wins."""
    results = target.measure([(blob, meta) for _, blob, meta, _ in converted], ids) if converted else []
    passing = []
    for (form, blob, meta, seconds), result in zip(converted, results):
        if "error" in result:
            log(f"  form {form}: does not run on the target runtime: {result['error']}")
            tried.append({"form": form, "ok": False, "error": result["error"]})
            continue
        parity = compare_scores(reference, label_scores(result["scores"], sigmoid),
                                label_scores(result["repeat_scores"], sigmoid),
                                KERAS_TOLERANCE[quantization])
        cand = Candidate(form, blob, meta, result["latency_us"], parity)
        log(f"  form {form}: {cand.latency_us:.0f} us/invoke, {len(blob) / 1024:.0f} KiB, "
            f"max |diff| vs Keras {parity.max_abs_diff:.2g}, "
            f"{'ok' if parity.ok else 'PARITY FAILED'} (converted in {seconds:.1f} s)")
        tried.append({"form": form, "ok": parity.ok, "latency_us": round(cand.latency_us, 1),
                      "size_bytes": len(blob), "parity": parity.to_json()})
        if parity.ok:
            passing.append(cand)
    if not passing:
        details = "; ".join(f"{t['form']}: {t.get('error') or t['parity']['failures'][:3]}" for t in tried)
        if any("parity" in t for t in tried):
            raise ParityError(f"no conversion form matches the Keras model: {details}")
        raise ConversionError(f"no conversion form could be produced: {details}")
    fastest = min(c.latency_us for c in passing)
    near = [c for c in passing if c.latency_us <= fastest * (1 + LATENCY_TIE)]
    best = min(near, key=lambda c: len(c.model_bytes))
    return best, tried
