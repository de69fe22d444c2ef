"""`bilite bundle --model`: users' own models, exactly or refused with the cause and the fix."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from bilite.byo import bundle_model
from bilite.cli import main
from bilite.config import ConvertConfig
from bilite.errors import (ConfigError, ModelLoadError, StatefulModelError, StringOpsError,
                           TokenizerMismatchError, UnsupportedLayerError, VocabularyError)
from bilite.keras_spec import read_spec
from bilite.model_files import load_user_model
from bilite.spec_convert import convert_forms
from bilite_device import load_bundle
from bilite_device.tokenizer import TokenizerConfig, split

from user_models import build_user_model, save_user_model


@pytest.fixture(scope="module")
def texts(sms):
    return [t.replace("\n", " ") for t in sms.texts[:400]]


def write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def letter_words(n):
    """n distinct words bilite's rules reproduce ("w7" would not: digits fold to 0)."""
    return [f"w{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(n)]


def test_keras3_model_with_textvectorization_vocabulary_bundles_exactly(tmp_path, texts, sms):
    """Done when: `bilite bundle --model` on a .keras file saved by plain keras (Keras 3)."""
    import keras

    tv = keras.layers.TextVectorization(max_tokens=200, output_sequence_length=16)
    tv.adapt(texts[:300])
    model = build_user_model("keras", "lstm", head="sigmoid", length=16, vocab=200, mask=True)
    path = save_user_model(model, tmp_path, "keras", "keras")
    write(tmp_path / "vocab.txt", tv.get_vocabulary())
    write(tmp_path / "labels.txt", ["ham", "spam"])
    samples = [json.dumps({"text": t, "ids": np.asarray(tv([t]))[0].tolist()}) for t in texts[300:400]]
    write(tmp_path / "samples.jsonl", samples)
    result = CliRunner().invoke(main, ["bundle", "--model", str(path), "--vocab", str(tmp_path / "vocab.txt"),
                                       "--labels", str(tmp_path / "labels.txt"), "--samples",
                                       str(tmp_path / "samples.jsonl"), "--quantize", "float32",
                                       "--out", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    assert "100 sample id rows reproduced" in result.output
    bundle = load_bundle(tmp_path / "b.tar.gz")
    meta = bundle.metadata.raw
    assert meta["tokenizer"]["profile"] == "keras-textvectorization-v1"
    assert meta["source"]["flavour"] == "keras" and meta["source"]["masked"]
    assert meta["model"]["form"] in ("while", "unrolled") and meta["model"]["masking"]["extra_ops"]
    fresh = texts[350:400]
    keras_p = model.predict(np.asarray(tv(fresh)), verbose=0)[:, 0]
    device_p = np.array([bundle.predict(t).scores["spam"] for t in fresh])  # in sequence, one interpreter
    assert np.abs(device_p - keras_p).max() <= 1e-4


def test_tf_keras_h5_model_with_keras_tokenizer_json_bundles_exactly(tmp_path, texts):
    """Done when: `bilite bundle --model` on a tf_keras .h5 file."""
    import tf_keras

    tok = tf_keras.preprocessing.text.Tokenizer(num_words=250, oov_token="<OOV>")
    tok.fit_on_texts(texts[:300])
    (tmp_path / "tokenizer.json").write_text(tok.to_json(), encoding="utf-8")
    model = build_user_model("tf_keras", "lstm", head="softmax", labels=3, length=20, vocab=250)
    path = save_user_model(model, tmp_path, "h5", "tf_keras")
    write(tmp_path / "labels.txt", ["a", "b", "c"])
    write(tmp_path / "samples.txt", texts[300:400])
    result = bundle_model(path, tmp_path / "tokenizer.json", tmp_path / "labels.txt", tmp_path / "b",
                          samples_path=tmp_path / "samples.txt", convert=ConvertConfig(quantization="float32"),
                          log=lambda *_: None)
    meta = result.metadata
    assert meta["source"] == {**meta["source"], "flavour": "tf_keras", "format": "h5"}
    assert meta["tokenizer"]["profile"] == "keras-tokenizer-v1" and meta["tokenizer"]["padding"] == "pre"
    forms = {c["form"]: c for c in meta["model"]["selection"]["candidates"]}
    assert set(forms) == {"while", "unrolled", "fused"} and all(c["ok"] for c in forms.values())
    bundle = load_bundle(result.archive)
    fresh = texts[360:400]
    ids = tf_keras.preprocessing.sequence.pad_sequences(tok.texts_to_sequences(fresh), maxlen=20)
    keras_p = model.predict(ids, verbose=0)
    device_p = np.array([[bundle.predict(t).scores[label] for label in "abc"] for t in fresh])
    assert np.abs(device_p - keras_p).max() <= 1e-4


def test_converter_crash_in_the_child_is_reported_and_the_parent_carries_on(tmp_path, monkeypatch):
    model = build_user_model("keras", "lstm", length=8)
    spec = read_spec(model, "keras")
    monkeypatch.setenv("BILITE_TEST_CRASH_CONVERTER", "while")
    seconds = {}
    results = convert_forms(spec, ["while", "unrolled"], "float32", "tflite-runtime-2.14", 8, seconds=seconds)
    assert "crashed (SIGSEGV)" in results["while"] and "your process is fine" in results["while"]
    assert isinstance(results["unrolled"], bytes) and results["unrolled"][4:8] == b"TFL3"
    # the conversion time is the child's own measurement (it was logged as 0.0 s before)
    assert list(seconds) == ["unrolled"] and 0 < seconds["unrolled"] < 600


SOURCES = [("keras", "keras"), ("keras", "h5"), ("tf_keras", "keras"), ("tf_keras", "h5"), ("tf_keras", "savedmodel")]


@pytest.mark.parametrize("flavour,fmt", SOURCES)
def test_a_reloaded_sequential_model_reads_as_its_functional_twin(tmp_path, flavour, fmt):
    """Bug: a Keras 3 Sequential reloaded from .keras was refused as "not a chain" (its layers'
    first inbound nodes are from the rebuild, not from the model's graph)."""
    kw = dict(cell="gru", layers=2, mask=True, head="sigmoid", length=10)
    path = save_user_model(build_user_model(flavour, sequential=True, **kw), tmp_path, fmt, flavour)
    loaded, loaded_flavour, _ = load_user_model(path)
    spec = read_spec(loaded, loaded_flavour)
    twin = read_spec(build_user_model(flavour, **kw), flavour)
    assert spec.layers == twin.layers and [layer["kind"] for layer in spec.layers][:2] == ["embedding", "rnn"]
    assert spec.layers[0]["mask_zero"] is True
    for got, want in zip(spec.weights, twin.weights, strict=True):
        assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))


def test_keras3_sequential_keras_file_bundles_exactly(tmp_path, texts):
    """The reported case: keras.Sequential([Input, Embedding, Bidirectional(LSTM), Dense]) saved as .keras."""
    model = build_user_model("keras", "lstm", head="sigmoid", length=16, sequential=True)
    path = save_user_model(model, tmp_path, "keras", "keras")
    # Words as bilite's rules make them (the model was "trained" with those rules): a vocabulary of
    # str.split() words would hold "free!" and "0800...", which the rules never produce.
    words = sorted({w for t in texts for w in split(t, TokenizerConfig())})
    write(tmp_path / "vocab.txt", ["<pad>", "<unk>"] + words[:298])
    write(tmp_path / "labels.txt", ["ham", "spam"])
    write(tmp_path / "samples.txt", texts[:200])
    result = bundle_model(path, tmp_path / "vocab.txt", tmp_path / "labels.txt", tmp_path / "b",
                          samples_path=tmp_path / "samples.txt",
                          convert=ConvertConfig(form="while", quantization="float32"), log=lambda *_: None)
    assert result.metadata["model"]["form"] == "while"
    bundle = load_bundle(result.archive)
    ids = bundle.tokenizer.encode_batch(texts[200:240])
    keras_p = model.predict(ids, verbose=0)[:, 0]
    device_p = np.array([bundle.predict(t).scores["spam"] for t in texts[200:240]])
    assert np.abs(device_p - keras_p).max() <= 1e-4


@pytest.mark.parametrize("flavour", ["keras", "tf_keras"])
def test_a_branching_model_is_refused_as_not_a_chain(flavour):
    k = __import__(flavour)
    inputs = k.Input(shape=(8,), dtype="int32")
    x = k.layers.Embedding(50, 4)(inputs)
    skip = k.layers.Add()([k.layers.Bidirectional(k.layers.LSTM(3, return_sequences=True))(x), k.layers.Dense(6)(x)])
    model = k.Model(inputs, k.layers.Dense(2, activation="softmax")(k.layers.GlobalAveragePooling1D()(skip)))
    with pytest.raises(UnsupportedLayerError, match="chain of layers .no branches, skips"):
        read_spec(model, flavour)


def _refused(tmp_path, model, fmt="keras", flavour="keras", vocab_size=300):
    path = save_user_model(model, tmp_path, fmt, flavour)
    write(tmp_path / "vocab.txt", ["<pad>", "<unk>"] + letter_words(vocab_size - 2))
    write(tmp_path / "labels.txt", ["a", "b", "c"])
    return CliRunner().invoke(main, ["bundle", "--model", str(path), "--vocab", str(tmp_path / "vocab.txt"),
                                     "--labels", str(tmp_path / "labels.txt"), "--out", str(tmp_path / "b")])


def test_stateful_rnn_is_refused_with_the_fix(tmp_path):
    import keras

    inputs = keras.Input(batch_shape=(1, 8), dtype="int32")
    x = keras.layers.Embedding(300, 4)(inputs)
    x = keras.layers.Bidirectional(keras.layers.LSTM(3, stateful=True))(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    with pytest.raises(StatefulModelError, match="stateful=False"):
        read_spec(model, "keras")
    result = _refused(tmp_path, model)
    assert result.exit_code == 1 and "stateful" in result.output and not (tmp_path / "b").exists()


def test_textvectorization_inside_the_model_is_refused_with_the_fix(tmp_path, texts):
    import keras

    tv = keras.layers.TextVectorization(max_tokens=100, output_sequence_length=8)
    tv.adapt(texts[:50])
    inputs = keras.Input(shape=(1,), dtype="string")
    x = keras.layers.Embedding(100, 4)(tv(inputs))
    x = keras.layers.Bidirectional(keras.layers.GRU(3))(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    with pytest.raises(StringOpsError, match="get_vocabulary"):
        read_spec(model, "keras")


def test_layer_without_builtin_conversion_is_refused(tmp_path):
    model = build_user_model("keras", "gru", length=8, extra=lambda L: L.LayerNormalization())
    with pytest.raises(UnsupportedLayerError, match="LayerNormalization.*Supported"):
        read_spec(model, "keras")
    assert _refused(tmp_path, model).exit_code == 1


def test_embedding_smaller_than_the_vocabulary_is_refused(tmp_path):
    model = build_user_model("keras", "lstm", length=8, vocab=100)
    result = _refused(tmp_path, model, vocab_size=300)
    assert result.exit_code == 1 and "Embedding has 100 rows but the vocabulary has 300" in result.output
    assert isinstance(result.exception, SystemExit)


def test_rules_that_do_not_reproduce_the_training_ids_are_refused(tmp_path, texts):
    model = build_user_model("keras", "lstm", length=8)
    path = save_user_model(model, tmp_path, "keras", "keras")
    vocab = ["<pad>", "<unk>", "free", "call"]
    write(tmp_path / "vocab.txt", vocab)
    write(tmp_path / "labels.txt", ["a", "b", "c"])
    write(tmp_path / "samples.jsonl", [json.dumps({"text": "FREE call", "ids": [3, 2]})])
    with pytest.raises(TokenizerMismatchError, match=r"expected ids \[3, 2\], the rules give \[2, 3\]"):
        bundle_model(path, tmp_path / "vocab.txt", tmp_path / "labels.txt", tmp_path / "b",
                     samples_path=tmp_path / "samples.jsonl", log=lambda *_: None)
    assert not (tmp_path / "b").exists()


def test_fused_form_is_refused_for_a_masked_model(tmp_path):
    model = build_user_model("keras", "lstm", length=8, mask=True)
    path = save_user_model(model, tmp_path, "keras", "keras")
    write(tmp_path / "vocab.txt", ["<pad>", "<unk>", "a"])
    write(tmp_path / "labels.txt", ["a", "b", "c"])
    with pytest.raises(ConfigError, match="ignores masks"):
        bundle_model(path, tmp_path / "vocab.txt", tmp_path / "labels.txt", tmp_path / "b",
                     convert=ConvertConfig(form="fused"), log=lambda *_: None)


def test_keras3_export_savedmodel_is_refused_with_the_fix(tmp_path):
    model = build_user_model("keras", "gru", length=8)
    model.export(str(tmp_path / "exported"), verbose=False)
    with pytest.raises(ModelLoadError, match=r"model.save\('model.keras'\)"):
        load_user_model(tmp_path / "exported")


def test_free_length_model_needs_max_len_and_contradictions_are_refused(tmp_path):
    import keras

    inputs = keras.Input(shape=(None,), dtype="int32")
    x = keras.layers.Bidirectional(keras.layers.GRU(3))(keras.layers.Embedding(50, 4)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    path = save_user_model(model, tmp_path, "keras", "keras")
    write(tmp_path / "vocab.txt", ["<pad>", "<unk>", "a"])
    write(tmp_path / "labels.txt", ["a", "b"])
    with pytest.raises(ConfigError, match="--max-len"):
        bundle_model(path, tmp_path / "vocab.txt", tmp_path / "labels.txt", tmp_path / "b", log=lambda *_: None)
    fixed = save_user_model(build_user_model("keras", "gru", length=8), tmp_path / "f", "keras", "keras")
    with pytest.raises(ConfigError, match="contradicts the model's input length 8"):
        bundle_model(fixed, tmp_path / "vocab.txt", tmp_path / "labels.txt", tmp_path / "b", max_len=10,
                     log=lambda *_: None)


def test_labels_must_match_the_head(tmp_path):
    model = build_user_model("keras", "gru", length=8, labels=4)
    path = save_user_model(model, tmp_path, "keras", "keras")
    write(tmp_path / "vocab.txt", ["<pad>", "<unk>", "a"])
    write(tmp_path / "labels.txt", ["a", "b", "c"])
    with pytest.raises(Exception, match="lists 3 labels but the model scores 4"):
        bundle_model(path, tmp_path / "vocab.txt", tmp_path / "labels.txt", tmp_path / "b", log=lambda *_: None)
    with pytest.raises(VocabularyError, match="unknown-token entry"):
        write(tmp_path / "vocab2.txt", ["<pad>", "a", "b"])
        bundle_model(path, tmp_path / "vocab2.txt", tmp_path / "labels.txt", tmp_path / "b", log=lambda *_: None)


def test_sigterm_during_conversion_kills_the_child_and_cleans_up(tmp_path):
    """Bug: SIGTERM left the bilite.spec_convert child running and its temporary folder behind."""
    import os
    import signal
    import subprocess
    import sys
    import time

    path = save_user_model(build_user_model("keras", "lstm", length=8), tmp_path, "keras", "keras")
    write(tmp_path / "vocab.txt", ["<pad>", "<unk>", "a"])
    write(tmp_path / "labels.txt", ["a", "b", "c"])
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "bilite.cli", "bundle", "--model", str(path), "--vocab",
                             str(tmp_path / "vocab.txt"), "--labels", str(tmp_path / "labels.txt"),
                             "--out", str(tmp_path / "b")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "TMPDIR": str(scratch)})
    for line in proc.stdout:
        if line.startswith("converting"):
            break
    children = []
    for _ in range(200):  # the child converter is up once its temporary folder exists
        children = [d for d in scratch.iterdir() if d.name.startswith("bilite-spec-convert-")]
        if children:
            break
        time.sleep(0.05)
    assert children, "the conversion child never started"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM and "Traceback" not in err, err[-800:]
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(scratch) not in ps and list(scratch.iterdir()) == []
    assert not (tmp_path / "b").exists() and not (tmp_path / "b.tar.gz").exists()
