"""Read the weights back out of a converted ``.tflite`` file, and find each Keras weight in it.

Why: pruning is only real if the zeros survive conversion. A zero must still be a zero after
float16 rounding and after int8 quantization (TFLite quantizes weights symmetrically, zero point
0, so ``round(0 / scale) = 0``); this module lets the build and the tests count them in the very
bytes that ship instead of trusting the Keras model.

The converter renames and re-lays weights (names like ``arith.constant3``): dense and recurrent
kernels are stored transposed, and the fused LSTM splits each kernel into one tensor per gate. So
a Keras weight is found by *value*: every constant tensor is compared with the weight, its
transpose and its per-gate slices, and matched where the values agree within the storage
precision (half a quantization step for int8).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from bilite_device._schema_enums import TENSOR_TYPES
from bilite_device.tflite_file import _Table

# Storage types whose constants can hold weights; anything else (shape vectors, ...) is skipped.
_NUMPY_TYPES = {"FLOAT32": "<f4", "FLOAT16": "<f2", "INT8": "i1", "UINT8": "u1", "INT16": "<i2",
                "INT32": "<i4"}
_WEIGHT_TYPES = ("FLOAT32", "FLOAT16", "INT8")
GATE_COUNTS = (3, 4)  # GRU and LSTM kernels hold 3 or 4 gates side by side


@dataclass(frozen=True)
class ConstantTensor:
    name: str
    dtype: str  # TFLite type name: FLOAT32, FLOAT16, INT8, ...
    stored: np.ndarray  # as stored in the file (int8 codes for quantized weights)
    scale: tuple[float, ...] = ()
    zero_point: tuple[int, ...] = ()
    quantized_dimension: int = 0

    def real(self) -> np.ndarray:
        """The values the interpreter computes with (int8 codes dequantized)."""
        values = self.stored.astype(np.float32)
        if not self.scale:
            return values
        shape = [1] * values.ndim
        if len(self.scale) > 1:  # per channel, along quantized_dimension
            shape[self.quantized_dimension] = len(self.scale)
        scale = np.asarray(self.scale, np.float32).reshape(shape)
        zero = np.asarray(self.zero_point or [0], np.float32)
        zero = zero.reshape(shape) if zero.size > 1 else zero[0]
        return (values - zero) * scale

    def zeros(self) -> np.ndarray:
        """Where the real value is exactly zero (an int8 code equal to its zero point)."""
        return self.real() == 0.0


def constant_tensors(model: bytes) -> list[ConstantTensor]:
    """Every tensor with data in the file, once per buffer (subgraphs may share a buffer)."""
    root = _Table(model, struct.unpack_from("<I", model, 0)[0])
    buffers = root.tables(4)
    seen, out = set(), []
    for graph in root.tables(2):
        for tensor in graph.tables(0):
            index = tensor.scalar(2, "I", 0)
            dtype = TENSOR_TYPES.get(tensor.scalar(1, "b", 0), "UNKNOWN")
            if index == 0 or index in seen or index >= len(buffers) or dtype not in _NUMPY_TYPES:
                continue
            data = _buffer_bytes(model, buffers[index])
            if not data:
                continue
            seen.add(index)
            quant = tensor.table(4)  # QuantizationParameters: scale 2, zero_point 3, dimension 6
            stored = np.frombuffer(data, dtype=_NUMPY_TYPES[dtype]).reshape(tuple(tensor.ints(0)) or ())
            out.append(ConstantTensor(
                name=tensor.string(3) or "", dtype=dtype, stored=stored,
                scale=tuple(quant.numbers(2, "f")) if quant else (),
                zero_point=tuple(quant.numbers(3, "q")) if quant else (),
                quantized_dimension=quant.scalar(6, "i", 0) if quant else 0))
    return out


def _buffer_bytes(model: bytes, buffer) -> bytes:
    data = buffer.bytes_(0)
    offset, size = buffer.scalar(1, "Q", 0), buffer.scalar(2, "Q", 0)
    if not data and offset > 1:  # models over 2 GB keep buffers after the flatbuffer
        data = bytes(model[offset : offset + size])
    return data


def _layouts(weight: np.ndarray):
    """(description, view) pairs: how the converter may have stored ``weight``."""
    yield "as is", weight
    if weight.ndim != 2:
        return
    yield "transposed", weight.T
    for gates in GATE_COUNTS:
        width = weight.shape[1] // gates
        if width > 1 and weight.shape[1] == gates * width:
            for k in range(gates):
                part = weight[:, k * width : (k + 1) * width]
                yield f"gate {k + 1}/{gates}, transposed", part.T
                yield f"gate {k + 1}/{gates}", part


def _tolerance(tensor: ConstantTensor, view: np.ndarray) -> float:
    step = max(tensor.scale) if tensor.scale else 0.0
    return 0.51 * step + 1e-3 * float(np.abs(view).max(initial=0.0)) + 1e-6


def locate_weights(weights: dict[str, np.ndarray], model: bytes) -> dict[str, dict]:
    """For each named Keras weight: the tensors of ``model`` that hold it, their zero fraction,
    and the fraction of the weight's own zeros that are still zero in the file (1.0 when pruning
    survived conversion). ``tflite_zero_fraction`` is None for a weight not found."""
    found: dict[str, list] = {name: [] for name in weights}
    for tensor in constant_tensors(model):
        if tensor.dtype not in _WEIGHT_TYPES or tensor.stored.ndim < 2:
            continue
        real, best = tensor.real(), None
        for name, weight in weights.items():
            for layout, view in _layouts(weight):
                if view.shape != real.shape:
                    continue
                diff = float(np.abs(real - view).max())
                if diff <= _tolerance(tensor, view) and (best is None or diff < best[0]):
                    best = (diff, name, layout, view)
        if best is not None:
            found[best[1]].append((tensor, best[2], best[3]))
    report = {}
    for name, weight in weights.items():
        parts = found[name]
        size = sum(t.stored.size for t, _, _ in parts)
        zeros = sum(int(t.zeros().sum()) for t, _, _ in parts)
        pruned = sum(int((view == 0).sum()) for _, _, view in parts)
        kept = sum(int((t.zeros() & (view == 0)).sum()) for t, _, view in parts)
        report[name] = {
            "tflite_tensors": [{"name": t.name, "dtype": t.dtype.lower(), "shape": list(t.stored.shape),
                                "layout": layout} for t, layout, _ in parts],
            "tflite_elements": size,
            "tflite_zero_fraction": zeros / size if size else None,
            "keras_zeros_kept": kept / pruned if pruned else None,
        }
    return report
