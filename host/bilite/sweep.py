"""``--quantize all``: convert every quantization mode, measure each, keep the smallest that is
accurate enough.

One row per mode: size, accuracy and macro F1 on the test split (TFLite, host runtime), label
agreement and max |diff| of scores against the float Keras model, latency per invoke on the
target runtime (one thread, median, from the form selection), and the op list. A mode that
cannot be produced (the converter fails or crashes in its child process) gets a row saying why.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from bilite_device.model import TfliteModel

from .bundle_writer import compressed_size
from .compare import tflite_scores
from .errors import BiliteError, ConversionError
from .metrics import classification_metrics

MODES = ("float32", "float16", "dynamic", "int8")


def mode_config(config, mode: str):
    form = config.convert.form
    if mode == "int8" and form == "while":
        form = "auto"  # int8 cannot use WHILE loops; let the measurements choose among the rest
    return replace(config, convert=replace(config.convert, quantization=mode, form=form))


def evaluate(blob: bytes, meta: dict, x_test, y_test, keras_test: np.ndarray, labels: list[str],
             sigmoid: bool, metrics_fn=None) -> dict:
    """``metrics_fn(y, scores, labels)``: per-token metrics for taggers; default per text."""
    scores = tflite_scores(TfliteModel(blob, meta), x_test, sigmoid)
    if metrics_fn is None:
        metrics = classification_metrics(y_test, scores.argmax(-1), labels)
    else:
        scores = scores.reshape(keras_test.shape)
        metrics = metrics_fn(y_test, scores, labels)
    return {
        "accuracy": metrics["accuracy"],
        "macro_f1": metrics["macro_f1"],
        "label_agreement_with_float": float((scores.argmax(-1) == keras_test.argmax(-1)).mean()),
        "max_abs_diff_vs_float": float(np.abs(scores - keras_test).max()) if len(scores) else 0.0,
        "metrics": metrics,
    }


# What a compressed mode should reach against float32 (issue targets for the SMS model).
SIZE_RATIO_TARGET = 0.30


def forms_tried(meta: dict) -> list[dict]:
    out = []
    for c in meta.get("selection", {}).get("candidates", []):
        entry = {"form": c["form"], "ok": c["ok"]}
        if "latency_us" in c:
            entry.update(latency_us=c["latency_us"], size_bytes=c["size_bytes"],
                         max_abs_diff_vs_keras=c["parity"]["max_abs_diff"])
        else:
            entry["error"] = c.get("error", "")[:200]
        out.append(entry)
    return out


def explain(row: dict, max_accuracy_drop: float) -> str:
    """A measured sentence on why a compressed mode misses the size or accuracy target."""
    if not row["available"]:
        return f"unavailable: {row['reason'][:300]}"
    if row["mode"] in ("float32", "float16"):
        return ""
    misses = []
    if row.get("size_ratio", 0) > SIZE_RATIO_TARGET:
        misses.append(f"{row['size_ratio']:.2f}x the float32 size (target {SIZE_RATIO_TARGET}x)")
    if row.get("accuracy_drop_points", 0) > max_accuracy_drop:
        misses.append(f"{row['accuracy_drop_points']:.2f} accuracy points below float32 (budget {max_accuracy_drop})")
    if not misses:
        return ""
    tried = "; ".join(
        f"{t['form']}: {t['size_bytes'] / 1024:.0f} KiB, {t['latency_us']:.0f} us/invoke, max |diff| vs Keras "
        f"{t['max_abs_diff_vs_keras']:.3g}{'' if t['ok'] else ' (failed parity)'}" if "latency_us" in t
        else f"{t['form']}: {t['error']}" for t in row.get("forms_tried", []))
    return f"misses: {', '.join(misses)}. Forms measured: {tried}."


def pick(rows: list[dict], max_accuracy_drop: float) -> dict:
    """The smallest available mode whose accuracy is within ``max_accuracy_drop`` points of
    float32's (float32 itself always qualifies)."""
    available = [r for r in rows if r["available"]]
    reference = next((r for r in available if r["mode"] == "float32"), None)
    if reference is None:
        raise ConversionError("float32 conversion failed, so no mode can be compared: "
                              + "; ".join(r.get("reason", "") for r in rows))
    floor = reference["accuracy"] - max_accuracy_drop / 100.0
    within = [r for r in available if r["accuracy"] >= floor - 1e-12]
    return min(within, key=lambda r: (r["size_bytes"], MODES.index(r["mode"])))


def run_sweep(keras_model, config, select, x_test, y_test, keras_test, labels, log, metrics_fn=None):
    """``select(config) -> (candidate, model_meta)`` converts one mode (see build.select_form)."""
    rows, chosen = [], {}
    sigmoid = len(labels) == 2 and metrics_fn is None and config.model.binary_head == "sigmoid"
    for mode in MODES:
        log(f"quantization {mode}:")
        try:
            candidate, meta = select(mode_config(config, mode))
        except BiliteError as exc:
            log(f"  {mode}: unavailable: {exc}")
            rows.append({"mode": mode, "available": False, "reason": str(exc)})
            continue
        result = evaluate(candidate.model_bytes, meta, x_test, y_test, keras_test, labels, sigmoid,
                          metrics_fn)
        rows.append({"mode": mode, "available": True, "form": candidate.form,
                     "size_bytes": len(candidate.model_bytes),
                     # what the mode costs inside the bundle's .tar.gz (pruned zeros compress)
                     "gzip_bytes": compressed_size(candidate.model_bytes),
                     "latency_us": round(candidate.latency_us, 1),
                     "ops": [f"{o['name']} v{o['version']}" for o in meta["ops"]],
                     "forms_tried": forms_tried(meta),
                     **{k: v for k, v in result.items() if k != "metrics"}})
        chosen[mode] = (candidate, meta, result["metrics"])
    reference = next((r for r in rows if r["mode"] == "float32" and r["available"]), None)
    for row in rows:
        if row["available"] and reference:
            row["size_ratio"] = row["size_bytes"] / reference["size_bytes"]
            row["accuracy_drop_points"] = 100.0 * (reference["accuracy"] - row["accuracy"])
    for row in rows:
        row["note"] = explain(row, config.convert.max_accuracy_drop)
    best = pick(rows, config.convert.max_accuracy_drop)
    log("mode      form      size (KiB)  ratio  accuracy  drop (pt)  agree  µs/invoke")
    for r in rows:
        if r["available"]:
            log(f"{r['mode']:<9} {r['form']:<9} {r['size_bytes'] / 1024:>10.1f}  {r['size_ratio']:.2f}  "
                f"{r['accuracy']:.4f}  {r['accuracy_drop_points']:>8.2f}  {r['label_agreement_with_float']:.3f}  "
                f"{r['latency_us']:>9.0f}")
        else:
            log(f"{r['mode']:<9} unavailable: {r['reason'][:100]}")
    log(f"chosen: {best['mode']} (smallest within {config.convert.max_accuracy_drop} accuracy points of float32)")
    return best["mode"], rows, chosen[best["mode"]]
