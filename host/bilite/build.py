"""``bilite build``: data -> vocabulary -> trained BiRNN -> chosen TFLite form -> bundle.

Every number in the bundle's metadata is measured on the converted TFLite model through the
device package's own code (tokenizer and interpreter binding), so host and device cannot differ.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata as dist
from pathlib import Path

import numpy as np

from bilite_device.bundle import load_bundle
from bilite_device.model import TfliteModel
from bilite_device.errors import SmokeTestError
from bilite_device.schema import (GOLDEN_FILE, LABELS_FILE, METADATA_FILE, MODEL_FILE, SCHEMA_VERSION,
                                  VOCAB_FILE)
from bilite_device.smoke import require_ok, run_smoke
from bilite_device.tokenizer import Tokenizer, build_vocab

from .bundle_writer import write_bundle
from .destination import check_output
from .card import render_bundle_docs
from .compare import tflite_scores
from .config import BuildConfig
from .data import Dataset, split_with_test, stratified_split
from .forms import choose_form
from .golden import make_golden, pick_texts
from .interop import interop_model, interop_section
from .keras_model import sigmoid_head
from .metrics import classification_metrics
from .prune import prune_after_training
from .target import TargetRunner, find_device_python

PARITY_INPUTS = 200  # validation texts run through each candidate form


@dataclass
class BuildResult:
    bundle_dir: Path
    archive: Path
    metadata: dict


def library_versions() -> dict:
    versions = {"python": platform.python_version()}
    for name in ("bilite", "bilite-device", "tensorflow", "keras", "tf-keras", "numpy", "ai-edge-litert",
                 "tflite-runtime"):
        try:
            versions[name.replace("-", "_")] = dist.version(name)
        except dist.PackageNotFoundError:
            pass
    return versions


CALIBRATION_INPUTS = 200  # training texts that calibrate full-int8 activation ranges


def select_form(keras_model, config: BuildConfig, vocab_size: int, num_labels: int, x_val,
                target: TargetRunner, log, calibration=None, **model_kwargs):
    """Convert, prove and time every candidate form on the target; the model section of metadata."""
    from .keras_model import predict_scores

    cfg_conv = config.convert
    measured_on = target.describe()
    log(f"converting ({cfg_conv.quantization}, target {cfg_conv.target}); measuring forms on "
        f"{measured_on}, one thread:")
    if target.python is None and cfg_conv.target == "tflite-runtime-2.14":
        log("  warning: no device environment (--device-python / BILITE_DEVICE_PYTHON): timing on "
            "the host runtime, which ranks forms differently from tflite-runtime 2.14")
    parity_ids = x_val[:PARITY_INPUTS]
    chosen, tried = choose_form(keras_model, config.model, cfg_conv, vocab_size, num_labels,
                                config.tokenizer.max_len, parity_ids,
                                predict_scores(keras_model, parity_ids), target, log=log,
                                model_kwargs=model_kwargs, calibration=calibration)
    log(f"chosen form: {chosen.form}")
    return chosen, {**chosen.meta, "selection": {
        "runtime": measured_on, "threads": 1, "candidates": tried,
        "rule": "fastest form that matches Keras; within 3 % of the fastest, the smallest file"}}


def other_runtimes(target_name: str) -> list[TargetRunner]:
    """Device environments that must also run a bundle built for ``target_name``: one built for
    tflite-runtime 2.14 must load on ai-edge-litert too (its successor); the reverse need not hold
    (ai-edge-litert takes op versions 2.14 lacks)."""
    if target_name != "tflite-runtime-2.14":
        return []
    python = find_device_python(None, "ai-edge-litert")
    return [TargetRunner(python)] if python else []


def choose_model(keras_model, config: BuildConfig, vocab_size: int, labels: list[str], x_train, x_val,
                 x_test, y_test, target: TargetRunner, log, metrics_fn=None, **model_kwargs):
    """The converted model to ship: one quantization mode, or with ``--quantize all`` the sweep's
    choice. Returns (candidate, model metadata, quantization, sweep table or None)."""
    from .keras_model import predict_scores

    calibration = x_train[:CALIBRATION_INPUTS]

    def select(cfg):
        return select_form(keras_model, cfg, vocab_size, len(labels), x_val, target, log,
                           calibration=calibration, **model_kwargs)

    if config.convert.quantization != "all":
        chosen, model_meta = select(config)
        return chosen, model_meta, config.convert.quantization, None
    from .sweep import run_sweep

    mode, rows, (chosen, model_meta, _) = run_sweep(
        keras_model, config, select, x_test, y_test, predict_scores(keras_model, x_test), labels, log,
        metrics_fn=metrics_fn)
    unit = "token accuracy" if metrics_fn else "accuracy"
    sweep = {"chosen": mode, "max_accuracy_drop_points": config.convert.max_accuracy_drop, "rows": rows,
             "rule": f"smallest mode whose TFLite test {unit} is within the budget of float32's"}
    return chosen, model_meta, mode, sweep


def write_verified(out_dir, files: dict[str, bytes], target: TargetRunner, log,
                   also: list[TargetRunner] = ()) -> tuple[Path, Path]:
    """Write the bundle once it loads and passes its smoke test here, on the device runtime, and
    on each runtime in ``also``."""

    def verify(staged: Path) -> None:
        require_ok(run_smoke(load_bundle(staged), latency_runs=20))
        for runner in [target, *also]:
            report = runner.smoke(staged)
            if report is None:
                continue
            if not report.get("ok"):
                raise SmokeTestError(
                    f"the bundle fails `bilite-device smoke` on {report.get('runtime')}: "
                    + "; ".join(str(f) for f in report.get("failures", [])[:3])
                    + ". Nothing was written. Try --quantize float32 (exact across runtimes) or "
                    "another --form, and report the model if it persists.")
            log(f"smoke on {report['runtime']} ({runner.where()}): {report['vectors']} golden vectors x 2 "
                f"passes, max |diff| {report['max_abs_diff']:.2g}, p50 {report['latency_ms_p50']:.3f} ms")

    return write_bundle(out_dir, files, verify=verify)


def bundle_files(model_bytes: bytes, vocab: list[str], labels: list[str], meta: dict, golden: dict,
                 example_text: str, extra: dict[str, bytes] | None = None) -> dict[str, bytes]:
    """Every file of a bundle but the checksum list (bundle_writer adds it)."""
    return {
        MODEL_FILE: model_bytes,
        VOCAB_FILE: ("\n".join(vocab) + "\n").encode("utf-8"),
        LABELS_FILE: ("\n".join(labels) + "\n").encode("utf-8"),
        METADATA_FILE: (json.dumps(meta, indent=2, ensure_ascii=False) + "\n").encode("utf-8"),
        GOLDEN_FILE: (json.dumps(golden, indent=1, ensure_ascii=False) + "\n").encode("utf-8"),
        **(extra or {}),
        **render_bundle_docs(meta, example_text=example_text),
    }


def finish(out_dir, files: dict[str, bytes], meta: dict, target: TargetRunner, t0: float, log) -> BuildResult:
    bundle_dir, archive = write_verified(out_dir, files, target, log,
                                         also=other_runtimes(meta["model"]["target"]))
    log(f"bundle: {bundle_dir} and {archive} ({archive.stat().st_size / 1024:.0f} KiB) "
        f"in {time.perf_counter() - t0:.0f} s")
    return BuildResult(bundle_dir, archive, meta)


def build(dataset: Dataset, config: BuildConfig, out_dir, name: str | None = None,
          device_python: str | None = None, test_set: Dataset | None = None, log=print) -> BuildResult | None:
    """None on a multi-worker worker that is not the chief (it trains; the chief writes the bundle)."""
    t0 = time.perf_counter()
    check_output(out_dir, name)
    cfg_tok, cfg_model, cfg_train = config.tokenizer, config.model, config.train
    if test_set is None:
        train, val, test = stratified_split(dataset, cfg_train.seed, cfg_train.validation_fraction,
                                            cfg_train.test_fraction)
    else:
        train, val, test = split_with_test(dataset, test_set, cfg_train.seed,
                                           cfg_train.validation_fraction)
    labels = dataset.label_names()
    shown = labels if len(labels) <= 10 else labels[:10] + [f"… {len(labels)} in all"]
    log(f"data: {len(dataset)} texts from {dataset.source}; labels {shown}; "
        f"split {len(train)}/{len(val)}/{len(test)} (train/validation/test, seed {cfg_train.seed}"
        + (f"; test set {test_set.source}" if test_set is not None else "") + ")")

    tokenizer = Tokenizer(cfg_tok, build_vocab(train.texts, cfg_tok))
    log(f"vocabulary: {len(tokenizer)} tokens (cap {cfg_tok.max_vocab}, min count {cfg_tok.min_count}); "
        f"max_len {cfg_tok.max_len}")
    index = {label: i for i, label in enumerate(labels)}
    x_train, x_val, x_test = (tokenizer.encode_batch(d.texts) for d in (train, val, test))
    y_train, y_val, y_test = (np.array([index[y] for y in d.labels]) for d in (train, val, test))

    from .keras_model import train_model

    log(f"training: Bidirectional({cfg_model.cell.upper()} {cfg_model.units}) x {cfg_model.layers}, "
        f"embedding {cfg_model.embed_dim}")
    keras_model, history = train_model(cfg_model, cfg_train, len(tokenizer), len(labels),
                                       cfg_tok.max_len, x_train, y_train, x_val, y_val, log=log,
                                       scale=config.scale)
    if keras_model is None:  # a multi-worker worker that is not the chief: the chief ships
        return None
    training = {"dataset": dataset.source,
                "test_set": test_set.source if test_set is not None else "stratified split",
                "split_sizes": {"train": len(train), "validation": len(val), "test": len(test)}}
    return ship_classifier(TrainedClassifier(keras_model, history, tokenizer, labels, x_train, y_train, x_val,
                                             y_val, x_test, y_test, test, training),
                           config, out_dir, name, device_python, t0, log)


@dataclass
class TrainedClassifier:
    """What the shipping half of a build takes from the training half (in memory, or streamed,
    where the arrays are bounded samples: see stream_build.py)."""

    keras_model: object
    history: dict
    tokenizer: Tokenizer
    labels: list[str]
    x_train: np.ndarray  # calibration texts are taken from its start
    y_train: np.ndarray
    x_val: np.ndarray  # parity inputs are taken from its start
    y_val: np.ndarray
    x_test: np.ndarray  # TFLite metrics, the sweep and the golden texts use these
    y_test: np.ndarray
    test: Dataset
    training: dict  # metadata: dataset, test_set, split_sizes (and how the split was made)


def ship_classifier(trained: TrainedClassifier, config: BuildConfig, out_dir, name: str | None,
                    device_python: str | None, t0: float, log) -> BuildResult:
    """Trained Keras classifier -> converted, measured, verified bundle."""
    from .keras_model import predict_scores

    cfg_tok, cfg_model, cfg_train = config.tokenizer, config.model, config.train
    keras_model, history, tokenizer, labels, test = (trained.keras_model, trained.history, trained.tokenizer,
                                                     trained.labels, trained.test)
    x_train, y_train, x_val, y_val, x_test, y_test = (trained.x_train, trained.y_train, trained.x_val,
                                                      trained.y_val, trained.x_test, trained.y_test)
    pruning = prune_after_training(keras_model, config, len(tokenizer), labels, x_train, y_train, x_val,
                                   y_val, log=log)
    keras_test = classification_metrics(y_test, predict_scores(keras_model, x_test).argmax(1), labels)
    log(f"keras test accuracy {keras_test['accuracy']:.4f}, macro F1 {keras_test['macro_f1']:.4f}")

    target = TargetRunner(find_device_python(device_python, config.convert.target))
    chosen, model_meta, quantization, sweep = choose_model(
        keras_model, config, len(tokenizer), labels, x_train, x_val, x_test, y_test, target, log)
    sigmoid = sigmoid_head(cfg_model, len(labels))
    name = name or Path(out_dir).name
    description = f"Bidirectional {cfg_model.cell.upper()} text classifier built by bilite."
    interop, converted = interop_section(), chosen  # converted: without TFLite Metadata
    if config.interop:  # TFLite Metadata for the Task Library and MediaPipe, proven harmless
        chosen, model_meta, interop = interop_model(
            chosen, model_meta, tokenizer.vocab, labels, name, description, x_val,
            [target, *other_runtimes(config.convert.target)], log)

    # Metrics on the TFLite model, through one interpreter, in sequence (as on the device).
    tflite = TfliteModel(chosen.model_bytes, model_meta, num_threads=1)
    tflite_test = tflite_scores(tflite, x_test, sigmoid=sigmoid)
    metrics = classification_metrics(y_test, tflite_test.argmax(1), labels)
    metrics.update({"evaluated_on": "tflite", "split": "test",
                    "keras": {"accuracy": keras_test["accuracy"], "macro_f1": keras_test["macro_f1"]},
                    "label_agreement_with_keras": float(
                        (tflite_test.argmax(1) == predict_scores(keras_model, x_test).argmax(1)).mean())})
    per_label = ", ".join(f"{k} F1 {v['f1']:.4f}" for k, v in metrics["per_label"].items())
    log(f"tflite test accuracy {metrics['accuracy']:.4f}, macro F1 {metrics['macro_f1']:.4f}"
        + (f", {per_label}" if len(labels) <= 10 else " (per-label figures in the model card)"))

    golden_texts = pick_texts(test.texts, test.labels, config.golden_count)
    golden = make_golden([{"text": t} for t in golden_texts], tokenizer.encode_batch(golden_texts),
                         chosen.model_bytes, model_meta, labels,
                         lambda ids: predict_scores(keras_model, ids), quantization,
                         sigmoid=sigmoid, fresh_scores=target.fresh_scores)
    golden["computed_on"] = model_meta["selection"]["runtime"]

    meta = {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "description": description,
        "task": "classification",
        "created": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "labels": labels,
        "output": {"kind": "sigmoid" if sigmoid else "softmax",
                   "positive_label": labels[1] if len(labels) == 2 else None},
        "tokenizer": {**cfg_tok.to_json(), "vocab_file": VOCAB_FILE, "vocab_size": len(tokenizer)},
        "model": model_meta,
        "interop": interop,
        "metrics": metrics,
        "quantization_sweep": sweep,
        "pruning": pruning.report(converted, quantization, x_test, y_test, target, log) if pruning else None,
        "golden": {"file": GOLDEN_FILE, "count": len(golden["vectors"]),
                   **{k: v for k, v in golden.items() if k != "vectors"}},
        "training": {**trained.training, "config": config.to_json(), "seed": cfg_train.seed,
                     "epochs_run": len(history.get("loss", [])), "history": history},
        "library_versions": library_versions(),
    }
    make_files = lambda m: bundle_files(chosen.model_bytes, tokenizer.vocab, labels, m, golden,  # noqa: E731
                                        example_text=golden_texts[-1][:80].replace('"', "'"))
    files = pruning.bundle_with_sizes(meta, make_files, out_dir) if pruning else make_files(meta)
    return finish(out_dir, files, meta, target, t0, log)
