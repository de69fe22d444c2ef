"""Frozen build configuration. Contradictions are refused here, before any training starts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from bilite_device.tokenizer import TokenizerConfig

from .errors import ConfigError

CELLS = ("lstm", "gru")
BINARY_HEADS = ("sigmoid", "softmax")
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
    # Two labels: one sigmoid unit (default), or two softmax units (what --interop needs).
    binary_head: str = "sigmoid"

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ConfigError(f"cell must be one of {CELLS}, got {self.cell!r}")
        if self.binary_head not in BINARY_HEADS:
            raise ConfigError(f"binary_head must be one of {BINARY_HEADS}, got {self.binary_head!r}")
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


PRUNE_SCHEDULES = ("polynomial", "constant")
MAX_SPARSITY = 0.95  # beyond this a BiRNN keeps too few weights to be worth fine-tuning


@dataclass(frozen=True)
class PruneConfig:
    """Magnitude pruning after training (see prune.py). ``sparsity`` 0 means no pruning; then
    ``schedule`` and ``epochs`` stay None, and giving them is a contradiction."""

    sparsity: float = 0.0  # target fraction of zeros in each prunable weight
    schedule: str | None = None  # polynomial (ramp from 0) or constant; default polynomial
    epochs: int | None = None  # fine-tuning epochs with the pruning schedule; default 2

    def __post_init__(self):
        if not 0 <= self.sparsity < MAX_SPARSITY:
            raise ConfigError(f"--prune is the target fraction of zero weights, in [0, {MAX_SPARSITY}); "
                              f"got {self.sparsity!r}. Try --prune 0.5")
        if self.sparsity == 0:
            given = [f"--prune-{name} {getattr(self, name)}" for name in ("schedule", "epochs")
                     if getattr(self, name) is not None]
            if given:
                raise ConfigError(f"{' and '.join(given)} given without --prune: nothing would be "
                                  "pruned. Add --prune SPARSITY (such as --prune 0.5) or drop them")
            return
        object.__setattr__(self, "schedule", self.schedule or "polynomial")
        object.__setattr__(self, "epochs", 2 if self.epochs is None else self.epochs)
        if self.schedule not in PRUNE_SCHEDULES:
            raise ConfigError(f"--prune-schedule must be one of {PRUNE_SCHEDULES}, got {self.schedule!r}")
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ConfigError(f"--prune-epochs must be a positive integer (fine-tuning epochs while "
                              f"pruning), got {self.epochs!r}")


@dataclass(frozen=True)
class ScaleConfig:
    """Training past one machine's memory and one machine (streaming.py, distributed.py).
    ``tf_config`` is the TF_CONFIG environment variable as given (multiworker only); it is checked
    here but never written into metadata (it names hosts)."""

    stream: bool = False  # read DATA through tf.data, split by line hash, vocabulary in bounded memory
    strategy: str = "default"  # default | mirrored | multiworker
    backup_dir: str | None = None  # BackupAndRestore: a backup per epoch; a rerun resumes from it
    shuffle_buffer: int = 10_000  # streamed examples held for shuffling
    vocab_count_cap: int | None = None  # distinct tokens counted at once when streaming (default 200,000)
    tf_config: str | None = None

    def __post_init__(self):
        from .distributed import STRATEGIES, parse_tf_config

        if self.strategy not in STRATEGIES:
            raise ConfigError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.strategy == "multiworker":
            parse_tf_config(self.tf_config)  # raises ConfigError naming what is wrong
        if not isinstance(self.shuffle_buffer, int) or self.shuffle_buffer < 1:
            raise ConfigError(f"shuffle_buffer must be a positive integer, got {self.shuffle_buffer!r}")
        if self.vocab_count_cap is not None:
            if not self.stream:
                raise ConfigError(f"--vocab-count-cap {self.vocab_count_cap} given without --stream: the "
                                  "in-memory build counts every token exactly. Add --stream or drop it")
            if not isinstance(self.vocab_count_cap, int) or self.vocab_count_cap < 2:
                raise ConfigError(f"--vocab-count-cap must be an integer >= 2, got {self.vocab_count_cap!r}")
        elif self.stream:
            from .vocab_stream import DEFAULT_COUNT_CAP

            object.__setattr__(self, "vocab_count_cap", DEFAULT_COUNT_CAP)

    def to_json(self) -> dict:
        from .distributed import parse_tf_config

        workers = parse_tf_config(self.tf_config).workers if self.strategy == "multiworker" else 1
        return {"stream": self.stream, "strategy": self.strategy, "workers": workers,
                "backup_dir": self.backup_dir, "shuffle_buffer": self.shuffle_buffer,
                "vocab_count_cap": self.vocab_count_cap}


@dataclass(frozen=True)
class BuildConfig:
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    convert: ConvertConfig = field(default_factory=ConvertConfig)
    golden_count: int = 24
    prune: PruneConfig = field(default_factory=PruneConfig)
    scale: ScaleConfig = field(default_factory=ScaleConfig)
    interop: bool = False  # model.tflite readable by the Task Library and MediaPipe (interop.py)

    def __post_init__(self):
        if self.interop:
            from .interop import interop_problems

            problems = interop_problems(self)
            if problems:
                raise ConfigError("--interop cannot work with these options: " + "; ".join(problems))
        if self.convert.form == "fused" and self.model.cell != "lstm":
            raise ConfigError(
                f"form 'fused' exists only for LSTM (TFLite has no fused {self.model.cell.upper()} "
                "op); use --form auto, while or unrolled"
            )
        if self.golden_count < 20:
            raise ConfigError(f"golden_count must be at least 20, got {self.golden_count}")
        if self.scale.stream and self.prune.sparsity:
            raise ConfigError(f"--prune {self.prune.sparsity} with --stream: pruning fine-tunes on the "
                              "training texts held in memory, which a streamed build never holds. Drop "
                              "--stream (or --prune)")
        if self.scale.strategy == "multiworker" and self.prune.sparsity:
            raise ConfigError(f"--prune {self.prune.sparsity} with --strategy multiworker: pruning fine-tunes "
                              "on the chief alone after training, while the other workers have left the "
                              "collective, so it would hang. Prune in a single-machine build (drop "
                              "--strategy multiworker or --prune)")
        if self.scale.stream and self.scale.vocab_count_cap < self.tokenizer.max_vocab:
            raise ConfigError(f"--vocab-count-cap {self.scale.vocab_count_cap} is below --max-vocab "
                              f"{self.tokenizer.max_vocab}: the vocabulary could never fill. Raise the cap")

    def to_json(self) -> dict:
        return {"tokenizer": self.tokenizer.to_json(), "model": asdict(self.model),
                "train": asdict(self.train), "convert": asdict(self.convert),
                "golden_count": self.golden_count, "prune": asdict(self.prune), "interop": self.interop,
                "scale": self.scale.to_json()}
