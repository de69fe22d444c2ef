"""--prune: the mask and schedule, zeros surviving conversion, and the report a pruned build writes."""

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from bilite.cli import main
from bilite.config import BuildConfig, ConvertConfig, ModelConfig, PruneConfig, TrainConfig
from bilite.errors import ConfigError
from bilite.prune import keep_largest, prunable_indices, sparsity_at
from bilite.tflite_weights import constant_tensors, locate_weights
from bilite_device import load_bundle
from bilite_device.tokenizer import TokenizerConfig


def test_mask_zeroes_exactly_the_smallest_magnitudes():
    values = np.array([[0.5, -0.1, 3.0], [-2.0, 0.05, -0.7]], dtype=np.float32)
    mask = keep_largest(values, 0.5)
    assert mask.tolist() == [[0, 0, 1], [1, 0, 1]]  # 0.05, -0.1 and 0.5 go; |w| decides, not w
    assert keep_largest(values, 0.0).min() == 1
    big = np.random.default_rng(0).normal(size=(37, 53)).astype(np.float32)
    assert (keep_largest(big, 0.8) == 0).sum() == round(0.8 * big.size)


def test_schedules():
    ramp = [sparsity_at(step, 100, 0.5, "polynomial") for step in range(0, 121, 10)]
    assert ramp[0] == 0.0 and ramp[10] == ramp[12] == 0.5
    assert all(a < b for a, b in zip(ramp[:10], ramp[1:11]))  # rising, then held
    assert ramp[1] > 0.05 * 2  # cubic: large steps early, while the model recovers easily
    assert {sparsity_at(step, 100, 0.5, "constant") for step in (0, 1, 50, 500)} == {0.5}


