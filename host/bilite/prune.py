"""``--prune``: magnitude pruning of the trained BiRNN, and a measured report of what it buys.

tensorflow-model-optimization refuses Bidirectional layers, so the masking is done here. After
normal training the model is fine-tuned for ``--prune-epochs`` more epochs while a Keras callback,
after every training batch, zeroes the smallest-|w| fraction of each prunable weight: the
embedding tables, both directions' kernels and recurrent kernels, and the head's kernel (biases
stay: they are a rounding error in size). The fraction follows a schedule over the fine-tune
steps: ``polynomial`` ramps from 0 to the target over the first 70 % of them (cubic, as TF-MOT's
PolynomialDecay: big steps early, while the model recovers easily), ``constant`` prunes to the
target at the first step. Masks are recomputed at the schedule points and held in between, and
re-applied after every batch, so Adam's momentum cannot revive a pruned weight. Nothing of this
stays in the model but zeros in ordinary weights, so conversion is unchanged.

What it buys is measured, not promised (``metadata.json`` ``pruning``): TFLite stores and runs
weights densely, so model.tflite keeps its size and its speed; zeros compress, so the gzipped
model and the bundle's ``.tar.gz`` shrink. The report converts the unpruned model in the same
form and quantization and sets the two side by side, and counts the zeros in the converted file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from bilite_device.model import TfliteModel
from bilite_device.schema import MODEL_FILE

from .bundle_writer import archive_size, compressed_size
from .compare import tflite_scores
from .config import BuildConfig
from .metrics import classification_metrics
from .tflite_weights import locate_weights

PRUNABLE = ("embeddings", "kernel", "recurrent_kernel")  # Keras variable names; biases are kept
RAMP_FRACTION = 0.7  # the rest of the fine-tune steps recover at the target sparsity
MASK_UPDATES = 16  # mask recomputations along the ramp
PARITY_INPUTS = CALIBRATION_INPUTS = 200  # as in build.py
TIMING_INPUTS = 50
SIZE_ROUNDS = 3  # renders to measure the .tar.gz sizes that the bundle itself records


def sparsity_at(step: int, ramp_steps: int, target: float, schedule: str) -> float:
    if schedule == "constant" or step >= ramp_steps:
        return target
    return target * (1.0 - (1.0 - step / ramp_steps) ** 3)


def keep_largest(values: np.ndarray, fraction: float) -> np.ndarray:
    """A 0/1 mask zeroing exactly round(fraction * size) smallest-|w| entries (ties cut anywhere)."""
    drop = int(round(fraction * values.size))
    keep = np.ones(values.size, dtype=values.dtype)
    if drop:
        keep[np.argpartition(np.abs(values).ravel(), drop - 1)[:drop]] = 0
    return keep.reshape(values.shape)


def one_sigmoid_unit(model) -> bool:
    """A two-label classifier with one sigmoid output (scores [1 - p, p]), not a softmax head."""
    return int(model.outputs[0].shape[-1]) == 1


def prunable_indices(model) -> list[int]:
    return [i for i, v in enumerate(model.weights) if v.name in PRUNABLE]


def pruning_callback(variables, ramp_steps: int, every: int, target: float, schedule: str, epochs: int, log):
    import keras

    class MagnitudePruning(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.step, self.sparsity, self.masks = 0, 0.0, None

        def on_train_batch_end(self, batch, logs=None):
            self.step += 1
            if self.step <= ramp_steps and (self.step in (1, ramp_steps) or self.step % every == 0):
                self.sparsity = sparsity_at(self.step, ramp_steps, target, schedule)
                self.masks = [keep_largest(v.numpy(), self.sparsity) for v in variables]
            for variable, mask in zip(variables, self.masks or ()):
                variable.assign(keras.ops.multiply(variable.value, mask))

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            log(f"prune epoch {epoch + 1}/{epochs}: sparsity {self.sparsity:.3f}  loss {logs.get('loss', 0):.4f} "
                f"val_loss {logs.get('val_loss', 0):.4f} val_acc {logs.get('val_accuracy', 0):.4f}")

    return MagnitudePruning()


@dataclass
class PruningRun:
    config: BuildConfig
    unpruned: object  # Keras model: the trained weights before pruning
    pruned: object  # the build's own Keras model, pruned in place
    vocab_size: int
    labels: list[str]
    model_kwargs: dict
    schedule: dict
    parity_ids: np.ndarray
    calibration: np.ndarray
    unpruned_model_bytes: bytes = field(default=b"", repr=False)  # set by report()

    def report(self, chosen, quantization: str, x_test, y_test, target, log=print, metrics_fn=None) -> dict:
        """The ``pruning`` section of metadata.json (bundle sizes filled by ``bundle_with_sizes``)."""
        from .forms import choose_form
        from .keras_model import predict_scores

        log(f"pruning: the unpruned model, converted the same way ({chosen.form}, {quantization}), for comparison:")
        convert = replace(self.config.convert, form=chosen.form, quantization=quantization)
        base, _ = choose_form(self.unpruned, self.config.model, convert, self.vocab_size, len(self.labels),
                              self.config.tokenizer.max_len, self.parity_ids,
                              predict_scores(self.unpruned, self.parity_ids), target, log=log,
                              model_kwargs=self.model_kwargs, calibration=self.calibration)
        self.unpruned_model_bytes = base.model_bytes
        # Both models timed in one child, alternating, best of two: a fair comparison on a busy machine.
        timed = target.measure([(base.model_bytes, base.meta), (chosen.model_bytes, chosen.meta)] * 2,
                               self.parity_ids[:TIMING_INPUTS])
        latency = [round(min(r.get("latency_us", c.latency_us) for r in timed[k::2]), 1)
                   for k, c in enumerate((base, chosen))]
        sigmoid = one_sigmoid_unit(self.pruned)

        def measured(keras_model, blob, meta, k):
            def score(scores):
                if metrics_fn is None:
                    return classification_metrics(y_test, scores.argmax(-1), self.labels)
                return metrics_fn(y_test, scores.reshape(len(x_test), -1, len(self.labels)), self.labels)

            tflite = score(tflite_scores(TfliteModel(blob, meta, num_threads=1), x_test, sigmoid))
            return {"keras_accuracy": score(predict_scores(keras_model, x_test))["accuracy"],
                    "accuracy": tflite["accuracy"], "macro_f1": tflite["macro_f1"],
                    "f1_per_label": {label: m["f1"] for label, m in tflite["per_label"].items()},
                    "model_bytes": len(blob), "model_gzip_bytes": compressed_size(blob),
                    "bundle_tar_gz_bytes": None, "latency_us": latency[k]}

        before = measured(self.unpruned, base.model_bytes, base.meta, 0)
        after = measured(self.pruned, chosen.model_bytes, chosen.meta, 1)
        weights = self.sparsity(chosen.model_bytes, base.model_bytes)
        report = {
            "target_sparsity": self.config.prune.sparsity, "schedule": self.schedule,
            "form": chosen.form, "quantization": quantization,
            "unit": "token" if metrics_fn else "text", "evaluated_on": "tflite, test split",
            "before": before, "after": after,
            "accuracy_change_points": round(100.0 * (after["accuracy"] - before["accuracy"]), 3),
            "bundle_note": ("before: this bundle's .tar.gz with the unpruned model.tflite in place of the "
                            "pruned one. Both sizes are inside the archive they measure, so the archive "
                            "written may differ from them by a few bytes."),
            **weights,
            "latency_runtime": chosen.meta.get("selection", {}).get("runtime", target.describe()),
            "latency_note": (
                f"No speed-up is expected, since TFLite's kernels multiply a zero like any other weight: "
                f"measured {after['latency_us']:.0f} us per invoke pruned vs "
                f"{before['latency_us']:.0f} unpruned (ratio {after['latency_us'] / before['latency_us']:.2f}; "
                "one thread, both timed alternately in one process, best of two)."),
        }
        zeros = [weights["overall"][k] for k in ("tflite_zero_fraction_unpruned", "tflite_zero_fraction")]
        log(f"pruning: TFLite test accuracy {before['accuracy']:.4f} -> {after['accuracy']:.4f}; model "
            f"{before['model_bytes']:,} -> {after['model_bytes']:,} bytes, gzip {before['model_gzip_bytes']:,} -> "
            f"{after['model_gzip_bytes']:,}; zeros in the converted weights "
            + " -> ".join("not found" if z is None else f"{z:.3f}" for z in zeros)
            + f"; {before['latency_us']:.0f} -> {after['latency_us']:.0f} us/invoke")
        return report

    def sparsity(self, pruned_bytes: bytes, unpruned_bytes: bytes) -> dict:
        """Zeros per prunable weight, in the Keras model and in the converted file."""
        indices = prunable_indices(self.pruned)
        names = [self.pruned.weights[i].path for i in indices]
        pruned_values, unpruned_values = self.pruned.get_weights(), self.unpruned.get_weights()
        pruned = {name: pruned_values[i] for name, i in zip(names, indices)}
        unpruned = {name: unpruned_values[i] for name, i in zip(names, indices)}
        in_file, in_unpruned_file = locate_weights(pruned, pruned_bytes), locate_weights(unpruned, unpruned_bytes)
        rows = [{"name": name, "shape": list(w.shape), "elements": int(w.size),
                 "keras_zero_fraction": float((w == 0).mean()), **in_file[name]} for name, w in pruned.items()]

        def overall(located):
            found = [r for r in located.values() if r["tflite_elements"]]
            size = sum(r["tflite_elements"] for r in found)
            return sum(r["tflite_zero_fraction"] * r["tflite_elements"] for r in found) / size if size else None

        total = sum(w.size for w in pruned.values())
        return {"weights": rows, "overall": {
            "keras_zero_fraction": float(sum(int((w == 0).sum()) for w in pruned.values()) / total),
            "tflite_zero_fraction": overall(in_file), "tflite_zero_fraction_unpruned": overall(in_unpruned_file),
            "weights_not_found_in_tflite": [r["name"] for r in rows if not r["tflite_elements"]]}}

    def bundle_with_sizes(self, meta: dict, make_files, out_dir) -> dict[str, bytes]:
        """The bundle's files with the ``.tar.gz`` sizes in ``meta["pruning"]``: the pruned bundle's,
        and the same bundle's with the unpruned model.tflite in its place. The numbers are inside
        the archive they measure (metadata and both cards), so they are measured on a render that
        already holds the previous round's numbers: what is written differs by a few bytes at most
        (a fixed point is rarely reachable: one digit moves the compressed size by a byte or two)."""
        section = meta["pruning"]
        sizes = (section["before"]["model_gzip_bytes"], section["after"]["model_gzip_bytes"])  # a guess
        for _ in range(SIZE_ROUNDS):
            section["before"]["bundle_tar_gz_bytes"], section["after"]["bundle_tar_gz_bytes"] = sizes
            files = make_files(meta)
            measured = (archive_size(out_dir, {**files, MODEL_FILE: self.unpruned_model_bytes}),
                        archive_size(out_dir, files))
            if measured == sizes:
                break
            sizes = measured
        section["before"]["bundle_tar_gz_bytes"], section["after"]["bundle_tar_gz_bytes"] = sizes
        return make_files(meta)


def prune_after_training(model, config: BuildConfig, vocab_size: int, labels: list[str], x_train, y_train,
                         x_val, y_val, log=print, **model_kwargs) -> PruningRun | None:
    """Fine-tune ``model`` in place with magnitude pruning; None when ``--prune`` is not set."""
    prune = config.prune
    if not prune.sparsity:
        return None
    import keras

    from .keras_model import build_model

    unpruned = build_model(config.model, vocab_size, len(labels), config.tokenizer.max_len, **model_kwargs)
    unpruned.set_weights(model.get_weights())
    batch = config.train.batch_size
    steps = prune.epochs * math.ceil(len(x_train) / batch)
    ramp = max(1, int(RAMP_FRACTION * steps))
    every = max(1, ramp // MASK_UPDATES)
    variables = [model.weights[i] for i in prunable_indices(model)]
    schedule = {"kind": prune.schedule, "fine_tune_epochs": prune.epochs, "steps": steps,
                "ramp_end_step": ramp, "mask_update_every_steps": every,
                "pruned_weights": [v.path for v in variables], "kept_dense": "biases"}
    log(f"pruning to sparsity {prune.sparsity} ({prune.schedule}) over {prune.epochs} fine-tune epoch(s), "
        f"{steps} steps: {len(variables)} weights")
    # Labels as train_model prepares them: float for a sigmoid head; taggers mask padding (-1).
    if model_kwargs.get("tagging"):
        fit = (x_train, np.maximum(y_train, 0), (y_train >= 0).astype("float32"))
        val = (x_val, np.maximum(y_val, 0), (y_val >= 0).astype("float32"))
    else:
        cast = (lambda y: y.astype("float32")) if one_sigmoid_unit(model) else (lambda y: y)
        fit, val = (x_train, cast(y_train), None), (x_val, cast(y_val))
    keras.utils.set_random_seed(config.train.seed + 1)
    callback = pruning_callback(variables, ramp, every, prune.sparsity, prune.schedule, prune.epochs, log)
    history = model.fit(fit[0], fit[1], sample_weight=fit[2], validation_data=val, epochs=prune.epochs,
                        batch_size=batch, verbose=0, shuffle=True, callbacks=[callback])
    schedule["history"] = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    return PruningRun(config, unpruned, model, vocab_size, labels, dict(model_kwargs), schedule,
                      parity_ids=x_val[:PARITY_INPUTS], calibration=x_train[:CALIBRATION_INPUTS])
