"""Each conversion form converts to the graph it promises, and the checks catch surprises."""

import numpy as np
import pytest

from bilite.config import ConvertConfig, ModelConfig
from bilite.convert import check_graph, convert_checked, target_problems
from bilite.errors import ConversionError
from bilite.forms import candidate_forms, choose_form
from bilite.target import TargetRunner
from bilite.keras_model import build_model, inference_twin, predict_scores
from bilite_device.model import TfliteModel

VOCAB, LABELS, T = 50, 2, 12
CFG = ModelConfig(units=4, embed_dim=4, dropout=0.0)


@pytest.fixture(scope="module")
def trained():
    import keras

    keras.utils.set_random_seed(1)
    return build_model(CFG, VOCAB, LABELS, T)


@pytest.fixture(scope="module")
def ids():
    rng = np.random.default_rng(0)
    x = rng.integers(1, VOCAB, size=(40, T)).astype(np.int32)
    for i, row in enumerate(x):  # varied lengths, padded at the end
        row[3 + i % (T - 3):] = 0
    return x


def _convert(trained, form, quant="float32", target="tflite-runtime-2.14"):
    twin = inference_twin(trained, CFG, VOCAB, LABELS, T, form)
    return convert_checked(twin, form, quant, target, T)


@pytest.mark.parametrize("form, must_have, must_not", [
    ("while", {"WHILE"}, {"UNIDIRECTIONAL_SEQUENCE_LSTM"}),
    ("unrolled", set(), {"WHILE", "UNIDIRECTIONAL_SEQUENCE_LSTM"}),
    ("fused", {"UNIDIRECTIONAL_SEQUENCE_LSTM"}, {"WHILE"}),
])
def test_each_form_gives_its_graph_and_matches_keras(trained, ids, form, must_have, must_not):
    blob, facts = _convert(trained, form)
    assert must_have <= facts.op_names and not (must_not & facts.op_names)
    assert facts.flex_ops == []
    assert bool(facts.variable_tensors) == (form == "fused")
    meta = {"reset_variables": form == "fused", "inputs": [{"name": facts.inputs[0].name}],
            "outputs": [{"name": facts.outputs[0].name}]}
    model = TfliteModel(blob, meta)
    got = np.array([model.run(row)[0] for row in ids])  # in sequence, one interpreter
    want = predict_scores(trained, ids)[:, 1]
    assert np.abs(got - want).max() < 1e-5


def test_dynamic_range_for_tflite_runtime_214_uses_fully_connected_v9_or_older(trained):
    """Pins the private converter flag: per-channel dense layers would be FULLY_CONNECTED v12,
    which tflite-runtime 2.14 cannot load."""
    wide = ModelConfig(units=32, embed_dim=32, dropout=0.0)
    model = build_model(wide, 2000, 5, T)
    twin = inference_twin(model, wide, 2000, 5, T, "while")
    _, facts = convert_checked(twin, "while", "dynamic", "tflite-runtime-2.14", T)
    versions = {o.version for o in facts.ops if o.name == "FULLY_CONNECTED"}
    assert versions and max(versions) <= 11
    _, newer = convert_checked(inference_twin(model, wide, 2000, 5, T, "while"), "while", "dynamic",
                               "ai-edge-litert", T)
    assert max(o.version for o in newer.ops if o.name == "FULLY_CONNECTED") >= 12
    assert target_problems(newer, "tflite-runtime-2.14"), "a v12 model must be refused for 2.14"


def test_check_graph_refuses_a_graph_that_is_not_the_form(trained):
    _, facts = _convert(trained, "while")
    with pytest.raises(ConversionError, match="expected one flat subgraph"):
        check_graph(facts, "unrolled", T, "ai-edge-litert")
    with pytest.raises(ConversionError, match="expected UNIDIRECTIONAL_SEQUENCE_LSTM"):
        check_graph(facts, "fused", T, "ai-edge-litert")
    with pytest.raises(ConversionError, match=r"shape \(1, 7\)"):
        check_graph(facts, "while", 7, "ai-edge-litert")


def test_candidate_forms():
    assert candidate_forms(ModelConfig(cell="gru"), ConvertConfig()) == ["while", "unrolled"]
    assert candidate_forms(ModelConfig(), ConvertConfig()) == ["while", "unrolled", "fused"]
    assert candidate_forms(ModelConfig(), ConvertConfig(form="fused")) == ["fused"]


def test_choose_form_for_gru_measures_and_records_every_candidate(ids):
    gru = ModelConfig(cell="gru", units=4, embed_dim=4, dropout=0.0)
    model = build_model(gru, VOCAB, LABELS, T)
    best, tried = choose_form(model, gru, ConvertConfig(quantization="float32"), VOCAB, LABELS, T,
                              ids, predict_scores(model, ids), TargetRunner(None), log=lambda s: None)
    assert [t["form"] for t in tried] == ["while", "unrolled"]
    assert all(t["ok"] and t["latency_us"] > 0 for t in tried)
    assert best.form in ("while", "unrolled") and best.parity.repeat_max_diff == 0.0


def test_converter_failure_becomes_a_typed_error():
    import keras

    inputs = keras.Input(shape=(T,), batch_size=None, dtype="int32")
    x = keras.layers.Embedding(VOCAB, 4)(inputs)
    x = keras.layers.Bidirectional(keras.layers.LSTM(4))(x)  # free batch: needs Flex ops
    model = keras.Model(inputs, keras.layers.Dense(1)(x))
    with pytest.raises(ConversionError, match="conversion|Flex|custom"):
        convert_checked(model, "while", "float32", "tflite-runtime-2.14", T)


def test_a_model_too_new_for_tflite_runtime_214_is_refused_on_the_device(tmp_path):
    """Built for ai-edge-litert, dynamic range uses FULLY_CONNECTED v12: the device with
    tflite-runtime 2.14 must refuse it before loading, naming the runtime version needed."""
    import os
    import subprocess

    python = os.environ.get("BILITE_DEVICE_PYTHON")
    if not python:
        pytest.skip("BILITE_DEVICE_PYTHON is not set: run through scripts/test to use .venv/device")
    wide = ModelConfig(units=32, embed_dim=32, dropout=0.0)
    twin = inference_twin(build_model(wide, 2000, 5, T), wide, 2000, 5, T, "while")
    blob, facts = convert_checked(twin, "while", "dynamic", "ai-edge-litert", T)
    path = tmp_path / "new.tflite"
    path.write_bytes(blob)
    code = ("import sys\nfrom bilite_device.model import TfliteModel\nfrom bilite_device.errors import "
            "IncompatibleRuntimeError\ntry:\n    TfliteModel(open(sys.argv[1], 'rb').read(), "
            "{'reset_variables': False, 'inputs': [{'name': 'x'}], 'outputs': [{'name': 'y'}]})\n"
            "except IncompatibleRuntimeError as exc:\n    print(exc)\n    sys.exit(3)\n")
    proc = subprocess.run([python, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert f"needs TFLite runtime {facts.min_runtime_version}" in proc.stdout
    assert "tflite-runtime 2.14.0" in proc.stdout and "--target tflite-runtime-2.14" in proc.stdout
