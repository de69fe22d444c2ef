"""Facts about a bundle or a bare ``.tflite`` file, read without loading an interpreter."""

from __future__ import annotations

from pathlib import Path

from bilite_device.bundle_files import read_bundle_files
from bilite_device.schema import METADATA_FILE, MODEL_FILE, parse_metadata
from bilite_device.tflite_file import read_tflite_facts


def inspect_path(path) -> dict:
    path = Path(path)
    if path.is_file() and path.suffix == ".tflite":
        return {"path": str(path), "model": read_tflite_facts(path.read_bytes()).to_json()}
    files = read_bundle_files(path)  # verifies checksums
    meta = parse_metadata(files[METADATA_FILE]).raw
    return {"path": str(path), "metadata": meta, "model": read_tflite_facts(files[MODEL_FILE]).to_json()}


