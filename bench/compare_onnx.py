"""ONNX Runtime half of bench/compare.py: convert the trained Keras model with tf2onnx and time it.

Runs with .venv/bench-onnx/bin/python (onnxruntime, onnx, tf2onnx; made by bench/run). That
environment has no TensorFlow of its own: ``--host-site`` appends the host environment's
site-packages (TensorFlow for tf2onnx, bilite_device for the tokenizer) *after* its own, and
bench/run pins numpy and protobuf there to the host's versions so the two agree.

    python bench/compare_onnx.py convert --host-site DIR SAVED_MODEL OUT.onnx   -> JSON
    python bench/compare_onnx.py time --host-site DIR SPEC.json                 -> JSON

The ``time`` step imports no TensorFlow (conversion runs in its own process), one thread.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import site
import statistics
import sys
import time
from collections import Counter
from pathlib import Path


def convert(saved_model: str, out: str) -> dict:
    import onnx
    import tf2onnx
    from tf2onnx import convert as tf2onnx_convert

    start = time.perf_counter()
    sys.argv = ["tf2onnx.convert", "--saved-model", saved_model, "--output", out, "--opset", "17"]
    try:
        with contextlib.redirect_stdout(sys.stderr):  # stdout carries only our JSON
            tf2onnx_convert.main()
    except SystemExit as exc:  # tf2onnx's main may exit; a code other than 0 is a failure
        if exc.code not in (None, 0):
            raise RuntimeError(f"tf2onnx exited with {exc.code}") from None
    model = onnx.load(out)
    return {"ok": True, "seconds": time.perf_counter() - start, "tf2onnx": tf2onnx.__version__,
            "onnx": onnx.__version__, "opset": 17, "size_bytes": Path(out).stat().st_size,
            "ops": dict(Counter(node.op_type for node in model.graph.node))}


def time_model(spec: dict) -> dict:
    import numpy as np
    import onnxruntime as ort
    from bilite_device import load_bundle

    tok = load_bundle(spec["bundle"]).tokenizer  # the same tokenizer as the device
    texts = spec["texts"]
    ids = [tok.encode(t)[None] for t in texts]
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(spec["onnx"], options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    dtype = {"tensor(int32)": np.int32, "tensor(int64)": np.int64}.get(session.get_inputs()[0].type, np.int32)
    ids = [x.astype(dtype) for x in ids]
    n = len(texts)

    def run(k):
        start = time.perf_counter_ns()
        session.run(None, {name: ids[k]})
        return time.perf_counter_ns() - start

    def end_to_end(k):
        start = time.perf_counter_ns()
        session.run(None, {name: tok.encode(texts[k])[None].astype(dtype)})
        return time.perf_counter_ns() - start

    parity = [session.run(None, {name: ids[k]})[0].reshape(-1).tolist()
              for k in range(min(spec["parity_rows"], n))]
    measurements = {"ort_run": run, "ort_tokenize_and_run": end_to_end}
    for fn in measurements.values():
        for k in range(spec["warmup"]):
            fn(k % n)
    samples = {key: [] for key in measurements}
    cursor = 0
    for _ in range(spec["rounds"]):
        for key, fn in measurements.items():
            samples[key].extend(fn((cursor + j) % n) for j in range(spec["per_round"]))
        cursor += spec["per_round"]
    return {"onnxruntime": ort.__version__, "numpy": np.__version__, "threads": 1,
            "measurements": {k: {"median_us": statistics.median(v) / 1e3, "n": len(v),
                                 "p10_us": sorted(v)[len(v) // 10] / 1e3,
                                 "p90_us": sorted(v)[len(v) * 9 // 10] / 1e3} for k, v in samples.items()},
            "parity_outputs": parity}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["convert", "time"])
    parser.add_argument("--host-site", required=True)
    parser.add_argument("args", nargs="+")
    args = parser.parse_args()
    site.addsitedir(args.host_site)  # appended: this environment's own packages come first
    if args.step == "convert":
        result = convert(*args.args)
    else:
        result = time_model(json.loads(Path(args.args[0]).read_text()))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
