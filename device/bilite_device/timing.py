"""Time models on *this* runtime: used by the host to choose a conversion form on the runtime the
device really has, by benchmarks, and by ``smoke``.

Why a separate process matters: measured on x86 with one thread, a dynamic-range WHILE model ran
in 0.37 ms on ai-edge-litert 2.3 but 1.18 ms on tflite-runtime 2.14, and the fastest form was a
different one on each. So the host runs ``python -m bilite_device.timing`` with the device
environment's Python (tflite-runtime 2.14, numpy<2) rather than timing on its own runtime.

Protocol: ``python -m bilite_device.timing SPEC.json`` where SPEC holds
``{"ids": [[...], ...], "models": [{"path": ..., "meta": {...model section...}}, ...]}`` (with
``"fresh": true``: only scores, a new interpreter per row);
prints ``{"runtime": ..., "results": [{"latency_us": ..., "scores": [[...], ...]} | {"error": ...}]}``.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from .errors import BiliteError
from .model import TfliteModel
from .runtime import find_runtime


def time_model(model: TfliteModel, ids: np.ndarray, warmup: int = 20, runs: int = 200) -> float:
    """Median microseconds per run, one row at a time (a fused form's reset is included)."""
    for k in range(warmup):
        model.run(ids[k % len(ids)])
    samples = []
    for k in range(runs):
        row = ids[k % len(ids)]
        start = time.perf_counter()
        model.run(row)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


def _measure(spec: dict) -> dict:
    ids = np.asarray(spec["ids"], dtype=np.int32)
    runtime = find_runtime()
    results = []
    for entry in spec["models"]:
        try:
            blob = Path(entry["path"]).read_bytes()
            if spec.get("fresh"):
                # Golden scores: a new interpreter for every row, so no row sees another's state.
                results.append({"scores": [TfliteModel(blob, entry["meta"]).run(row).tolist() for row in ids]})
                continue
            model = TfliteModel(blob, entry["meta"], num_threads=1)
            scores = [model.run(row).tolist() for row in ids]  # in sequence: state would show
            latency = time_model(model, ids, spec.get("warmup", 20), spec.get("runs", 200))
            # The first rows again, after hundreds of other runs: must be bit-identical.
            again = [model.run(row).tolist() for row in ids[: spec.get("repeats", 10)]]
            results.append({"latency_us": latency, "scores": scores, "repeat_scores": again})
        except BiliteError as exc:
            results.append({"error": f"{type(exc).__name__}: {exc}"})
    return {"runtime": f"{runtime.name} {runtime.version}", "results": results}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m bilite_device.timing SPEC.json", file=sys.stderr)
        return 2
    try:
        print(json.dumps(_measure(json.loads(Path(argv[0]).read_text()))))
    except BiliteError as exc:  # e.g. no runtime installed
        print(json.dumps({"error": str(exc)}))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
