"""Convert in a child process, so that a converter crash cannot take the user's process down.

Full-int8 calibration of a WHILE-loop graph segfaults TensorFlow 2.21's converter (exit 139):
run in-process, that kills ``bilite build`` (or a notebook) with no message. Here the parent
writes the weights and the model spec to a temporary folder, a fresh Python rebuilds the same
inference model with ``keras_model.build_model`` and converts it; a signal death becomes a
:class:`ConversionError` with advice, and the parent carries on.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .config import ModelConfig
from .errors import ConversionError


def convert_in_child(trained, cfg: ModelConfig, vocab_size: int, num_labels: int, max_len: int,
                     form: str, quantization: str, target: str, calibration: np.ndarray | None = None,
                     model_kwargs: dict | None = None, timeout: int = 1800, int8_output: bool = False) -> bytes:
    with tempfile.TemporaryDirectory(prefix="bilite-convert-") as tmp:
        tmp = Path(tmp)
        weights = trained.get_weights()
        np.savez(tmp / "weights.npz", *weights)
        if calibration is not None:
            np.save(tmp / "calibration.npy", calibration)
        kwargs = dict(model_kwargs or {})
        kwargs["extra_features"] = [list(x) for x in kwargs.get("extra_features", ())]
        (tmp / "spec.json").write_text(json.dumps({
            "cfg": asdict(cfg), "vocab_size": vocab_size, "num_labels": num_labels, "max_len": max_len,
            "form": form, "quantization": quantization, "target": target, "model_kwargs": kwargs,
            "weights": len(weights), "calibration": calibration is not None, "int8_output": int8_output}))
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        proc = subprocess.run([sys.executable, "-m", "bilite.convert_child", str(tmp)],
                              capture_output=True, text=True, timeout=timeout, env=env)
        if proc.returncode < 0:
            name = signal.Signals(-proc.returncode).name
            raise ConversionError(
                f"the TFLite converter crashed ({name}) converting the {form!r} form to {quantization}; "
                "your process is fine. This is a known converter bug for full-int8 calibration of "
                "WHILE-loop graphs: use --quantize dynamic (close in size), or an LSTM with --form fused "
                "or --form unrolled for int8."
            )
        if proc.returncode != 0:
            last = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()][-1:] or ["no output"]
            raise ConversionError(f"conversion of the {form!r} form to {quantization} failed: {last[0][:500]}")
        return (tmp / "model.tflite").read_bytes()


def _main(folder: str) -> int:
    from .convert import convert_keras
    from .keras_model import build_model

    tmp = Path(folder)
    spec = json.loads((tmp / "spec.json").read_text())
    kwargs = dict(spec["model_kwargs"])
    kwargs["extra_features"] = tuple(tuple(x) for x in kwargs.get("extra_features", ()))
    model = build_model(ModelConfig(**spec["cfg"]), spec["vocab_size"], spec["num_labels"],
                        spec["max_len"], form=spec["form"], batch_size=1, **kwargs)
    stored = np.load(tmp / "weights.npz")
    model.set_weights([stored[f"arr_{i}"] for i in range(spec["weights"])])
    calibration = np.load(tmp / "calibration.npy") if spec["calibration"] else None
    blob = convert_keras(model, spec["quantization"], spec["target"], calibration=calibration,
                         int8_output=spec.get("int8_output", False))
    (tmp / "model.tflite").write_bytes(blob)
    return 0


if __name__ == "__main__":
    if os.environ.get("BILITE_TEST_CRASH_CONVERTER") == "1":  # test hook: a converter that segfaults
        os.kill(os.getpid(), signal.SIGSEGV)
    sys.exit(_main(sys.argv[1]))
