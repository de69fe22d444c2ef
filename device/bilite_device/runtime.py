"""Find the TFLite runtime this device has, and check a model against it before loading.

Order: ``tflite_runtime`` (Raspberry Pi OS bookworm, Python 3.11: tflite-runtime 2.14), then
``ai_edge_litert`` (its successor, for newer Pythons).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from .errors import IncompatibleRuntimeError, RuntimeMissingError

_CANDIDATES = (
    ("tflite-runtime", "tflite_runtime.interpreter"),
    ("ai-edge-litert", "ai_edge_litert.interpreter"),
)

INSTALL_HINT = (
    "install a TFLite runtime: `pip install 'bilite-device[tflite-runtime]'` "
    "(tflite-runtime 2.14 with numpy<2, Raspberry Pi OS bookworm / Python 3.11) or "
    "`pip install 'bilite-device[litert]'` (ai-edge-litert, newer Pythons)"
)


@dataclass(frozen=True)
class Runtime:
    name: str
    version: str
    interpreter_class: type

    def tf_version(self) -> tuple[int, ...] | None:
        """The TensorFlow release whose kernels this runtime carries, when known.

        tflite-runtime is versioned with TensorFlow. ai-edge-litert has its own numbering and
        ships current kernels (2.3.0 loads everything TF 2.21 converts), so it is not capped.
        """
        if self.name == "tflite-runtime":
            return parse_version(self.version)
        return None


def parse_version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in str(text).split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


_found: Runtime | None = None


def find_runtime() -> Runtime:
    """The first importable runtime; the error names what to install and why each failed."""
    global _found
    if _found is not None:
        return _found
    failures = []
    for dist, module in _CANDIDATES:
        try:
            mod = importlib.import_module(module)
        except Exception as exc:  # ImportError, or numpy-2 ABI errors from tflite-runtime 2.14
            failures.append(f"{module}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            continue
        # The module's own __version__ avoids importing importlib.metadata (~40 ms of cold start).
        version = getattr(importlib.import_module(module.rsplit(".", 1)[0]), "__version__", None)
        if not version:
            from importlib import metadata as _dist  # only now: it costs start-up time

            try:
                version = _dist.version(dist)
            except _dist.PackageNotFoundError:
                version = "unknown"
        _found = Runtime(dist, version, mod.Interpreter)
        return _found
    raise RuntimeMissingError(
        "no TFLite runtime could be imported (" + "; ".join(failures) + "). " + INSTALL_HINT
        + ". With tflite-runtime, numpy must be <2."
    )


def check_model_runtime(min_runtime_version: str | None, runtime: Runtime) -> None:
    """Refuse a model whose recorded minimum runtime is newer than the installed one."""
    have = runtime.tf_version()
    if not min_runtime_version or have is None:
        return
    need = parse_version(min_runtime_version)
    if need[:2] > have[:2]:
        raise IncompatibleRuntimeError(
            f"this model needs TFLite runtime {min_runtime_version} or newer, but {runtime.name} "
            f"{runtime.version} is installed. Install a newer runtime (`pip install "
            f"ai-edge-litert`), or rebuild the bundle for this device with "
            f"`bilite build --target tflite-runtime-2.14`."
        )
