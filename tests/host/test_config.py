import pytest

from bilite.config import BuildConfig, ConvertConfig, ModelConfig, TrainConfig
from bilite.errors import ConfigError


def test_fused_needs_lstm():
    with pytest.raises(ConfigError, match="only for LSTM"):
        BuildConfig(model=ModelConfig(cell="gru"), convert=ConvertConfig(form="fused"))


@pytest.mark.parametrize("make", [
    lambda: ModelConfig(cell="rnn"),
    lambda: ModelConfig(units=0),
    lambda: ModelConfig(dropout=1.0),
    lambda: TrainConfig(epochs=0),
    lambda: TrainConfig(learning_rate=0),
    lambda: ConvertConfig(quantization="int3"),
    lambda: ConvertConfig(target="tflite-runtime-1.0"),
    lambda: BuildConfig(golden_count=5),
])
def test_invalid_values_are_refused(make):
    with pytest.raises(ConfigError):
        make()


def test_config_is_frozen():
    cfg = BuildConfig()
    with pytest.raises(Exception):
        cfg.golden_count = 30
    assert cfg.to_json()["convert"] == {"form": "auto", "quantization": "dynamic", "target": "tflite-runtime-2.14",
                                        "max_accuracy_drop": 0.5, "int8_output": False}
