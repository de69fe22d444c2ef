"""Frozen build configuration. Contradictions are refused here, before any training starts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from bilite_device.tokenizer import TokenizerConfig

from .errors import ConfigError

CELLS = ("lstm", "gru")
FORMS = ("auto", "while", "unrolled", "fused")
QUANTIZATIONS = ("float32", "float16", "dynamic", "int8", "all")  # all: sweep and choose
# The runtime the device has. tflite-runtime 2.14 lacks FULLY_CONNECTED v12, which TF 2.21 emits
# for per-channel dynamic-range dense layers; conversion for it quantizes dense layers per tensor.
TARGETS = ("tflite-runtime-2.14", "ai-edge-litert")


@dataclass(frozen=True)
class ModelConfig:
    cell: str = "lstm"
    units: int = 64
    layers: int = 1
    embed_dim: int = 64
    dropout: float = 0.2

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ConfigError(f"cell must be one of {CELLS}, got {self.cell!r}")
        for name in ("units", "layers", "embed_dim"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout!r}")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 8
    batch_size: int = 32
    learning_rate: float = 2e-3
    patience: int = 2  # epochs without validation-loss improvement before stopping
    seed: int = 0
    validation_fraction: float = 0.1
    test_fraction: float = 0.1

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError(f"epochs and batch_size must be >= 1, got {self.epochs}, {self.batch_size}")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate must be > 0, got {self.learning_rate}")


@dataclass(frozen=True)
class ConvertConfig:
    form: str = "auto"
    quantization: str = "dynamic"
    target: str = "tflite-runtime-2.14"
    max_accuracy_drop: float = 0.5  # points; with quantization "all": the budget for the choice
    int8_output: bool = False  # int8 mode: keep the scores tensor int8 (dequantized on the device)

    def __post_init__(self):
        if self.quantization == "int8" and self.form == "while":
            raise ConfigError("int8 cannot use --form while: full-int8 calibration of WHILE loops "
                              "crashes TensorFlow's converter; use --form auto, fused or unrolled")
        if self.form not in FORMS:
            raise ConfigError(f"form must be one of {FORMS}, got {self.form!r}")
        if self.quantization not in QUANTIZATIONS:
            raise ConfigError(f"quantization must be one of {QUANTIZATIONS}, got {self.quantization!r}")
        if not 0 <= self.max_accuracy_drop <= 100:
            raise ConfigError(f"max_accuracy_drop is in accuracy points (0-100), got {self.max_accuracy_drop}")
        if self.target not in TARGETS:
            raise ConfigError(f"target must be one of {TARGETS}, got {self.target!r}")


@dataclass(frozen=True)
class BuildConfig:
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    convert: ConvertConfig = field(default_factory=ConvertConfig)
    golden_count: int = 24

    def __post_init__(self):
        if self.convert.form == "fused" and self.model.cell != "lstm":
            raise ConfigError(
                f"form 'fused' exists only for LSTM (TFLite has no fused {self.model.cell.upper()} "
                "op); use --form auto, while or unrolled"
            )
        if self.golden_count < 20:
            raise ConfigError(f"golden_count must be at least 20, got {self.golden_count}")

    def to_json(self) -> dict:
        return {"tokenizer": self.tokenizer.to_json(), "model": asdict(self.model),
                "train": asdict(self.train), "convert": asdict(self.convert),
                "golden_count": self.golden_count}
