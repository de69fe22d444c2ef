"""Train a tiny model in seconds, bundle it, and run it through the device package: in this
process, and with `bilite-device` in the device-only environment (no TensorFlow)."""

import json
import os
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

from bilite.build import build
from bilite.cli import main
from bilite.config import BuildConfig, ConvertConfig, ModelConfig, TrainConfig
from bilite_device import load_bundle
from bilite_device.tokenizer import TokenizerConfig
from bilite_device.tflite_file import read_tflite_facts

TINY = BuildConfig(
    tokenizer=TokenizerConfig(max_len=20, max_vocab=1500),
    model=ModelConfig(units=8, embed_dim=8),
    train=TrainConfig(epochs=3, seed=5),
    convert=ConvertConfig(form="auto", quantization="dynamic"),
)


LOG: list[str] = []


@pytest.fixture(scope="module")
def built(tmp_path_factory, small_sms):
    out = tmp_path_factory.mktemp("e2e") / "tiny-spam"
    return build(small_sms, TINY, out, log=LOG.append)


def test_build_smoke_tests_on_both_device_runtimes(built):
    if not (os.environ.get("BILITE_DEVICE_PYTHON") and os.environ.get("BILITE_DEVICE_LITERT_PYTHON")):
        pytest.skip("device environments not set: run through scripts/test")
    smokes = [line for line in LOG if line.startswith("smoke on ")]
    assert any("tflite-runtime 2.14.0" in line for line in smokes), LOG[-5:]
    assert any("ai-edge-litert" in line for line in smokes), LOG[-5:]


def test_bundle_files_and_metadata(built, small_sms):
    from bilite.data import stratified_split


    names = sorted(p.name for p in built.bundle_dir.iterdir())
    assert names == ["INSTALL.md", "README.md", "bilite-smoke.service", "card.html", "checksums.sha256",
                     "confusion.svg", "golden.json", "labels.txt", "metadata.json", "model.tflite", "vocab.txt"]
    unit = (built.bundle_dir / "bilite-smoke.service").read_text()
    assert "ExecStart=/opt/bilite/venv/bin/bilite-device smoke /opt/bilite/models/current" in unit
    meta = json.loads((built.bundle_dir / "metadata.json").read_text())
    assert meta["schema_version"] == "1.0" and meta["labels"] == ["ham", "spam"]
    assert meta["metrics"]["evaluated_on"] == "tflite" and meta["metrics"]["n"] == len(stratified_split(small_sms, 5)[2])
    assert meta["golden"]["count"] >= 20
    assert meta["tokenizer"]["vocab_size"] == len((built.bundle_dir / "vocab.txt").read_text().splitlines())
    assert {c["form"] for c in meta["model"]["selection"]["candidates"]} == {"while", "unrolled", "fused"}
    assert meta["model"]["reset_variables"] == (meta["model"]["form"] == "fused")
    for key in ("tensorflow", "keras", "tf_keras", "numpy", "bilite_device"):
        assert key in meta["library_versions"]


def test_no_flex_op_and_the_recorded_ops_are_the_files(built):
    facts = read_tflite_facts((built.bundle_dir / "model.tflite").read_bytes())
    assert facts.flex_ops == [] and not any(o.name.startswith("CUSTOM") for o in facts.ops)
    meta = json.loads((built.bundle_dir / "metadata.json").read_text())
    assert meta["model"]["ops"] == [{"name": o.name, "version": o.version, "count": o.count} for o in facts.ops]
    assert facts.inputs[0].shape == (1, 20) and facts.inputs[0].dtype == "int32"


def test_metrics_are_the_tflite_models(built, small_sms):
    """Recompute the test-split accuracy through the device package: it must equal metadata."""
    from bilite.data import stratified_split

    _, _, test = stratified_split(small_sms, TINY.train.seed)
    bundle = load_bundle(built.archive)
    predicted = [bundle.predict(t).label for t in test.texts]
    accuracy = float(np.mean([p == y for p, y in zip(predicted, test.labels)]))
    assert accuracy == pytest.approx(built.metadata["metrics"]["accuracy"], abs=1e-12)


def test_same_text_same_scores_whatever_came_before(built):
    bundle = load_bundle(built.bundle_dir)
    text = "Congratulations! You won a free holiday. Call now to claim"
    first = bundle.predict(text).scores
    bundle.predict_batch([v["text"] for v in bundle.golden])
    assert bundle.predict(text).scores == first


def test_smoke_in_the_device_only_environment(built):
    python = os.environ.get("BILITE_DEVICE_PYTHON")
    if not python:
        pytest.skip("BILITE_DEVICE_PYTHON is not set: run through scripts/test to use .venv/device")
    script = ("import sys\nfrom bilite_device.cli import main\n"
              "try:\n    import tensorflow\n    sys.exit('tensorflow is importable on the device')\n"
              "except ImportError:\n    pass\nsys.exit(main(sys.argv[1:]))\n")
    for target in (built.archive, built.bundle_dir):
        proc = subprocess.run([python, "-c", script, "smoke", str(target), "--runs", "20"],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "PASS" in proc.stdout and "tflite-runtime 2.14" in proc.stdout
    proc = subprocess.run([python, "-c", script, "predict", str(built.archive), "--json",
                           "WINNER! Claim your free prize now"], capture_output=True, text=True, timeout=300)
    device = json.loads(proc.stdout)
    host = load_bundle(built.archive).predict("WINNER! Claim your free prize now")
    assert device["label"] == host.label
    assert device["score"] == pytest.approx(host.score, abs=built.metadata["golden"]["tolerance"])


def test_inspect_cli(built):
    result = CliRunner().invoke(main, ["inspect", str(built.archive), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["metadata"]["name"] == "tiny-spam" and info["model"]["size_bytes"] > 0
    text = CliRunner().invoke(main, ["inspect", str(built.bundle_dir / "model.tflite")])
    assert text.exit_code == 0 and "ops:" in text.output and "input" in text.output


def test_model_card_renders_the_measured_numbers(built):
    card = (built.bundle_dir / "README.md").read_text()
    meta = built.metadata
    assert f"Accuracy **{meta['metrics']['accuracy']:.4f}**" in card
    assert f"`{meta['model']['form']}`" in card and "| ham |" in card
    assert "bilite-device smoke tiny-spam.tar.gz" in (built.bundle_dir / "INSTALL.md").read_text()
