"""Device tests run where a Raspberry Pi would: numpy + a TFLite runtime, no TensorFlow.

Bundles: the committed tiny fixtures (tests/fixtures), or any bundle named by BILITE_BUNDLE
(the emulated-device run and the end-to-end test pass a freshly built one).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bilite_device.bundle_files import format_checksums
from bilite_device.schema import CHECKSUMS_FILE

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
WHILE_BUNDLE = FIXTURES / "tiny-sms-while"
FUSED_BUNDLE = FIXTURES / "tiny-sms-fused"


@pytest.fixture(params=["while", "fused"])
def bundle_dir(request) -> Path:
    return FIXTURES / f"tiny-sms-{request.param}"


@pytest.fixture
def any_bundle() -> Path:
    return Path(os.environ.get("BILITE_BUNDLE", WHILE_BUNDLE))


def read_dir(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}


def write_dir(path: Path, files: dict[str, bytes], rechecksum: bool = True) -> Path:
    """Write a (possibly tampered) bundle; by default with fresh checksums, so that the test
    reaches the check behind the checksum check."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    if rechecksum:
        body = {k: v for k, v in files.items() if k != CHECKSUMS_FILE}
        files = {**body, CHECKSUMS_FILE: format_checksums(body)}
    for name, blob in files.items():
        (path / name).write_bytes(blob)
    return path
