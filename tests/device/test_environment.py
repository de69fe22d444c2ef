"""The device environment must look like a Raspberry Pi's: no TensorFlow, a real TFLite runtime."""

import importlib
import importlib.util
import os

import numpy as np
import pytest

from bilite_device.runtime import find_runtime


@pytest.mark.parametrize("module", ["tensorflow", "keras", "tf_keras", "click", "jinja2"])
def test_host_libraries_are_absent(module):
    assert importlib.util.find_spec(module) is None, f"{module} must not be installed on the device"


def test_runtime_is_the_devices():
    runtime = find_runtime()
    expected = os.environ.get("BILITE_EXPECT_RUNTIME", "tflite-runtime")
    assert runtime.name == expected
    if runtime.name == "tflite-runtime":
        assert runtime.version.startswith("2.14")
        # tflite-runtime 2.14 is built against numpy 1.x and fails to import with numpy 2.
        assert int(np.__version__.split(".")[0]) < 2


def test_package_imports_nothing_from_the_host():
    import bilite_device
    import sys

    importlib.reload(bilite_device)
    assert not any(name == "bilite" or name.startswith("bilite.") for name in sys.modules)
    assert "tensorflow" not in sys.modules


def test_a_runtime_without_version_attribute_is_versioned_from_its_distribution(monkeypatch):
    """Bug: the fallback for a runtime package without ``__version__`` called importlib.metadata
    without importing it (a NameError instead of a version)."""
    from importlib import metadata

    from bilite_device import runtime

    real = find_runtime()
    top = importlib.import_module(dict(runtime._CANDIDATES)[real.name].rsplit(".", 1)[0])
    monkeypatch.delattr(top, "__version__", raising=False)
    monkeypatch.setattr(runtime, "_found", None)
    assert runtime.find_runtime().version == metadata.version(real.name)
