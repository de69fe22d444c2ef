"""Device-side half of bench/compare.py: time one bundle and a set of .tflite files on *this*
Python's TFLite runtime, with one thread.

Run by bench/compare.py twice, with the same spec: with the device environment's Python
(tflite-runtime 2.14, numpy<2, no TensorFlow) and with the host's (ai-edge-litert). Imports only
the standard library, numpy and bilite_device.

    python bench/compare_device.py SPEC.json   ->  JSON on stdout (progress on stderr)

SPEC: {"bundle": DIR, "texts": [...], "models": [{"key", "path"}], "rounds", "per_round",
"warmup", "batch_repeats", "profile_predictions", "parity_rows"}.

Every measurement is a median of single calls. Measurements are interleaved: each round runs
``per_round`` calls of every measurement in turn, so drift on a shared machine (another job
starting, the CPU clocking down) hits them all alike instead of whichever ran last.
"""

from __future__ import annotations

import cProfile
import io
import json
import platform
import pstats
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from bilite_device import find_runtime, load_bundle
from bilite_device.tflite_file import read_tflite_facts


def log(msg: str) -> None:
    print(f"  [{runtime_name()}] {msg}", file=sys.stderr, flush=True)


def runtime_name() -> str:
    try:
        r = find_runtime()
        return f"{r.name} {r.version}"
    except Exception:  # noqa: BLE001 - only for log prefixes
        return "no runtime"


def stats(samples_ns: list[int], round_medians: list[float]) -> dict:
    s = sorted(samples_ns)
    n = len(s)
    q = lambda f: s[min(n - 1, int(f * n))] / 1e3  # noqa: E731
    return {"median_us": statistics.median(s) / 1e3, "mean_us": statistics.fmean(s) / 1e3, "p10_us": q(0.10), "p90_us": q(0.90),
            "min_us": s[0] / 1e3, "n": n,
            "round_median_us_min": min(round_medians) if round_medians else None,
            "round_median_us_max": max(round_medians) if round_medians else None,
            "round_medians_us": [round(x, 2) for x in round_medians]}


