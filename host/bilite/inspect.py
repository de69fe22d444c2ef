"""Facts about a bundle or a bare ``.tflite`` file, read without loading an interpreter."""

from __future__ import annotations

from pathlib import Path

from bilite_device.bundle_files import is_bare_tflite, read_bundle_files
from bilite_device.schema import METADATA_FILE, MODEL_FILE, parse_metadata
from bilite_device.tflite_file import read_tflite_facts, read_tflite_file


def inspect_path(path) -> dict:
    path = Path(path)
    # The same test as `bilite-device info`: a model by its TFL3 identifier, whatever the suffix.
    if is_bare_tflite(path):
        return {"path": str(path), "model": read_tflite_file(path).to_json()}
    files = read_bundle_files(path)  # verifies checksums
    meta = parse_metadata(files[METADATA_FILE]).raw
    return {"path": str(path), "metadata": meta, "model": read_tflite_facts(files[MODEL_FILE]).to_json()}


