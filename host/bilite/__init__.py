"""bilite: train bidirectional RNN text models and ship them to Raspberry-Pi-class devices.

The tokenizer and the bundle schema live in ``bilite_device`` and are imported from there, so the
host and the device can never tokenize differently.
"""

__version__ = "0.1.0"

from .config import BuildConfig, ConvertConfig, ModelConfig, TrainConfig
from .data import Dataset, load_dataset, stratified_split
from .errors import ConfigError, ConversionError, DataError, ParityError

__all__ = [
    "BuildConfig", "ConfigError", "ConversionError", "ConvertConfig", "DataError", "Dataset",
    "ModelConfig", "ParityError", "TrainConfig", "load_dataset", "stratified_split",
]
