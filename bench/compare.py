"""Benchmarks: bilite's device path against its floor and against what users had before.

One run, one model: trains the default SMS BiLSTM with the host's own code (``bilite.build``),
keeps the trained Keras model, and then measures on this machine, one thread unless stated:

* the floor: bare ``Interpreter.invoke()`` on pre-tokenized ids, tflite-runtime 2.14 (device env);
* ``bilite-device`` ``predict(text)`` end to end, and ``predict_batch`` on 1,000 texts;
* Keras ``model.predict`` and a direct call ``model(x)`` on one text (host env, TensorFlow's
  default threads);
* every conversion form (WHILE loops, fused UNIDIRECTIONAL_SEQUENCE_LSTM with a reset before each
  invoke, unrolled) x quantization (float32, float16, dynamic) of the same weights, on
  tflite-runtime 2.14 and on ai-edge-litert;
* ONNX Runtime on a tf2onnx conversion of the same Keras model (if .venv/bench-onnx exists);
* cold start (new process -> first prediction) and peak RSS of a device process and of a
  TensorFlow process doing the same.

Medians of single calls after warm-up; device-side measurements are interleaved round by round
(see compare_device.py). Prints Markdown tables, the goals as met / missed, and writes
build/bench-compare.json. Run it through ``bench/run`` (sets up the environments first).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
DEVICE_PY = ROOT / ".venv" / "device" / "bin" / "python"
ONNX_PY = ROOT / ".venv" / "bench-onnx" / "bin" / "python"
ONNX_STATUS = ROOT / ".venv" / "bench-onnx.status"
DATA = ROOT / "data" / "sms_spam_collection" / "SMSSpamCollection"
FORMS = ("while", "fused", "unrolled")
FORM_LABEL = {"while": "while (Keras 3 WHILE loops; the seed's path)",
              "fused": "fused (tf_keras UNIDIRECTIONAL_SEQUENCE_LSTM, reset per invoke)",
              "unrolled": "unrolled (Keras 3 unroll=True)"}
QUANTS = ("float32", "float16", "dynamic")
COLD_TEXT = "WINNER!! You have been selected to receive a prize. Call 09061701461 now"
GOALS = {"predict_vs_invoke": 1.10, "chosen_vs_fastest_other": 1.0, "predict_vs_keras": 0.005,
         "predict_vs_onnx": 1.0, "cold_start_s": 0.25, "peak_rss_mb": 50.0}

T0 = time.perf_counter()
CONVERTED: dict = {}  # (form, quantization, target) -> (bytes, facts, seconds), from the build


TIMELINE: list = []


def log(msg: str) -> None:
    TIMELINE.append([round(time.perf_counter() - T0, 1), msg])
    print(f"[{time.perf_counter() - T0:6.1f} s] {msg}", file=sys.stderr, flush=True)


# -- machine -------------------------------------------------------------------------------------
def machine() -> dict:
    cpu, mhz, flags = "unknown", None, []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and cpu == "unknown":
                cpu = value.strip()
            elif key == "cpu MHz" and mhz is None:
                mhz = float(value)
            elif key == "flags" and not flags:
                flags = sorted(set(value.split()) & {"avx2", "fma", "avx512f", "avx512_vnni", "neon", "asimd"})
    except (OSError, ValueError):
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {"cpu": cpu, "cpu_mhz": mhz, "cpu_flags": flags, "cores": os.cpu_count(), "machine": platform.machine(),
            "kernel": platform.release(), "python": platform.python_version(),
            "loadavg_start": load,
            "openblas_env": {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
                             if k in os.environ},
            "note": "shared cloud VM: other jobs run beside this one, so figures are noisy; "
                    "medians of interleaved single calls, ratios taken within this run"}


# -- the model -----------------------------------------------------------------------------------
def train_and_bundle(work: Path, quick: bool, reuse: bool):
    """The default build (bilite.build.build) with its trained Keras model kept."""
    import keras

    from bilite.config import BuildConfig, ModelConfig, TrainConfig

    bundle_dir, keras_path = work / "sms-spam", work / "keras-model.keras"
    if reuse and (bundle_dir / "metadata.json").exists() and keras_path.exists():
        log(f"reusing {bundle_dir} and {keras_path} (--reuse)")
        meta = json.loads((bundle_dir / "metadata.json").read_text())
        cfg = ModelConfig(**meta["training"]["config"]["model"])
        return keras.saving.load_model(keras_path), bundle_dir, meta, cfg, {"reused": True}

    import bilite.forms as forms_mod
    import bilite.keras_model as keras_model_mod
    from bilite.build import build
    from bilite.data import load_dataset

    config = BuildConfig(train=TrainConfig(epochs=2)) if quick else BuildConfig()
    dataset = load_dataset(DATA)
    captured = {}
    original_train, original_convert = keras_model_mod.train_model, forms_mod.convert_checked

    def keep_model(*args, **kwargs):  # build() imports train_model from the module at call time
        model, history = original_train(*args, **kwargs)
        captured["model"] = model
        return model, history

    def keep_conversion(model, form, quantization, target, max_len, *rest, **kwargs):
        # The build converts every form at its quantization: keep those, not convert them twice.
        start = time.perf_counter()
        blob, facts = original_convert(model, form, quantization, target, max_len, *rest, **kwargs)
        CONVERTED[(form, quantization, target)] = (blob, facts, time.perf_counter() - start)
        return blob, facts

    keras_model_mod.train_model = keep_model
    forms_mod.convert_checked = keep_conversion
    start = time.perf_counter()
    try:
        result = build(dataset, config, bundle_dir, name="sms-spam-bench",
                       device_python=str(DEVICE_PY) if DEVICE_PY.exists() else None,
                       log=lambda m: log("build: " + m))
    finally:
        keras_model_mod.train_model = original_train
        forms_mod.convert_checked = original_convert
    seconds = time.perf_counter() - start
    if "model" not in captured:
        raise SystemExit("bench: bilite.build.build no longer calls bilite.keras_model.train_model; "
                         "update train_and_bundle() in bench/compare.py")
    model = captured["model"]
    model.save(keras_path)
    return model, result.bundle_dir, result.metadata, config.model, {"reused": False,
                                                                     "build_seconds": seconds}


def sample_texts(n: int) -> list[str]:
    from bilite.data import load_dataset

    texts = list(load_dataset(DATA).texts)
    random.Random(0).shuffle(texts)
    return texts[:n]


def convert_forms(model, cfg, meta: dict, work: Path, quants) -> list[dict]:
    """Every form x quantization of the trained weights, with the host's own conversion code
    (``inference_twin`` + ``convert_checked``; the build's own conversions are reused)."""
    from bilite.convert import convert_checked
    from bilite.keras_model import inference_twin

    vocab, labels, max_len = meta["tokenizer"]["vocab_size"], len(meta["labels"]), meta["tokenizer"]["max_len"]
    target = meta["model"].get("target", "tflite-runtime-2.14")
    out_dir = work / "forms"
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for quant in quants:
        for form in FORMS:
            key = f"{form}/{quant}"
            start = time.perf_counter()
            try:
                if (form, quant, target) in CONVERTED:
                    blob, facts, seconds = CONVERTED[(form, quant, target)]
                    start -= seconds
                else:
                    twin = inference_twin(model, cfg, vocab, labels, max_len, form)
                    blob, facts = convert_checked(twin, form, quant, target, max_len)
            except Exception as exc:  # noqa: BLE001 - a form that does not convert is a result
                entries.append({"key": key, "form": form, "quantization": quant,
                                "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
                log(f"convert {key}: {entries[-1]['error']}")
                continue
            path = out_dir / f"{form}-{quant}.tflite"
            path.write_bytes(blob)
            reused = (form, quant, target) in CONVERTED
            entries.append({"key": key, "form": form, "quantization": quant, "path": str(path),
                            "size_bytes": len(blob), "convert_s": time.perf_counter() - start,
                            "converted_by_build": reused, "ops": sorted(facts.op_names)})
            log(f"convert {key}: {len(blob) / 1024:.0f} KiB in {entries[-1]['convert_s']:.1f} s"
                + (" (during the build)" if reused else ""))
    return entries


# -- subprocess helpers --------------------------------------------------------------------------
def run_json(cmd: list[str], timeout: float, env: dict | None = None) -> dict:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout, env=env)
    if proc.returncode != 0 or not proc.stdout.strip():
        tail = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()][-6:]
        raise RuntimeError(f"{Path(cmd[0]).parent.parent.name}: exit {proc.returncode}: " + " | ".join(tail))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_worker(python: Path, spec_path: Path, timeout: float) -> dict:
    # stderr (progress) goes to the terminal, stdout carries one JSON document.
    proc = subprocess.run([str(python), str(BENCH / "compare_device.py"), str(spec_path)],
                          stdout=subprocess.PIPE, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{python}: compare_device.py exited {proc.returncode}")
    return json.loads(proc.stdout)


# -- Keras ---------------------------------------------------------------------------------------
def time_keras(model, tokenizer, texts: list[str], predict_runs: int, call_runs: int) -> dict:
    """Tokenize + Keras on one text, as users did before bilite (TensorFlow's default threads)."""
    def predict(k):
        return model.predict(tokenizer.encode(texts[k])[None], verbose=0)

    def call(k):
        return np.asarray(model(tokenizer.encode(texts[k])[None], training=False))

    out = {}
    for name, fn, runs in (("keras_predict", predict, predict_runs), ("keras_call", call, call_runs)):
        for k in range(3):
            fn(k)
        samples = []
        for k in range(runs):
            start = time.perf_counter_ns()
            fn(k % len(texts))
            samples.append(time.perf_counter_ns() - start)
        out[name] = {"median_us": statistics.median(samples) / 1e3, "n": runs,
                     "p10_us": sorted(samples)[runs // 10] / 1e3,
                     "p90_us": sorted(samples)[runs * 9 // 10] / 1e3}
        log(f"{name}: median {out[name]['median_us'] / 1e3:.1f} ms over {runs}")
    import tensorflow as tf

    out["tensorflow_threads"] = {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                                 "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
                                 "note": "0 = TensorFlow's default (all cores)"}
    return out


# -- ONNX Runtime --------------------------------------------------------------------------------
def onnx_unavailable_reason() -> str | None:
    if ONNX_STATUS.exists():
        status = ONNX_STATUS.read_text().strip()
        if status and status != "ok":
            return status
    if not ONNX_PY.exists():
        return "no .venv/bench-onnx (bench/run creates it: pip install onnxruntime tf2onnx onnx)"
    return None


def bench_onnx(model, work: Path, spec: dict) -> dict:
    reason = onnx_unavailable_reason()
    if reason:
        return {"ok": False, "reason": reason}
    import sysconfig

    host_site = sysconfig.get_paths()["purelib"]
    saved = work / "saved-model"
    onnx_path = work / "model.onnx"
    try:
        model.export(str(saved), format="tf_saved_model", verbose=False)
    except TypeError:  # older Keras without verbose=
        model.export(str(saved), format="tf_saved_model")
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "reason": f"Keras SavedModel export failed: {type(exc).__name__}: {exc}"[:300]}
    log("tf2onnx: converting the Keras model (SavedModel export) to ONNX")
    try:
        conversion = run_json([str(ONNX_PY), str(BENCH / "compare_onnx.py"), "convert", "--host-site",
                               host_site, str(saved), str(onnx_path)], timeout=600)
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "reason": f"tf2onnx conversion failed: {exc}"[:400]}
    log(f"tf2onnx: {conversion['size_bytes'] / 1024:.0f} KiB, ops {conversion['ops']}")
    spec_path = work / "onnx-spec.json"
    spec_path.write_text(json.dumps({**spec, "onnx": str(onnx_path)}))
    try:
        timing = run_json([str(ONNX_PY), str(BENCH / "compare_onnx.py"), "time", "--host-site", host_site,
                           str(spec_path)], timeout=900)
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "reason": f"onnxruntime timing failed: {exc}"[:400], "conversion": conversion}
    return {"ok": True, "conversion": conversion, **timing}


# -- cold start ----------------------------------------------------------------------------------
HWM = ("def _hwm():\n"
       "    for line in open('/proc/self/status'):\n"
       "        if line.startswith('VmHWM'):\n"
       "            return int(line.split()[1])\n")

# Each child notes wall-clock checkpoints; the parent subtracts its own time before spawning.
DEVICE_CHILD = "import time\n_t = {'started': time.time()}\n" + HWM + """
import json, sys
from bilite_device import load_bundle
_t["imported"] = time.time()
bundle = load_bundle(sys.argv[1])
_t["loaded"] = time.time()
p = bundle.predict(sys.argv[2])
_t["predicted"] = time.time()
print(json.dumps({"label": p.label, "score": p.score, "vmhwm_kb": _hwm(), "t": _t}), flush=True)
"""

CLI_CHILD = HWM + """
import json, sys
from bilite_device.cli import main  # what the bilite-device console script runs
rc = main(["predict", sys.argv[1], sys.argv[2]])
sys.stdout.flush()
print(json.dumps({"rc": rc, "vmhwm_kb": _hwm()}), flush=True)
"""

TF_CHILD = "import time\n_t = {'started': time.time()}\n" + HWM + """
import json, sys
from pathlib import Path
import keras
from bilite_device.tokenizer import Tokenizer, TokenizerConfig
_t["imported"] = time.time()
bundle = Path(sys.argv[1])
meta = json.loads((bundle / "metadata.json").read_text())
vocab = (bundle / "vocab.txt").read_text(encoding="utf-8").split("\\n")[:-1]
tok = Tokenizer(TokenizerConfig.from_json(meta["tokenizer"]), vocab)
model = keras.saving.load_model(sys.argv[3])
_t["loaded"] = time.time()
score = float(model.predict(tok.encode(sys.argv[2])[None], verbose=0).reshape(-1)[-1])
_t["predicted"] = time.time()
print(json.dumps({"score": score, "vmhwm_kb": _hwm(), "t": _t}), flush=True)
"""


def cold_start(python: Path, code: str, args: list[str], runs: int, label: str,
               pycache: Path | None = None) -> dict:
    """New process -> first prediction printed: wall time at the line's arrival, and VmHWM.

    With ``pycache``, bytecode is cached there (PYTHONPYCACHEPREFIX; the checkout stays
    untouched) and a first, uncounted run fills it: an installed package has its .pyc files, while
    an editable install under PYTHONDONTWRITEBYTECODE=1 recompiles bilite_device every start.
    """
    seconds, rss, errors, phases = [], [], [], []
    env = dict(os.environ)
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
        subprocess.run([str(python), "-c", code, *args], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=300)
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    for _ in range(runs):
        wall = time.time()
        start = time.perf_counter()
        proc = subprocess.Popen([str(python), "-c", code, *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
        got = False
        for line in proc.stdout:  # the prediction line(s), then our JSON line
            if line.startswith("{") and '"vmhwm_kb"' in line:
                seconds.append(time.perf_counter() - start)
                child = json.loads(line)
                rss.append(child["vmhwm_kb"])
                if "t" in child:
                    t = child["t"]
                    phases.append({"python_startup": t["started"] - wall, "imports": t["imported"] - t["started"],
                                   "load": t["loaded"] - t["imported"], "first_predict": t["predicted"] - t["loaded"]})
                got = True
                break
        _, err = proc.communicate(timeout=300)
        if proc.returncode != 0 or not got:
            errors.append(err.strip()[-300:] or f"exit {proc.returncode}")
            if got:  # a prediction that ends in a crash does not count
                seconds.pop()
                rss.pop()
                if phases and len(phases) > len(seconds):
                    phases.pop()
    if not seconds:
        return {"label": label, "error": errors[0] if errors else "no output"}
    out = {"label": label, "runs": len(seconds), "seconds": seconds, "median_s": statistics.median(seconds),
           "min_s": min(seconds), "max_s": max(seconds), "peak_rss_mb_median": statistics.median(rss) / 1024,
           "peak_rss_mb_max": max(rss) / 1024, "errors": errors}
    if phases:
        out["phases_median_s"] = {k: statistics.median(p[k] for p in phases) for k in phases[0]}
    log(f"cold start {label}: median {out['median_s']:.3f} s, peak RSS {out['peak_rss_mb_median']:.1f} MB")
    return out


# -- report --------------------------------------------------------------------------------------
def fmt_t(us: float | None) -> str:
    if us is None:
        return "–"
    if us < 10:
        return f"{us:.1f} µs"
    if us < 1000:
        return f"{us:.0f} µs"
    if us < 1e6:
        return f"{us / 1e3:.2f} ms" if us < 1e4 else f"{us / 1e3:.1f} ms"
    return f"{us / 1e6:.2f} s"


def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def max_diff(outputs: list[list[float]] | None, reference: np.ndarray) -> float | None:
    if not outputs:
        return None
    got = np.asarray(outputs, dtype=np.float32).reshape(len(outputs), -1)
    return float(np.abs(got - reference[: len(got)].reshape(len(got), -1)).max())


def paired(m: dict, a: str, b: str) -> float | None:
    """Median over rounds of (round median of a) / (round median of b): drift between rounds cancels."""
    ra, rb = m.get(a, {}).get("round_medians_us"), m.get(b, {}).get("round_medians_us")
    if not ra or not rb:
        return None
    return statistics.median(x / y for x, y in zip(ra, rb))


def report(r: dict) -> tuple[str, dict]:
    dev, host, keras_t, onnx, cold = r["device"], r["host"], r["keras"], r["onnx"], r["cold_start"]
    dm, hm = dev["measurements"], (host or {}).get("measurements", {})
    med = lambda m, k: m.get(k, {}).get("median_us")  # noqa: E731
    ref = np.asarray(r["keras_reference"], dtype=np.float32)
    out = []
    m = r["machine"]
    load = lambda key: " / ".join(f"{x:.1f}" for x in m.get(key) or []) or "?"  # noqa: E731
    clock = f" at {m['cpu_mhz'] / 1000:.2f} GHz" if m.get("cpu_mhz") else ""
    simd = f", {'/'.join(m['cpu_flags'])}" if m.get("cpu_flags") else ""
    out.append(f"Machine: {m['cpu']}{clock}, {m['cores']} cores ({m['machine']}{simd}, Linux {m['kernel']}), "
               f"load average (1 / 5 / 15 min) {load('loadavg_start')} at start, {load('loadavg_end')} at "
               f"the end; {m['note']}.")
    b = r["bundle"]
    out.append(f"Model: {b['description']}; bundle form **{b['form']}** / {b['quantization']} "
               f"({b['size_bytes'] / 1024:.0f} KiB), chosen by the build on {b['selection_runtime']}. "
               f"{dev['texts']} SMS texts (median {dev['tokens_per_text_median']:.0f} tokens, "
               f"max {dev['tokens_per_text_max']}), one thread unless stated.")
    out.append("")

    # 1. bilite's path
    rt_dev, rt_host = dev["runtime"], (host or {}).get("runtime", "ai-edge-litert (host)")
    floor = med(dm, "bare_invoke")
    rows = []
    for key, label in (("bare_invoke", "bare `Interpreter.invoke()` on pre-tokenized ids (floor)"),
                       ("reset_all_variables", "`reset_all_variables()` alone (fused form, before each invoke)"),
                       ("interpreter_loop", "raw interpreter loop: set_tensor + invoke + get_tensor"),
                       ("model_run", "bilite `TfliteModel.run(ids)`"),
                       ("encode", "bilite tokenizer `encode(text)` alone"),
                       ("scores_for_ids", "bilite `scores_for_ids(ids)` (run + sigmoid to 2 scores)"),
                       ("predict", "**bilite `predict(text)` end to end**")):
        d, h = med(dm, key), med(hm, key)
        if d is None and h is None:
            continue
        rows.append([label, fmt_t(d), f"{d / floor:.2f}×" if d and floor else "–", fmt_t(h)])
    pb, hpb = dev["predict_batch"], (host or {}).get("predict_batch")
    rows.append([f"bilite `predict_batch` on {pb['texts']} texts",
                 f"{pb['texts_per_s']:.0f} texts/s ({fmt_t(1e6 / pb['texts_per_s'])}/text)", "",
                 f"{hpb['texts_per_s']:.0f} texts/s" if hpb else "–"])
    out.append(md_table(["measurement (median per call)", rt_dev + " (device env)", "× floor",
                         rt_host + " (host env)"], rows))
    out.append("")

    # 2. forms x quantization
    forms_rows = []
    by_quant: dict[str, list[tuple[str, float]]] = {}
    for entry in r["forms"]:
        key = entry["key"]
        if "error" in entry:
            forms_rows.append([entry["form"], entry["quantization"], "–", "–", "–", "–",
                               "conversion failed: " + entry["error"][:120]])
            continue
        d, h = med(dm, f"form:{key}"), med(hm, f"form:{key}")
        err = dev["form_errors"].get(key)
        diff = max_diff(dev["parity_outputs"].get(key), ref)
        note = ("same bytes as the bundle's model" if entry.get("same_as_bundle") else "")
        if err:
            note = "does not load: " + err[:100]
        if d is not None:
            by_quant.setdefault(entry["quantization"], []).append((entry["form"], d))
        forms_rows.append([entry["form"], entry["quantization"], f"{entry['size_bytes'] / 1024:.0f}",
                           fmt_t(d), fmt_t(h), f"{diff:.1e}" if diff is not None else "–", note])
    bundle_us, bundle_h = med(dm, "form:bundle"), med(hm, "form:bundle")
    bdiff = max_diff(dev["parity_outputs"].get("bundle"), ref)
    forms_rows.append([f"**bundle ({b['form']})**", b["quantization"], f"{b['size_bytes'] / 1024:.0f}",
                       fmt_t(bundle_us), fmt_t(bundle_h), f"{bdiff:.1e}" if bdiff is not None else "–",
                       "the model bilite ships"])
    for q, items in by_quant.items():
        fastest = min(items, key=lambda fi: fi[1])
        for row in forms_rows:
            if row[0] == fastest[0] and row[1] == q:
                row[6] = (row[6] + "; " if row[6] else "") + "fastest at " + q
    out.append(md_table(["form", "quantization", "KiB", f"{rt_dev} (device env)", f"{rt_host} (host env)",
                         "max abs diff vs Keras", "notes"], forms_rows))
    out.append("")
    out.append("Forms: " + "; ".join(FORM_LABEL[f] for f in FORMS) + ". Timings are the raw "
               "interpreter loop (reset_all_variables + set_tensor + invoke + get_tensor for the fused "
               "form; set + invoke + get for the others), one thread, interleaved.")
    out.append("")

    # 3. other frameworks
    other = []
    kp, kc = med(keras_t, "keras_predict"), med(keras_t, "keras_call")
    predict_us = med(dm, "predict")
    other.append(["Keras 3 `model.predict` (tokenize + predict, one text)", "host env, TF default threads",
                  fmt_t(kp), f"{predict_us / kp:.4f}×" if kp else "–"])
    other.append(["Keras 3 direct call `model(x)` (one text)", "host env, TF default threads",
                  fmt_t(kc), f"{predict_us / kc:.4f}×" if kc else "–"])
    if onnx.get("ok"):
        om = onnx["measurements"]
        odiff = max_diff(onnx.get("parity_outputs"), ref)
        ops = ", ".join(f"{k}" for k in sorted(onnx["conversion"]["ops"]) if k in ("LSTM", "Loop", "Scan"))
        tag = f"onnxruntime {onnx['onnxruntime']}, tf2onnx {onnx['conversion']['tf2onnx']}, 1 thread"
        diff_text = f"max abs diff vs Keras {odiff:.1e}" if odiff is not None else "no parity figure"
        other.append([f"ONNX Runtime `session.run` on pre-tokenized ids (ONNX {ops or 'no RNN op'}; "
                      f"{diff_text})", tag,
                      fmt_t(om["ort_run"]["median_us"]),
                      f"{med(dm, 'model_run') / om['ort_run']['median_us']:.2f}× (bilite `TfliteModel.run`)"])
        other.append(["ONNX Runtime: bilite tokenizer + `session.run`", tag,
                      fmt_t(om["ort_tokenize_and_run"]["median_us"]),
                      f"{predict_us / om['ort_tokenize_and_run']['median_us']:.2f}×"])
    else:
        other.append(["ONNX Runtime (tf2onnx)", "not measured", "–", onnx.get("reason", "?")])
    out.append(md_table(["alternative", "where", "median per call", "bilite predict(text) ÷ this"], other))
    out.append("")

    # 4. cold start
    crow = []
    for c in cold:
        if "error" in c:
            crow.append([c["label"], "–", "–", "failed: " + c["error"][:100]])
        else:
            ph = c.get("phases_median_s")
            note = (f"python start {ph['python_startup']:.3f} + imports {ph['imports']:.3f} + load "
                    f"{ph['load']:.3f} + first predict {ph['first_predict']:.3f} s") if ph else ""
            crow.append([c["label"], f"{c['median_s']:.3f} s ({c['min_s']:.3f}–{c['max_s']:.3f}, {c['runs']} runs)",
                         f"{c['peak_rss_mb_median']:.1f} MB", note])
    out.append(md_table(["new process → first prediction", "wall time, median (min–max)", "peak RSS (VmHWM)",
                         "phases (medians)"], crow))
    out.append("")

    # goals
    goals = {}

    def goal(key, name, value, limit, figures):
        ok = value is not None and value <= limit
        goals[key] = {"goal": name, "value": value, "limit": limit, "met": ok, "figures": figures}

    pr = paired(dm, "predict", "bare_invoke")
    goal("predict_vs_invoke", "predict(text) ≤ 1.10× bare invoke",
         predict_us / floor if floor else None, GOALS["predict_vs_invoke"],
         f"{fmt_t(predict_us)} / {fmt_t(floor)} = {predict_us / floor:.2f}×"
         + (f" (paired per round: {pr:.2f}×)" if pr else ""))
    q = b["quantization"]
    others = [(f, us) for f, us in by_quant.get(q, []) if f != b["form"]]
    if others and bundle_us:
        of, ous = min(others, key=lambda fi: fi[1])
        pr = paired(dm, "form:bundle", f"form:{of}/{q}")
        goal("chosen_vs_fastest_other", f"chosen form ({b['form']}) ≤ 1.0× fastest other form at {q}",
             bundle_us / ous, GOALS["chosen_vs_fastest_other"],
             f"{fmt_t(bundle_us)} / {of} {fmt_t(ous)} = {bundle_us / ous:.2f}×"
             + (f" (paired per round: {pr:.2f}×)" if pr else ""))
    goal("predict_vs_keras", "predict(text) ≤ 0.005× Keras model.predict",
         predict_us / kp if kp else None, GOALS["predict_vs_keras"],
         f"{fmt_t(predict_us)} / {fmt_t(kp)} = {predict_us / kp:.4f}×" if kp else "no Keras figure")
    if onnx.get("ok"):
        oe = onnx["measurements"]["ort_tokenize_and_run"]["median_us"]
        goal("predict_vs_onnx", "predict(text) ≤ 1.0× ONNX Runtime (same tokenizer + session.run)",
             predict_us / oe, GOALS["predict_vs_onnx"], f"{fmt_t(predict_us)} / {fmt_t(oe)} = {predict_us / oe:.2f}×")
    else:
        goals["predict_vs_onnx"] = {"goal": "predict(text) ≤ 1.0× ONNX Runtime", "value": None,
                                    "limit": 1.0, "met": None, "figures": "not measured: " + onnx.get("reason", "?")}
    dev_cold = next((c for c in cold if c.get("key") == "device" and "error" not in c), None)
    if dev_cold:
        goal("cold_start_s", "device cold start ≤ 0.25 s (new process → first prediction)",
             dev_cold["median_s"], GOALS["cold_start_s"], f"median {dev_cold['median_s']:.3f} s")
        goal("peak_rss_mb", "device peak RSS ≤ 50 MB", dev_cold["peak_rss_mb_median"], GOALS["peak_rss_mb"],
             f"{dev_cold['peak_rss_mb_median']:.1f} MB (max {dev_cold['peak_rss_mb_max']:.1f})")
    grow = [[g["goal"], g["figures"], "met" if g["met"] else ("not measured" if g["met"] is None else "**MISSED**")]
            for g in goals.values()]
    out.append(md_table(["goal", "measured in this run", "result"], grow))
    return "\n".join(out), goals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 training epochs, fewer runs (about 3 min)")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse build/bench's bundle and Keras model from an earlier run")
    parser.add_argument("--no-onnx", action="store_true", help="skip ONNX Runtime")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "bench")
    parser.add_argument("--json", type=Path, default=ROOT / "build" / "bench-compare.json")
    args = parser.parse_args()
    if not DEVICE_PY.exists():
        raise SystemExit("bench: .venv/device is missing; run bench/run (it runs scripts/setup-envs)")
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    q = args.quick
    result: dict = {"machine": machine(), "quick": q, "goals_limits": GOALS}

    log("training and bundling the default SMS model with bilite.build.build")
    model, bundle_dir, meta, cfg, build_info = train_and_bundle(work, q, args.reuse)
    result["build"] = build_info
    bundle_bytes = (Path(bundle_dir) / "model.tflite").read_bytes()
    result["bundle"] = {"dir": str(bundle_dir), "form": meta["model"]["form"],
                        "quantization": meta["model"]["quantization"], "size_bytes": len(bundle_bytes),
                        "selection_runtime": meta["model"].get("selection", {}).get("runtime", "?"),
                        "selection_candidates": meta["model"].get("selection", {}).get("candidates"),
                        "metrics": {k: meta["metrics"].get(k) for k in ("accuracy", "macro_f1")},
                        "description": f"Embedding {cfg.embed_dim} → Bidirectional({cfg.cell.upper()} "
                                       f"{cfg.units}) × {cfg.layers} → Dense, T = {meta['tokenizer']['max_len']}, "
                                       f"vocabulary {meta['tokenizer']['vocab_size']}, trained on the SMS Spam "
                                       f"Collection (TFLite test accuracy {meta['metrics']['accuracy']:.4f})"}

    log("converting every form x quantization of the same weights")
    quants = (meta["model"]["quantization"],) if q else QUANTS
    forms = convert_forms(model, cfg, meta, work, quants)
    for entry in forms:
        if "path" in entry:
            entry["same_as_bundle"] = Path(entry["path"]).read_bytes() == bundle_bytes
    result["forms"] = forms

    texts = sample_texts(1000)
    from bilite_device import load_bundle

    tokenizer = load_bundle(bundle_dir).tokenizer
    parity_rows = 50
    ref_ids = np.stack([tokenizer.encode(t) for t in texts[:parity_rows]])
    result["keras_reference"] = np.asarray(model.predict(ref_ids, verbose=0), dtype=np.float32).tolist()

    spec = {"bundle": str(bundle_dir), "texts": texts, "parity_rows": parity_rows,
            "models": [{"key": "bundle", "path": str(Path(bundle_dir) / "model.tflite")}]
            + [{"key": e["key"], "path": e["path"]} for e in forms if "path" in e],
            "rounds": 8 if q else 30, "per_round": 15 if q else 25, "warmup": 30,
            "batch_repeats": 2 if q else 5, "profile_predictions": 1000 if q else 3000}
    spec_path = work / "device-spec.json"
    spec_path.write_text(json.dumps(spec))
    log("device env (tflite-runtime 2.14): timing the floor, predict, predict_batch and every form")
    result["device"] = run_worker(DEVICE_PY, spec_path, timeout=1200)
    log("host env (ai-edge-litert): the same measurements")
    try:
        result["host"] = run_worker(Path(sys.executable), spec_path, timeout=1200)
    except Exception as exc:  # noqa: BLE001 - the host's runtime is a side note
        result["host"] = None
        log(f"host runtime timing failed: {exc}")

    log("Keras: model.predict and model(x) on one text")
    result["keras"] = time_keras(model, tokenizer, texts, 20 if q else 60, 8 if q else 15)

    if args.no_onnx:
        result["onnx"] = {"ok": False, "reason": "skipped (--no-onnx)"}
    else:
        onnx_spec = {"bundle": str(bundle_dir), "texts": texts, "parity_rows": parity_rows,
                     "rounds": spec["rounds"], "per_round": spec["per_round"], "warmup": 30}
        result["onnx"] = bench_onnx(model, work, onnx_spec)
        if not result["onnx"].get("ok"):
            log(f"ONNX Runtime not measured: {result['onnx']['reason']}")

    log("cold start: new process -> first prediction")
    keras_path = work / "keras-model.keras"
    bundle_arg = [str(bundle_dir), COLD_TEXT]
    pyc = work / "pycache"
    result["cold_start"] = [
        {"key": "device", **cold_start(DEVICE_PY, DEVICE_CHILD, bundle_arg, 3 if q else 9,
                                       "device: python -c load_bundle(dir) + predict (tflite-runtime 2.14)",
                                       pycache=pyc)},
        {"key": "device_tar", **cold_start(DEVICE_PY, DEVICE_CHILD, [str(bundle_dir) + ".tar.gz", COLD_TEXT],
                                           2 if q else 5, "device: same, from the .tar.gz", pycache=pyc)},
        {"key": "cli", **cold_start(DEVICE_PY, CLI_CHILD, bundle_arg, 2 if q else 5,
                                    "device: `bilite-device predict DIR TEXT` (its main())", pycache=pyc)},
        {"key": "device_nopyc", **cold_start(DEVICE_PY, DEVICE_CHILD, bundle_arg, 2 if q else 5,
                                             "device: load_bundle + predict, no bytecode cache "
                                             "(PYTHONDONTWRITEBYTECODE=1, editable install)")},
        {"key": "tensorflow", **cold_start(Path(sys.executable), TF_CHILD, bundle_arg + [str(keras_path)],
                                           1 if q else 3, "TensorFlow: import keras, load_model(.keras) "
                                           "+ model.predict (site-packages .pyc as installed)")},
    ]
    try:
        result["machine"]["loadavg_end"] = os.getloadavg()
    except OSError:
        pass

    table, goals = report(result)
    result["goals"] = goals
    result["table_markdown"] = table
    result["seconds"] = time.perf_counter() - T0
    result["timeline"] = TIMELINE
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1, default=float))
    print(table)
    print(f"\nwrote {args.json.relative_to(ROOT) if args.json.is_relative_to(ROOT) else args.json} "
          f"in {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