@pytest.mark.parametrize("make, message", [
    (lambda: PruneConfig(sparsity=0.95), r"in \[0, 0.95\)"),
    (lambda: PruneConfig(sparsity=-0.1), r"in \[0, 0.95\)"),
    (lambda: PruneConfig(sparsity=math.nan), r"in \[0, 0.95\)"),
    (lambda: PruneConfig(epochs=3), "--prune-epochs 3 given without --prune"),
    (lambda: PruneConfig(schedule="constant"), "--prune-schedule constant given without --prune"),
    (lambda: PruneConfig(sparsity=0.5, schedule="cosine"), "must be one of"),
    (lambda: PruneConfig(sparsity=0.5, epochs=0), "positive integer"),
])
def test_contradictions_are_config_errors(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_defaults_and_metadata_record():
    assert PruneConfig() == PruneConfig(0.0, None, None)
    assert BuildConfig(prune=PruneConfig(0.5)).to_json()["prune"] == {
        "sparsity": 0.5, "schedule": "polynomial", "epochs": 2}


def test_cli_refuses_before_reading_any_data(tmp_path):
    for args, message in ((["--prune", "0.97"], "Try --prune 0.5"),
                          (["--prune-epochs", "4"], "given without --prune")):
        result = CliRunner().invoke(main, ["build", str(tmp_path / "none.csv"), "--out", str(tmp_path / "b"), *args])
        assert result.exit_code == 1 and message in result.output, result.output


VOCAB, T = 400, 10
CFG = ModelConfig(units=16, embed_dim=16, dropout=0.0)  # kernels of 1,024 weights: int8 in dynamic range


@pytest.mark.parametrize("form, quantization, stored", [
    ("fused", "dynamic", "int8"), ("while", "dynamic", "int8"), ("unrolled", "float16", "float16")])
def test_pruned_zeros_survive_conversion(form, quantization, stored):
    """Symmetric quantization maps 0 to the code 0: every pruned weight is still exactly zero in
    the converted file, found there by value (transposed, and split per gate for the fused LSTM)."""
    import keras

    from bilite.convert import convert_keras
    from bilite.keras_model import build_model, inference_twin

    keras.utils.set_random_seed(4)
    model = build_model(CFG, VOCAB, 2, T)
    pruned = model.get_weights()
    for i in prunable_indices(model):
        pruned[i] = pruned[i] * keep_largest(pruned[i], 0.5)
    model.set_weights(pruned)
    blob = convert_keras(inference_twin(model, CFG, VOCAB, 2, T, form), quantization, "tflite-runtime-2.14")
    names = {model.weights[i].path: pruned[i] for i in prunable_indices(model)}
    assert len(names) == 6  # embedding, 2 directions x (kernel, recurrent kernel), head
    found = locate_weights(names, blob)
    for name, row in found.items():
        assert row["tflite_elements"] == names[name].size, (name, row)
        assert row["keras_zeros_kept"] == 1.0, (name, row)
        # Quantization may round a few more tiny weights to zero, never fewer.
        assert 0.5 - 1e-3 <= row["tflite_zero_fraction"] <= 0.53, (name, row)
    embedding = found["embedding/embeddings"]["tflite_tensors"]
    assert [t["dtype"] for t in embedding] == [stored]
    kernel = found["bidirectional_0/forward_lstm_0/lstm_cell/kernel"]["tflite_tensors"]
    assert len(kernel) == (4 if form == "fused" else 1)


@pytest.fixture(scope="module")
def pruned_build(small_sms, tmp_path_factory):
    from bilite.build import build

    config = BuildConfig(tokenizer=TokenizerConfig(max_len=16, max_vocab=800),
                         model=ModelConfig(units=16, embed_dim=16), train=TrainConfig(epochs=2, seed=1),
                         convert=ConvertConfig(form="while", quantization="dynamic"),
                         prune=PruneConfig(sparsity=0.5, epochs=2))
    return build(small_sms, config, tmp_path_factory.mktemp("prune") / "pruned", log=lambda s: None)


def test_pruned_build_reports_sparsity_per_weight(pruned_build):
    report = pruned_build.metadata["pruning"]
    assert report["target_sparsity"] == 0.5 and report["schedule"]["kind"] == "polynomial"
    assert report["form"] == "while" and report["quantization"] == "dynamic"
    assert len(report["weights"]) == 6 and report["overall"]["weights_not_found_in_tflite"] == []
    for row in report["weights"]:
        assert abs(row["keras_zero_fraction"] - 0.5) <= 0.02, row
        assert abs(row["tflite_zero_fraction"] - 0.5) <= 0.02, row
        assert row["keras_zeros_kept"] == 1.0, row
    assert report["overall"]["tflite_zero_fraction_unpruned"] < 0.1  # the zeros are pruning's


def test_the_shipped_file_really_holds_the_zeros(pruned_build):
    """Read the bundle's model.tflite itself: its int8 embedding table is half zeros."""
    blob = (pruned_build.bundle_dir / "model.tflite").read_bytes()
    tables = [t for t in constant_tensors(blob) if t.stored.shape == (800, 16)]
    assert [t.dtype for t in tables] == ["INT8"] and tables[0].zero_point in ((), (0,))
    assert abs(float((tables[0].stored == 0).mean()) - 0.5) <= 0.02


def test_pruning_shrinks_the_download_not_the_file(pruned_build):
    report = pruned_build.metadata["pruning"]
    before, after = report["before"], report["after"]
    assert before["model_bytes"] == after["model_bytes"] == len((pruned_build.bundle_dir / "model.tflite").read_bytes())
    assert after["model_gzip_bytes"] < 0.9 * before["model_gzip_bytes"]
    assert after["bundle_tar_gz_bytes"] < before["bundle_tar_gz_bytes"]
    # the recorded size is the archive's own, give or take the bytes of the numbers themselves
    assert abs(after["bundle_tar_gz_bytes"] - pruned_build.archive.stat().st_size) <= 64
    assert before["latency_us"] > 0 and after["latency_us"] > 0 and "No speed-up is expected" in report["latency_note"]
    for side in (before, after):
        assert 0.5 <= side["accuracy"] <= 1.0 and set(side["f1_per_label"]) == {"ham", "spam"}
    # the bundle's own metric is the pruned TFLite model's
    assert pruned_build.metadata["metrics"]["accuracy"] == pytest.approx(after["accuracy"], abs=1e-12)


def test_pruning_figures_are_in_both_model_cards_and_the_bundle_works(pruned_build):
    card = (pruned_build.bundle_dir / "README.md").read_text()
    after = pruned_build.metadata["pruning"]["after"]
    assert "## Pruning (`--prune 0.5`)" in card and f"{after['model_gzip_bytes']:,}" in card
    assert "| `embedding/embeddings` | 800×16 | 0.500 | 0.500 | 1 int8 tensor(s) | 1.000 |" in card
    assert "Pruning (target sparsity 0.5)" in (pruned_build.bundle_dir / "card.html").read_text()
    meta = json.loads((pruned_build.bundle_dir / "metadata.json").read_text())
    assert meta["pruning"]["after"]["bundle_tar_gz_bytes"] == after["bundle_tar_gz_bytes"]
    assert load_bundle(pruned_build.archive).predict("free prize, call now").label in ("ham", "spam")


def test_a_pruned_gru_tagger(tmp_path):
    from bilite.build_tagger import build_tagger
    from bilite.conllu import TaggedCorpus, load_conllu
    from conftest import ROOT

    ewt = {s: load_conllu(ROOT / "data" / "ud_english_ewt" / f"en_ewt-ud-{s}.conllu.xz") for s in ("dev", "test")}
    config = BuildConfig(tokenizer=TokenizerConfig(max_len=12, min_count=2),
                         model=ModelConfig(cell="gru", units=8, embed_dim=8), train=TrainConfig(epochs=1, seed=3),
                         convert=ConvertConfig(form="while", quantization="float32"),
                         prune=PruneConfig(sparsity=0.6, schedule="constant", epochs=1))
    dev = ewt["dev"]
    val = TaggedCorpus(dev.sentences[200:250], dev.tags[200:250], dev.source)
    result = build_tagger(dev.head(200), val, ewt["test"].head(50), config,
                          tmp_path / "pruned-tagger", log=lambda s: None)
    report = result.metadata["pruning"]
    assert report["unit"] == "token" and report["schedule"]["kind"] == "constant"
    names = [row["name"] for row in report["weights"]]
    assert "embedding_suffix3/embeddings" in names and "scores/kernel" in names
    for row in report["weights"]:
        assert abs(row["keras_zero_fraction"] - 0.6) <= 0.02 and row["keras_zeros_kept"] == 1.0, row
        assert abs(row["tflite_zero_fraction"] - row["keras_zero_fraction"]) < 1e-9, row  # float32: exact
    assert "## Pruning" in (result.bundle_dir / "README.md").read_text()