class RawModel:
    """A bare interpreter on one .tflite file: what any user of the runtime would write."""

    def __init__(self, blob: bytes, interpreter_class):
        self.reset = bool(read_tflite_facts(blob).variable_tensors)  # the fused LSTM's h/c
        self.interp = interpreter_class(model_content=blob, num_threads=1)
        self.interp.allocate_tensors()
        self.inp = self.interp.get_input_details()[0]
        self.out = self.interp.get_output_details()[0]

    def run(self, row: np.ndarray) -> np.ndarray:
        it = self.interp
        if self.reset:
            it.reset_all_variables()
        it.set_tensor(self.inp["index"], row.reshape(self.inp["shape"]))
        it.invoke()
        return it.get_tensor(self.out["index"])


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    runtime = find_runtime()
    rounds, per_round, warmup = spec["rounds"], spec["per_round"], spec["warmup"]
    bundle = load_bundle(spec["bundle"], num_threads=1)
    texts = spec["texts"]
    ids = [bundle.tokenizer.encode(t) for t in texts]  # pre-tokenized, outside any timing
    n = len(texts)
    floor_model = RawModel(Path(spec["bundle"], "model.tflite").read_bytes(), runtime.interpreter_class)

    # -- the measurements: each a function of k (which text) that runs exactly one call --------
    def bare_invoke(k):
        # The floor: invoke() alone on pre-tokenized ids. Preparing the input (and, for a
        # stateful form, the reset that makes the answer right) happens outside the timer.
        if floor_model.reset:
            floor_model.interp.reset_all_variables()
        floor_model.interp.set_tensor(floor_model.inp["index"], ids[k].reshape(floor_model.inp["shape"]))
        start = time.perf_counter_ns()
        floor_model.interp.invoke()
        return time.perf_counter_ns() - start

    def timed(fn):
        def call(k):
            start = time.perf_counter_ns()
            fn(k)
            return time.perf_counter_ns() - start
        return call

    def reset_only(k):
        start = time.perf_counter_ns()
        floor_model.interp.reset_all_variables()
        return time.perf_counter_ns() - start

    tok, model = bundle.tokenizer, bundle.model
    measurements = {
        "bare_invoke": bare_invoke,
        **({"reset_all_variables": reset_only} if floor_model.reset else {}),
        "interpreter_loop": timed(lambda k: floor_model.run(ids[k])),
        "model_run": timed(lambda k: model.run(ids[k])),
        "encode": timed(lambda k: tok.encode(texts[k])),
        "scores_for_ids": timed(lambda k: bundle.scores_for_ids(ids[k])),
        "predict": timed(lambda k: bundle.predict(texts[k])),
    }
    forms, form_errors = {}, {}
    for entry in spec["models"]:
        try:
            forms[entry["key"]] = RawModel(Path(entry["path"]).read_bytes(), runtime.interpreter_class)
        except Exception as exc:  # noqa: BLE001 - a model this runtime cannot load is a result
            form_errors[entry["key"]] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}"
            log(f"{entry['key']}: cannot load: {form_errors[entry['key']]}")
    for key, raw in forms.items():
        measurements[f"form:{key}"] = timed(lambda k, raw=raw: raw.run(ids[k]))

    # Parity rows first, in sequence through each interpreter (state would show), then warm-up.
    parity = {key: [raw.run(ids[k]).reshape(-1).tolist() for k in range(min(spec["parity_rows"], n))]
              for key, raw in forms.items()}
    for name, fn in measurements.items():
        for k in range(warmup):
            fn(k % n)
    log(f"timing {len(measurements)} measurements: {rounds} rounds x {per_round} calls, interleaved")
    samples = {name: [] for name in measurements}
    round_medians = {name: [] for name in measurements}
    # predict_batch on 1,000 texts (texts per second, median of whole batches), its repetitions
    # spread over the rounds so that they see the same machine as the per-call figures.
    batch_texts = texts[: spec.get("batch_size", 1000)]
    bundle.predict_batch(batch_texts[:50])
    batch_every = max(1, rounds // max(1, spec["batch_repeats"]))
    batch_s = []
    cursor = 0
    for r in range(rounds):
        for name, fn in measurements.items():
            got = [fn((cursor + j) % n) for j in range(per_round)]
            samples[name].extend(got)
            round_medians[name].append(statistics.median(got) / 1e3)
        cursor += per_round
        if r % batch_every == batch_every // 2 and len(batch_s) < spec["batch_repeats"]:
            start = time.perf_counter()
            bundle.predict_batch(batch_texts)
            batch_s.append(time.perf_counter() - start)
    results = {name: stats(samples[name], round_medians[name]) for name in measurements}
    median_s = statistics.median(batch_s)
    batch = {"texts": len(batch_texts), "seconds": batch_s, "median_s": median_s,
             "texts_per_s": len(batch_texts) / median_s}

    # Where predict(text) spends its time: cProfile over many predictions (profiling inflates
    # Python-call-heavy code, so the un-profiled breakdown above is the figure to quote).
    profiler = cProfile.Profile()
    count = spec["profile_predictions"]
    profiler.enable()
    for k in range(count):
        bundle.predict(texts[k % n])
    profiler.disable()
    st = pstats.Stats(profiler, stream=io.StringIO())
    top = []
    for (filename, line, func), (cc, nc, tt, ct, _) in sorted(
            st.stats.items(), key=lambda item: -item[1][2])[:18]:
        short = filename if filename.startswith("~") else "/".join(Path(filename).parts[-2:])
        top.append({"function": f"{short}:{line}({func})", "calls_per_predict": nc / count,
                    "tottime_us_per_predict": tt / count * 1e6, "cumtime_us_per_predict": ct / count * 1e6})
    profile_total = sum(v[2] for v in st.stats.values()) / count * 1e6

    tokens = [len(tok.split(t)) for t in texts]
    out = {
        "runtime": f"{runtime.name} {runtime.version}",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "bundle_form": bundle.metadata.raw["model"]["form"],
        "bundle_quantization": bundle.metadata.raw["model"]["quantization"],
        "bundle_reset_variables": floor_model.reset,
        "texts": n,
        "tokens_per_text_median": statistics.median(tokens),
        "tokens_per_text_max": max(tokens),
        "measurements": results,
        "form_errors": form_errors,
        "parity_outputs": parity,
        "predict_batch": batch,
        "profile": {"predictions": count, "total_us_per_predict_profiled": profile_total, "top": top},
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
