"""One loaded TFLite model, bound to its input and output by the names in metadata.json.

Statelessness is enforced here: a model converted to the fused LSTM form keeps h/c in variable
tensors across ``invoke()`` calls, so its metadata says ``reset_variables: true`` and every run
starts with ``reset_all_variables()``. The other forms carry no variable tensors at all.
"""

from __future__ import annotations

import threading

import numpy as np

from ._stderr import captured_fd2, replay_unexpected
from .errors import IncompatibleRuntimeError, ModelError
from .runtime import Runtime, check_model_runtime, find_runtime
from .tflite_file import read_tflite_facts


def _find(details: list[dict], name: str, kind: str) -> dict:
    for detail in details:
        if detail["name"] == name:
            return detail
    seen = ", ".join(repr(d["name"]) for d in details)
    raise ModelError(
        f"the model has no {kind} tensor named {name!r} (it has {seen}); metadata.json and "
        "model.tflite do not belong together. Rebuild the bundle."
    )


class TfliteModel:
    def __init__(self, model_bytes: bytes, model_meta: dict, num_threads: int = 1,
                 runtime: Runtime | None = None):
        self.runtime = runtime or find_runtime()
        self.facts = read_tflite_facts(model_bytes)
        check_model_runtime(self.facts.min_runtime_version, self.runtime)
        self.reset_variables = bool(model_meta["reset_variables"])
        if self.facts.variable_tensors and not self.reset_variables:
            # A stateful graph run without resets gives answers that depend on earlier inputs.
            raise ModelError(
                f"model.tflite holds variable tensors {list(self.facts.variable_tensors)[:4]} "
                "but metadata.json does not ask for a reset before each run: its scores would "
                "depend on earlier inputs. Rebuild the bundle with `bilite build`."
            )
        with captured_fd2() as native:
            try:
                self.interpreter = self.runtime.interpreter_class(
                    model_content=model_bytes, num_threads=num_threads
                )
                self.interpreter.allocate_tensors()
                error = None
            except (ValueError, RuntimeError) as exc:
                error = exc
        replay_unexpected(native["text"])
        if error is not None:
            exc = error
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            native_lines = [ln for ln in native["text"].splitlines() if "find op" in ln]
            if native_lines:
                message = native_lines[0].strip()
            if "find op" in str(exc) or native_lines:
                ops = ", ".join(f"{o.name} v{o.version}" for o in self.facts.ops)
                raise IncompatibleRuntimeError(
                    f"{self.runtime.name} {self.runtime.version} cannot run this model: {message}. "
                    f"The model uses {ops} and records minimum runtime "
                    f"{self.facts.min_runtime_version or 'unknown'}. Install a newer runtime, or "
                    "rebuild the bundle with `bilite build --target tflite-runtime-2.14`."
                ) from None
            raise ModelError(f"{self.runtime.name} could not load model.tflite: {message}") from None
        self._in = _find(self.interpreter.get_input_details(), model_meta["inputs"][0]["name"], "input")
        self._out = _find(self.interpreter.get_output_details(), model_meta["outputs"][0]["name"], "output")
        if self._in["dtype"] != np.int32:
            raise ModelError(f"model input must be int32 token ids, found {self._in['dtype']}.")
        self.max_len = int(self._in["shape"][1])
        self.input_width = int(self._in["shape"][2]) if len(self._in["shape"]) == 3 else 1
        scale, zero_point = self._out.get("quantization", (0.0, 0))
        self._dequant = (float(scale), int(zero_point)) if scale else None
        self._lock = threading.Lock()
        # Plain tuples and ints: the hot path does no numpy shape conversions.
        self._in_index, self._out_index = int(self._in["index"]), int(self._out["index"])
        self._in_shape = tuple(int(d) for d in self._in["shape"])
        self._out_shape = tuple(int(d) for d in self._out["shape"][1:])

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Output shape without the batch axis: (C,) for classifiers, (max_len, C) for taggers."""
        return tuple(int(d) for d in self._out["shape"][1:])

    def run(self, ids: np.ndarray) -> np.ndarray:
        """Scores for one row of ``max_len`` token ids, as float32 (dequantized if needed).

        Thread-safe: a TFLite interpreter is not, so set/invoke/get run under one lock (for
        parallel throughput, load one bundle per thread instead; see bench/threads.py).
        """
        interp = self.interpreter
        with self._lock:
            if self.reset_variables:
                interp.reset_all_variables()
            try:
                interp.set_tensor(self._in_index, ids.reshape(self._in_shape))
                interp.invoke()
            except (RuntimeError, ValueError) as exc:
                first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
                raise ModelError(f"the interpreter failed on these ids ({first}); the vocabulary or "
                                 "features do not fit the model's tables: rebuild the bundle.") from None
            out = interp.get_tensor(self._out_index).reshape(self._out_shape)
        if self._dequant is not None:
            scale, zero_point = self._dequant
            return (out.astype(np.float32) - zero_point) * scale
        # get_tensor already returns a copy; float32 outputs need no conversion.
        return out if out.dtype == np.float32 else out.astype(np.float32)

