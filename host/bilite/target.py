"""Run models on the runtime the device has, from the host.

The host's own runtime (ai-edge-litert) is not the device's (tflite-runtime 2.14 on Raspberry Pi
OS bookworm), and they differ in speed per form and in which op versions they load. So, when a
device-only Python is available, form timing, parity and the final smoke test run there, in a
child process: ``python -m bilite_device.timing`` and ``python -m bilite_device.cli smoke``.

Where it comes from: ``--device-python``, else ``$BILITE_DEVICE_PYTHON`` (target
tflite-runtime-2.14) or ``$BILITE_DEVICE_LITERT_PYTHON`` (target ai-edge-litert), else the
checkout's ``.venv/device`` or ``.venv/device-litert`` (made by ``scripts/setup-envs``). Without
one, the host runtime is used and the metadata says so.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bilite_device.errors import BiliteError
from bilite_device.model import TfliteModel
from bilite_device.runtime import find_runtime
from bilite_device.timing import time_model

from .errors import ConfigError

_VENVS = Path(__file__).resolve().parents[2] / ".venv"
# The checkout's device environment for each --target (made by scripts/setup-envs).
_CHECKOUT_DEVICE_PYTHON = {"tflite-runtime-2.14": _VENVS / "device" / "bin" / "python",
                           "ai-edge-litert": _VENVS / "device-litert" / "bin" / "python"}


def find_device_python(explicit: str | None = None, target: str = "tflite-runtime-2.14") -> str | None:
    env_name = "BILITE_DEVICE_PYTHON" if target == "tflite-runtime-2.14" else "BILITE_DEVICE_LITERT_PYTHON"
    candidate = explicit or os.environ.get(env_name)
    if candidate:
        if not Path(candidate).is_file():
            raise ConfigError(f"device Python {candidate!r} does not exist; pass the python of an "
                              "environment with bilite-device and the target runtime installed")
        return candidate
    default = _CHECKOUT_DEVICE_PYTHON[target]
    return str(default) if default.is_file() else None


@dataclass
class TargetRunner:
    python: str | None  # None: the host's own runtime, in process

    def describe(self) -> str:
        if self.python is None:
            runtime = find_runtime()
            return f"{runtime.name} {runtime.version} (host)"
        return self._run_json(["-c", "from bilite_device.runtime import find_runtime as f; import json; "
                                     "r = f(); print(json.dumps(r.name + ' ' + r.version))"]) + f" ({self.where()})"

    def where(self) -> str:
        """The environment that runs the model: "host", or the device environment's folder."""
        if self.python is None:
            return "host"
        env = Path(self.python).parent.parent  # .../ENV/bin/python
        try:
            return str(env.relative_to(Path.cwd()))
        except ValueError:
            return str(env)

    def fresh_scores(self, blob: bytes, meta: dict, ids: np.ndarray) -> np.ndarray:
        """Raw outputs for each row, each from a new interpreter (golden vectors)."""
        if self.python is None:
            return np.stack([TfliteModel(blob, meta).run(row) for row in ids])
        result = self.measure([(blob, meta)], ids, fresh=True)[0]
        if "error" in result:
            raise BiliteError(f"device environment {self.python}: {result['error']}")
        return np.asarray(result["scores"], dtype=np.float32)

    def measure(self, models: list[tuple[bytes, dict]], ids: np.ndarray, runs: int = 200,
                fresh: bool = False) -> list[dict]:
        """For each model: latency_us, scores (in sequence), repeat_scores; or error."""
        if self.python is None:
            return [self._measure_here(blob, meta, ids, runs) for blob, meta in models]
        with tempfile.TemporaryDirectory(prefix="bilite-measure-") as tmp:
            entries = []
            for k, (blob, meta) in enumerate(models):
                path = Path(tmp) / f"model{k}.tflite"
                path.write_bytes(blob)
                entries.append({"path": str(path), "meta": meta})
            spec = Path(tmp) / "spec.json"
            spec.write_text(json.dumps({"ids": ids.tolist(), "models": entries, "runs": runs,
                                        "fresh": fresh}))
            out = self._run_json(["-m", "bilite_device.timing", str(spec)])
        if "error" in out:
            raise BiliteError(f"device environment {self.python}: {out['error']}")
        return out["results"]

    @staticmethod
    def _measure_here(blob: bytes, meta: dict, ids: np.ndarray, runs: int) -> dict:
        try:
            model = TfliteModel(blob, meta, num_threads=1)
        except BiliteError as exc:
            return {"error": f"{type(exc).__name__}: {exc}"}
        scores = [model.run(row).tolist() for row in ids]
        latency = time_model(model, ids, runs=runs)
        return {"latency_us": latency, "scores": scores,
                "repeat_scores": [model.run(row).tolist() for row in ids[:10]]}

    def smoke(self, bundle_dir: Path) -> dict | None:
        """``bilite-device smoke --json`` in the device environment; None without one."""
        if self.python is None:
            return None
        proc = subprocess.run([self.python, "-m", "bilite_device.cli", "smoke", str(bundle_dir),
                               "--json", "--runs", "20"], capture_output=True, text=True, timeout=600)
        try:
            report = json.loads(proc.stdout)
        except json.JSONDecodeError:
            report = {"ok": False, "failures": [proc.stderr.strip()[-500:] or "no output"]}
        if proc.returncode != 0:
            report["ok"] = False
            report.setdefault("failures", []).append(proc.stderr.strip()[-500:])
        return report

    def _run_json(self, args: list[str]):
        proc = subprocess.run([self.python, *args], capture_output=True, text=True, timeout=1800)
        if proc.returncode not in (0, 1) or not proc.stdout.strip():
            raise BiliteError(f"device environment {self.python} failed (exit {proc.returncode}): "
                              f"{proc.stderr.strip()[-800:]}")
        return json.loads(proc.stdout)
