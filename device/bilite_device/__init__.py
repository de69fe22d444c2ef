"""bilite-device: run a bilite bundle (tokenize -> TFLite -> postprocess) with numpy and a TFLite
runtime only. Never imports TensorFlow, Keras, click or jinja2.
"""

__version__ = "0.1.0"

from .bundle import Bundle, Category, ClassifierOptions, Prediction, load_bundle
from .errors import (
    ArchiveError,
    BiliteError,
    BundleError,
    ChecksumError,
    IncompatibleRuntimeError,
    InputError,
    ModelError,
    RuntimeMissingError,
    SchemaError,
    SmokeTestError,
)
from .runtime import Runtime, find_runtime
from .schema import SCHEMA_VERSION
from .smoke import SmokeReport, run_smoke
from .tflite_file import TfliteFacts, read_tflite_facts
from .tokenizer import Tokenizer, TokenizerConfig, build_vocab

__all__ = [
    "ArchiveError", "BiliteError", "Bundle", "BundleError", "Category", "ChecksumError",
    "ClassifierOptions",
    "IncompatibleRuntimeError", "InputError", "ModelError", "Prediction", "Runtime",
    "RuntimeMissingError", "SCHEMA_VERSION", "SchemaError", "SmokeReport", "SmokeTestError",
    "TfliteFacts", "Tokenizer", "TokenizerConfig", "build_vocab", "find_runtime", "load_bundle",
    "read_tflite_facts", "run_smoke",
]
