"""The tagger path: CoNLL-U reading, features, a tiny trained tagger through the device package."""

import json
import os
import subprocess

import numpy as np
import pytest

from bilite.build_tagger import build_tagger, windows_of
from bilite.config import BuildConfig, ConvertConfig, ModelConfig, TrainConfig
from bilite.conllu import load_conllu
from bilite.errors import DataError
from bilite_device import load_bundle
from bilite_device.tokenizer import TokenizerConfig
from conftest import ROOT

EWT = ROOT / "data" / "ud_english_ewt"


@pytest.fixture(scope="module")
def ewt():
    return {s: load_conllu(EWT / f"en_ewt-ud-{s}.conllu.xz") for s in ("train", "dev", "test")}


def test_conllu_counts_match_the_treebank(ewt):
    # The data README's verified counts: sentences and syntactic words (no ranges, no empty nodes).
    assert [len(ewt[s]) for s in ("train", "dev", "test")] == [12544, 2001, 2077]
    assert sum(len(s) for s in ewt["train"].sentences) == 204577
    assert len(ewt["train"].tag_names()) == 17 and "PROPN" in ewt["train"].tag_names()


def test_conllu_errors(tmp_path):
    bad = tmp_path / "x.conllu"
    bad.write_text("1\tonly three\tcols\n")
    with pytest.raises(DataError, match="10 TAB-separated columns"):
        load_conllu(bad)
    with pytest.raises(DataError, match="not found"):
        load_conllu(tmp_path / "missing.conllu")


def test_windows_keep_every_word(ewt):
    words, tags = windows_of(ewt["test"], 16)
    assert sum(map(len, words)) == sum(len(s) for s in ewt["test"].sentences)
    assert max(map(len, words)) == 16 and [len(w) for w in words] == [len(t) for t in tags]


@pytest.fixture(scope="module")
def tiny(ewt, tmp_path_factory):
    config = BuildConfig(tokenizer=TokenizerConfig(max_len=16, min_count=1),
                         model=ModelConfig(units=8, embed_dim=8), train=TrainConfig(epochs=2, seed=3),
                         convert=ConvertConfig(form="while"))
    return build_tagger(ewt["train"].head(500), ewt["dev"].head(100), ewt["test"].head(150), config,
                        tmp_path_factory.mktemp("tag") / "tiny-tagger", log=lambda s: None)


def test_tagger_bundle(tiny):
    meta = tiny.metadata
    assert meta["task"] == "tagging" and meta["tokenizer"]["features"] == ["word", "case", "suffix2", "suffix3"]
    assert meta["model"]["inputs"][0]["shape"] == [1, 16, 4]
    assert meta["model"]["outputs"][0]["shape"] == [1, 16, 17]
    assert meta["metrics"]["unit"] == "token" and meta["metrics"]["evaluated_on"] == "tflite"
    assert (tiny.bundle_dir / "features.json").exists()


def test_tagger_metrics_are_the_tflite_models(tiny, ewt):
    """Token accuracy recomputed through the device package equals metadata (same windows)."""
    bundle = load_bundle(tiny.archive)
    words, tags = windows_of(ewt["test"].head(150), 16)
    got = [w.tag for ws in words for w in bundle.tag_tokens(ws)]
    want = [t for ts in tags for t in ts]
    assert float(np.mean([g == w for g, w in zip(got, want)])) == pytest.approx(
        tiny.metadata["metrics"]["accuracy"], abs=1e-12)


def test_tagger_smoke_on_the_device(tiny):
    python = os.environ.get("BILITE_DEVICE_PYTHON")
    if not python:
        pytest.skip("BILITE_DEVICE_PYTHON is not set: run through scripts/test to use .venv/device")
    proc = subprocess.run([python, "-m", "bilite_device.cli", "smoke", str(tiny.archive), "--runs", "5"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = subprocess.run([python, "-m", "bilite_device.cli", "tag", str(tiny.archive), "--json",
                           "The  café's owner didn't close."], capture_output=True, text=True, timeout=300)
    words = json.loads(proc.stdout)["words"]
    assert [w["word"] for w in words] == ["The", "café", "'s", "owner", "did", "n't", "close", "."]
    assert words[1]["start"] == 5 and words[2]["start"] == 9


def test_tagger_quantization_sweep(ewt, tmp_path):
    config = BuildConfig(tokenizer=TokenizerConfig(max_len=12, min_count=2),
                         model=ModelConfig(units=4, embed_dim=4), train=TrainConfig(epochs=1, seed=3),
                         convert=ConvertConfig(form="unrolled", quantization="all", max_accuracy_drop=100))
    result = build_tagger(ewt["train"].head(200), ewt["dev"].head(50), ewt["test"].head(50), config,
                          tmp_path / "swept-tagger", log=lambda s: None)
    rows = result.metadata["quantization_sweep"]["rows"]
    assert [r["mode"] for r in rows] == ["float32", "float16", "dynamic", "int8"]
    assert all(r["available"] for r in rows), rows
    assert result.metadata["model"]["quantization"] == result.metadata["quantization_sweep"]["chosen"]
    assert "## Quantization modes" in (result.bundle_dir / "README.md").read_text()
    assert load_bundle(result.archive).tag("The dog barked.")[1].word == "dog"
