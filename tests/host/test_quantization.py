"""int8 in a child process, calibration checks, and the --quantize all choice."""

import numpy as np
import pytest

from bilite.config import ConvertConfig, ModelConfig
from bilite.convert import check_calibration
from bilite.convert_child import convert_in_child
from bilite.errors import ConfigError, ConversionError
from bilite.keras_model import build_model, predict_scores
from bilite.sweep import pick
from bilite_device.model import TfliteModel
from bilite_device.tflite_file import read_tflite_facts

VOCAB, T = 60, 12
CFG = ModelConfig(units=8, embed_dim=8, dropout=0.0)


@pytest.fixture(scope="module")
def model():
    import keras

    keras.utils.set_random_seed(2)
    return build_model(CFG, VOCAB, 2, T)


@pytest.fixture(scope="module")
def ids():
    return np.random.default_rng(1).integers(1, VOCAB, size=(64, T)).astype(np.int32)


def test_int8_fused_converts_in_a_child_and_matches_keras(model, ids):
    blob = convert_in_child(model, CFG, VOCAB, 2, T, "fused", "int8", "tflite-runtime-2.14", ids)
    facts = read_tflite_facts(blob)
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in facts.op_names and facts.inputs[0].dtype == "int32"
    assert facts.outputs[0].dtype == "float32" and facts.flex_ops == []
    meta = {"reset_variables": True, "inputs": [{"name": facts.inputs[0].name}],
            "outputs": [{"name": facts.outputs[0].name}]}
    tflite = TfliteModel(blob, meta)
    got = np.array([tflite.run(row)[0] for row in ids])
    assert np.abs(got - predict_scores(model, ids)[:, 1]).max() < 0.2


def test_a_crashing_converter_is_an_error_and_the_parent_survives(model, ids, monkeypatch):
    monkeypatch.setenv("BILITE_TEST_CRASH_CONVERTER", "1")
    with pytest.raises(ConversionError, match="crashed \\(SIGSEGV\\).*your process is fine"):
        convert_in_child(model, CFG, VOCAB, 2, T, "while", "int8", "tflite-runtime-2.14", ids)
    assert predict_scores(model, ids[:2]).shape == (2, 2)  # still alive, still working


def test_calibration_must_be_token_ids_inside_the_vocabulary(model, ids):
    assert check_calibration(ids, model).dtype == np.int32
    with pytest.raises(ConversionError, match="integers"):
        check_calibration(ids.astype(np.float32), model)
    with pytest.raises(ConversionError, match=r"\[0, 60\)"):
        check_calibration(ids + VOCAB, model)
    with pytest.raises(ConversionError, match="needs calibration"):
        check_calibration(None, model)


def test_int8_with_while_is_refused_up_front():
    with pytest.raises(ConfigError, match="crashes TensorFlow's converter"):
        ConvertConfig(quantization="int8", form="while")


def _row(mode, size, acc, available=True):
    return {"mode": mode, "size_bytes": size, "accuracy": acc, "available": available}


def test_pick_the_smallest_mode_within_the_budget():
    rows = [_row("float32", 1000, 0.990), _row("float16", 520, 0.990), _row("dynamic", 300, 0.986),
            _row("int8", 250, 0.970)]
    assert pick(rows, 0.5)["mode"] == "dynamic"
    assert pick(rows, 2.5)["mode"] == "int8"
    assert pick(rows, 0.0)["mode"] == "float16"
    rows[3] = {"mode": "int8", "available": False, "reason": "crashed"}
    assert pick(rows, 5)["mode"] == "dynamic"
    with pytest.raises(ConversionError, match="float32 conversion failed"):
        pick([{"mode": "float32", "available": False, "reason": "x"}], 1)


def test_quantize_all_writes_the_table_and_the_html_card(tmp_path, small_sms):
    from bilite.build import build
    from bilite.config import BuildConfig, TrainConfig
    from bilite_device import load_bundle
    from bilite_device.tokenizer import TokenizerConfig

    config = BuildConfig(tokenizer=TokenizerConfig(max_len=12, max_vocab=800),
                         model=ModelConfig(units=4, embed_dim=4), train=TrainConfig(epochs=1, seed=1),
                         convert=ConvertConfig(form="unrolled", quantization="all", max_accuracy_drop=100))
    result = build(small_sms, config, tmp_path / "swept", log=lambda s: None)
    sweep = result.metadata["quantization_sweep"]
    assert [r["mode"] for r in sweep["rows"]] == ["float32", "float16", "dynamic", "int8"]
    assert all(r["available"] for r in sweep["rows"]), sweep["rows"]
    sizes = {r["mode"]: r["size_bytes"] for r in sweep["rows"]}
    assert sizes["dynamic"] < sizes["float32"]  # (unrolled int8 of a tiny model can be larger:
    # per-step quantization parameters outweigh its few weights; the fused int8 form is compact)
    # with a 100-point budget the smallest mode wins, and that is the bundle's model
    assert sweep["chosen"] == min(sizes, key=sizes.get) == result.metadata["model"]["quantization"]
    assert len((result.bundle_dir / "model.tflite").read_bytes()) == sizes[sweep["chosen"]]
    html = (result.bundle_dir / "card.html").read_text()
    assert "<svg" in html and "size (KiB)" in html and html.count("<tr") >= 5
    assert "## Quantization modes" in (result.bundle_dir / "README.md").read_text()
    assert load_bundle(result.archive).predict("free prize").label in ("ham", "spam")


def test_explain_names_the_measured_reason():
    from bilite.sweep import explain

    row = {"mode": "int8", "available": True, "size_ratio": 0.98, "accuracy_drop_points": 0.18,
           "forms_tried": [{"form": "unrolled", "ok": True, "latency_us": 51739.0, "size_bytes": 1188454,
                            "max_abs_diff_vs_keras": 0.033},
                           {"form": "fused", "ok": False, "latency_us": 8528.0, "size_bytes": 308224,
                            "max_abs_diff_vs_keras": 0.27}]}
    note = explain(row, 0.5)
    assert note.startswith("misses: 0.98x the float32 size (target 0.3x).")
    assert "fused: 301 KiB, 8528 us/invoke, max |diff| vs Keras 0.27 (failed parity)" in note
    assert explain({**row, "size_ratio": 0.25}, 0.5) == ""
    assert explain({"mode": "float16", "available": True, "size_ratio": 0.5}, 0.5) == ""


def test_int8_output_is_dequantized_on_the_device(model, ids):
    blob = convert_in_child(model, CFG, VOCAB, 2, T, "fused", "int8", "tflite-runtime-2.14", ids,
                            int8_output=True)
    facts = read_tflite_facts(blob)
    assert facts.outputs[0].dtype == "int8" and facts.outputs[0].scale and facts.inputs[0].dtype == "int32"
    meta = {"reset_variables": True, "inputs": [{"name": facts.inputs[0].name}],
            "outputs": [{"name": facts.outputs[0].name}]}
    got = np.array([TfliteModel(blob, meta).run(row)[0] for row in ids])
    assert got.dtype == np.float32 and 0.0 <= got.min() and got.max() <= 1.0
    assert np.abs(got - predict_scores(model, ids)[:, 1]).max() < 0.2
