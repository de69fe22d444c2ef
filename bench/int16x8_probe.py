"""Probe: does int16x8 quantization (int16 activations, int8 weights) convert and run, per cell
type and form? Each conversion runs in a child process (the converter may crash).

    .venv/host/bin/python bench/int16x8_probe.py      # prints a table, writes build/int16x8.json
"""

import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from bilite.config import ModelConfig  # noqa: E402
from bilite.convert_child import convert_in_child  # noqa: E402
from bilite.errors import BiliteError  # noqa: E402
from bilite.keras_model import build_model, predict_scores  # noqa: E402
from bilite_device.model import TfliteModel  # noqa: E402
from bilite_device.tflite_file import read_tflite_facts  # noqa: E402

VOCAB, T = 200, 16


def main() -> None:
    ids = np.random.default_rng(0).integers(1, VOCAB, size=(64, T)).astype(np.int32)
    results = []
    for cell in ("lstm", "gru"):
        cfg = ModelConfig(cell=cell, units=8, embed_dim=8, dropout=0.0)
        model = build_model(cfg, VOCAB, 2, T)
        for form in ("while", "unrolled", "fused") if cell == "lstm" else ("while", "unrolled"):
            row = {"cell": cell, "form": form}
            try:
                blob = convert_in_child(model, cfg, VOCAB, 2, T, form, "int16x8", "ai-edge-litert", ids)
                facts = read_tflite_facts(blob)
                meta = {"reset_variables": form == "fused", "inputs": [{"name": facts.inputs[0].name}],
                        "outputs": [{"name": facts.outputs[0].name}]}
                runner = TfliteModel(blob, meta)
                got = np.array([runner.run(r)[0] for r in ids])
                row.update(converts=True, size_bytes=len(blob),
                           max_abs_diff=float(np.abs(got - predict_scores(model, ids)[:, 1]).max()))
            except BiliteError as exc:
                row.update(converts=False, error=str(exc)[:300])
            results.append(row)
            print(f"{cell:<5} {form:<9} " + (f"converts, {row['size_bytes']} bytes, max |diff| {row['max_abs_diff']:.3g}"
                                              if row["converts"] else f"FAILS: {row['error'][:150]}"), flush=True)
    Path("build").mkdir(exist_ok=True)
    Path("build/int16x8.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
