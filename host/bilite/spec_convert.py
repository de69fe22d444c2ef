"""Convert a model spec (keras_spec.py) into each requested form, in a child process.

A converter crash (TF 2.21 segfaults on full-int8 calibration of WHILE loops, and a user's model
may find other ways) must not take the user's process down. One child converts all forms in turn,
marking each as started before it begins; if the child dies, the form it was on is reported as
crashed (a typed error with advice), the finished ones are kept, and a new child takes the rest.
``isolate=False`` converts in this process (the test matrix does, for speed, in float32 modes
that do not crash).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bilite_device.tflite_file import read_tflite_facts

from .convert import check_graph, convert_keras
from .errors import BiliteError, ConversionError
from .keras_spec import ModelSpec, rebuild


def crash_advice(form: str, quantization: str, signame: str) -> str:
    return (f"the TFLite converter crashed ({signame}) converting the {form!r} form to {quantization}; "
            "your process is fine. Full-int8 calibration of WHILE-loop graphs is a known TF 2.21 "
            "converter crash: use --quantize dynamic (close in size), or --form unrolled (or fused, "
            "for an LSTM) for int8.")


def convert_form(spec: ModelSpec, form: str, quantization: str, target: str, max_len: int,
                 calibration: np.ndarray | None = None) -> bytes:
    model = rebuild(spec, form, max_len)
    blob = convert_keras(model, quantization, target, calibration=calibration)
    check_graph(read_tflite_facts(blob), form, max_len, target)
    return blob


def convert_forms(spec: ModelSpec, forms: list[str], quantization: str, target: str, max_len: int,
                  calibration: np.ndarray | None = None, isolate: bool = True,
                  seconds: dict[str, float] | None = None) -> dict[str, bytes | str]:
    """form -> model bytes, or an error message for a form that could not be produced.
    ``seconds``, if given, receives each produced form's conversion time."""
    seconds = {} if seconds is None else seconds
    if not isolate:
        results = {}
        for form in forms:
            start = time.perf_counter()
            try:
                results[form] = convert_form(spec, form, quantization, target, max_len, calibration)
            except BiliteError as exc:
                results[form] = str(exc)
            seconds[form] = time.perf_counter() - start
        return results
    with tempfile.TemporaryDirectory(prefix="bilite-spec-convert-") as tmp:
        tmp = Path(tmp)
        np.savez(tmp / "weights.npz", *[w for layer in spec.weights for w in layer])
        if calibration is not None:
            np.save(tmp / "calibration.npy", calibration)
        (tmp / "spec.json").write_text(json.dumps({
            "spec": spec.to_json(), "counts": [len(layer) for layer in spec.weights],
            "quantization": quantization, "target": target, "max_len": max_len,
            "calibration": calibration is not None}))
        results: dict[str, bytes | str] = {}
        while len(results) < len(forms):
            todo = [f for f in forms if f not in results]
            proc = subprocess.run([sys.executable, "-m", "bilite.spec_convert", str(tmp), *todo],
                                  capture_output=True, text=True, timeout=3600,
                                  env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
            for form in todo:
                if (tmp / f"{form}.tflite").is_file():
                    results[form] = (tmp / f"{form}.tflite").read_bytes()
                    seconds[form] = float((tmp / f"{form}.seconds").read_text())
                elif (tmp / f"{form}.error").is_file():
                    results[form] = (tmp / f"{form}.error").read_text()
                elif (tmp / f"{form}.started").is_file():
                    signame = (signal.Signals(-proc.returncode).name if proc.returncode < 0
                               else f"exit {proc.returncode}")
                    last = [ln for ln in proc.stderr.splitlines() if ln.strip()][-1:]
                    results[form] = crash_advice(form, quantization, signame) + (
                        f" Last output: {last[0][:300]}" if last and proc.returncode > 0 else "")
                    break  # the forms after it were never started: a new child takes them
            if not any(f in results for f in todo):
                raise ConversionError(f"the conversion child failed before converting anything (exit "
                                      f"{proc.returncode}): {proc.stderr.strip()[-500:]}")
        return results


def _main(folder: str, forms: list[str]) -> int:
    tmp = Path(folder)
    job = json.loads((tmp / "spec.json").read_text())
    stored = np.load(tmp / "weights.npz")
    flat = [stored[f"arr_{i}"] for i in range(len(stored.files))]
    weights, at = [], 0
    for count in job["counts"]:
        weights.append(flat[at: at + count])
        at += count
    s = job["spec"]
    spec = ModelSpec(length=s["length"], layers=s["layers"], weights=weights, flavour=s["flavour"])
    calibration = np.load(tmp / "calibration.npy") if job["calibration"] else None
    for form in forms:
        (tmp / f"{form}.started").touch()
        if os.environ.get("BILITE_TEST_CRASH_CONVERTER") == form:  # test hook: this form segfaults
            os.kill(os.getpid(), signal.SIGSEGV)
        start = time.perf_counter()
        try:
            blob = convert_form(spec, form, job["quantization"], job["target"], job["max_len"], calibration)
        except BiliteError as exc:
            (tmp / f"{form}.error").write_text(str(exc))
            continue
        (tmp / f"{form}.seconds").write_text(repr(time.perf_counter() - start))  # before .tflite: read after it
        (tmp / f"{form}.tflite").write_bytes(blob)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1], sys.argv[2:]))
