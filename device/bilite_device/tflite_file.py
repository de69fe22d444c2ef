"""Read the facts a device needs out of a ``.tflite`` flatbuffer, without any runtime.

Why a hand-written reader: the device must refuse a model whose ops are too new *before* the
interpreter tries to load it (a runtime that lacks an op version fails with a C++ message that
names neither the fix nor the version needed), and the host must check the converted graph
(ops, variable tensors) without TensorFlow's private modules. The TFLite schema is stable
(fields are only ever appended), so reading the handful of fields below is safe.

Field numbers follow tensorflow/lite/schema/schema.fbs.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from ._schema_enums import BUILTIN_OPERATORS, TENSOR_TYPES
from .errors import ModelError


class _Table:
    """A flatbuffer table: a position in the buffer plus its vtable."""

    __slots__ = ("buf", "pos", "vtable", "vtable_len")

    def __init__(self, buf: bytes, pos: int):
        self.buf = buf
        self.pos = pos
        self.vtable = pos - struct.unpack_from("<i", buf, pos)[0]
        self.vtable_len = struct.unpack_from("<H", buf, self.vtable)[0]

    def _field_pos(self, index: int) -> int | None:
        slot = 4 + 2 * index
        if slot >= self.vtable_len:
            return None
        offset = struct.unpack_from("<H", self.buf, self.vtable + slot)[0]
        return self.pos + offset if offset else None

    def scalar(self, index: int, fmt: str, default):
        pos = self._field_pos(index)
        return default if pos is None else struct.unpack_from("<" + fmt, self.buf, pos)[0]

    def _deref(self, index: int) -> int | None:
        pos = self._field_pos(index)
        return None if pos is None else pos + struct.unpack_from("<I", self.buf, pos)[0]

    def string(self, index: int) -> str | None:
        pos = self._deref(index)
        if pos is None:
            return None
        length = struct.unpack_from("<I", self.buf, pos)[0]
        return self.buf[pos + 4 : pos + 4 + length].decode("utf-8", "replace")

    def _vector(self, index: int) -> tuple[int, int]:
        pos = self._deref(index)
        if pos is None:
            return 0, 0
        return struct.unpack_from("<I", self.buf, pos)[0], pos + 4

    def tables(self, index: int) -> list["_Table"]:
        count, start = self._vector(index)
        out = []
        for i in range(count):
            at = start + 4 * i
            out.append(_Table(self.buf, at + struct.unpack_from("<I", self.buf, at)[0]))
        return out

    def ints(self, index: int) -> list[int]:
        count, start = self._vector(index)
        return list(struct.unpack_from(f"<{count}i", self.buf, start)) if count else []

    def numbers(self, index: int, fmt: str) -> list:
        count, start = self._vector(index)
        return list(struct.unpack_from(f"<{count}{fmt}", self.buf, start)) if count else []

    def table(self, index: int) -> "_Table | None":
        pos = self._deref(index)
        return None if pos is None else _Table(self.buf, pos)

    def bytes_(self, index: int) -> bytes:
        count, start = self._vector(index)
        return bytes(self.buf[start : start + count])


@dataclass(frozen=True)
class OpUse:
    name: str  # builtin name, or "CUSTOM:<code>" for custom ops (Flex ops are "CUSTOM:Flex...")
    version: int
    count: int


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str
    shape: tuple[int, ...]
    is_variable: bool
    scale: tuple[float, ...] = ()
    zero_point: tuple[int, ...] = ()


@dataclass(frozen=True)
class TfliteFacts:
    size_bytes: int
    subgraph_count: int
    ops: tuple[OpUse, ...]
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    variable_tensors: tuple[str, ...]
    min_runtime_version: str | None
    metadata_names: tuple[str, ...] = field(default=())

    @property
    def op_names(self) -> set[str]:
        return {op.name for op in self.ops}

    @property
    def flex_ops(self) -> list[str]:
        return sorted(op.name for op in self.ops if op.name.startswith("CUSTOM:Flex"))

    def to_json(self) -> dict:
        return {
            "size_bytes": self.size_bytes,
            "subgraphs": self.subgraph_count,
            "ops": [{"name": o.name, "version": o.version, "count": o.count} for o in self.ops],
            "inputs": [_tensor_json(t) for t in self.inputs],
            "outputs": [_tensor_json(t) for t in self.outputs],
            "variable_tensors": list(self.variable_tensors),
            "min_runtime_version": self.min_runtime_version,
        }


def _tensor_json(t: TensorInfo) -> dict:
    return {"name": t.name, "dtype": t.dtype, "shape": list(t.shape),
            "quantization": {"scale": list(t.scale), "zero_point": list(t.zero_point)}}


def _tensor(table: _Table) -> TensorInfo:
    quant = table.table(4)  # QuantizationParameters: scale is field 2, zero_point field 3
    return TensorInfo(
        name=table.string(3) or "",
        dtype=TENSOR_TYPES.get(table.scalar(1, "b", 0), "UNKNOWN").lower(),
        shape=tuple(table.ints(0)),
        is_variable=bool(table.scalar(5, "B", 0)),
        scale=tuple(quant.numbers(2, "f")) if quant else (),
        zero_point=tuple(quant.numbers(3, "q")) if quant else (),
    )


TFLITE_IDENTIFIER = b"TFL3"  # the flatbuffer file identifier, bytes 4..8 of every .tflite file


def is_tflite(head: bytes) -> bool:
    """Whether ``head`` (at least the first 8 bytes of a file) starts a TFLite flatbuffer."""
    return len(head) >= 8 and bytes(head[4:8]) == TFLITE_IDENTIFIER


def read_tflite_file(path) -> TfliteFacts:
    """Facts of a bare ``.tflite`` file; errors name the file and give advice for a bare model."""
    path = Path(path)
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror or exc}") from None
    return read_tflite_facts(blob, source=str(path))


def read_tflite_facts(model: bytes, source: str | None = None) -> TfliteFacts:
    """Ops (with versions and counts), I/O tensors, variable tensors and min runtime version.

    ``source``: the path of a bare model file; without it the bytes are a bundle's model.tflite.
    The two need different names and fixes in their messages (a bare file was not built by
    ``bilite build``, so "rebuild the bundle" would point the user at the wrong thing).
    """
    what = source if source is not None else "model.tflite"
    if not is_tflite(model):
        fix = ("Pass a model written by the TFLite converter (or inspect a bundle folder or a bundle "
               ".tar.gz instead)." if source is not None else "Rebuild the bundle with `bilite build`.")
        raise ModelError(
            f"{what} is not a TFLite flatbuffer (seen {len(model)} bytes, identifier "
            f"{bytes(model[4:8])!r}; expected {TFLITE_IDENTIFIER!r} at bytes 4-8). {fix}"
        )
    try:
        root = _Table(model, struct.unpack_from("<I", model, 0)[0])
        codes = []
        for code in root.tables(1):
            builtin = max(code.scalar(0, "b", 0), code.scalar(3, "i", 0))
            name = BUILTIN_OPERATORS.get(builtin, f"BUILTIN_{builtin}")
            if name == "CUSTOM":
                name = "CUSTOM:" + (code.string(1) or "?")
            codes.append((name, code.scalar(2, "i", 1)))
        counts: dict[tuple[str, int], int] = {}
        subgraphs = root.tables(2)
        variables = []
        for graph in subgraphs:
            for op in graph.tables(3):
                key = codes[op.scalar(0, "I", 0)]
                counts[key] = counts.get(key, 0) + 1
            variables += [t.string(3) or "" for t in graph.tables(0) if t.scalar(5, "B", 0)]
        main = subgraphs[0]
        tensors = main.tables(0)
        inputs = tuple(_tensor(tensors[i]) for i in main.ints(1))
        outputs = tuple(_tensor(tensors[i]) for i in main.ints(2))
        buffers = root.tables(4)
        min_runtime, names = None, []
        for meta in root.tables(6):
            names.append(meta.string(0) or "")
            if meta.string(0) == "min_runtime_version":
                raw = buffers[meta.scalar(1, "I", 0)].bytes_(0)
                min_runtime = raw.split(b"\0", 1)[0].decode("ascii", "replace") or None
    except (struct.error, IndexError) as exc:
        fix = ("Copy the file again, or convert the model again." if source is not None
               else "Re-copy the bundle or rebuild it with `bilite build`.")
        raise ModelError(
            f"{what} is truncated or corrupt ({len(model)} bytes; flatbuffer read failed: "
            f"{exc}). {fix}"
        ) from exc
    ops = tuple(OpUse(n, v, c) for (n, v), c in sorted(counts.items()))
    return TfliteFacts(
        size_bytes=len(model),
        subgraph_count=len(subgraphs),
        ops=ops,
        inputs=inputs,
        outputs=outputs,
        variable_tensors=tuple(variables),
        min_runtime_version=min_runtime,
        metadata_names=tuple(names),
    )
