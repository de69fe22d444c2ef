"""`bilite bundle --model`: the user's vocabulary, labels and samples files, read exactly or
refused with a typed error naming the file, the line and the fix (never a traceback or a hang)."""

from __future__ import annotations

import json
import os
import threading
import zipfile

import pytest

from bilite.byo import bundle_model
from bilite.user_files import parse_labels, read_samples
from bilite.errors import (DataError, ModelLoadError, TokenizerMismatchError, UnsupportedLayerError,
                           VocabularyError)
from bilite.keras_spec import read_spec
from bilite.model_files import load_user_model
from bilite.vocab_files import check_sample_ids, read_vocabulary
from bilite_device.tokenizer import Tokenizer


def write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def letters(n):
    return [f"w{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(n)]


def within(seconds, fn):
    """fn's exception, or a failure if it blocks (a FIFO read would hang the test forever)."""
    box = {}

    def run():
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["exc"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"blocked for {seconds} s"
    return box.get("exc")


# 1. entries the rules can never produce --------------------------------------------------------

def test_plain_vocabulary_entries_the_bilite_rules_never_produce_are_refused(tmp_path):
    """Bug: "iPhone", "mp3", "2020" were accepted although bilite's rules lowercase and fold
    digits, so they always encoded to <unk>: a silently wrong bundle."""
    vocab = write(tmp_path / "v.txt", ["<pad>", "<unk>", "hello", "mp3", "2020", "iPhone", "don't"])
    with pytest.raises(VocabularyError) as info:
        read_vocabulary(vocab, 8)
    message = str(info.value)
    assert "3 of 7 entries" in message and str(vocab) in message
    assert "line 4 'mp3' (the rules make ['mp0'])" in message and "line 6 'iPhone'" in message
    assert "--rules tflite-regex" in message and "--no-lowercase" in message
    # the rules that do produce them are accepted
    config, _ = read_vocabulary(vocab, 8, rules="tflite-regex", unk_token="<unk>")
    assert config.profile == "tflite-regex-v1"
    write(tmp_path / "upper.txt", ["<pad>", "<unk>", "iPhone", "hello"])
    read_vocabulary(tmp_path / "upper.txt", 8, lowercase=False)
    with pytest.raises(VocabularyError, match="1 of 4 entries.*line 3 'iPhone'"):
        read_vocabulary(tmp_path / "upper.txt", 8)


def test_real_tokenizer_vocabularies_pass_and_specials_are_not_checked(tmp_path, sms):
    """Real Keras Tokenizer JSON (with its <OOV> entry, which its own rules split up) and
    TextVectorization vocabularies are reproducible word for word; so is a RegexTokenizer
    vocabulary, whose <START> entry is prepended by construction, never produced by a word."""
    import keras
    import tf_keras

    texts = [t.replace("\n", " ") for t in sms.texts[:300]]
    tok = tf_keras.preprocessing.text.Tokenizer(num_words=250, oov_token="<OOV>")
    tok.fit_on_texts(texts)
    (tmp_path / "tok.json").write_text(tok.to_json(), encoding="utf-8")
    config, vocab = read_vocabulary(tmp_path / "tok.json", 20)
    assert config.profile == "keras-tokenizer-v1" and len(vocab) == 250
    # Bug: tokenizer.to_json() saved with json.dump (a JSON string of JSON) was not recognised.
    with open(tmp_path / "double.json", "w", encoding="utf-8") as f:
        json.dump(tok.to_json(), f)
    assert read_vocabulary(tmp_path / "double.json", 20) == (config, vocab)
    tv = keras.layers.TextVectorization(max_tokens=300, output_sequence_length=16)
    tv.adapt(texts)
    write(tmp_path / "tv.txt", tv.get_vocabulary())
    assert read_vocabulary(tmp_path / "tv.txt", 16)[0].profile == "keras-textvectorization-v1"
    write(tmp_path / "regex.txt", ["<PAD>", "<START>", "<UNKNOWN>", "Hello", "mp3", "don't"])
    assert read_vocabulary(tmp_path / "regex.txt", 8, rules="tflite-regex")[1][1] == "<START>"


# 2. sample ids: padding position -------------------------------------------------------------

@pytest.fixture()
def tokenizer(tmp_path):
    config, vocab = read_vocabulary(write(tmp_path / "v.txt", ["<pad>", "<unk>"] + letters(20)), 6)
    return Tokenizer(config, vocab)  # post padding, bilite's rules


def test_full_length_sample_ids_are_compared_with_their_padding(tokenizer):
    """Bug: a fully pre-padded row [0, 0, 0, 4, 5, 6] "reproduced" under post padding."""
    text = "wac wad wae"
    assert check_sample_ids(tokenizer, [{"text": text, "ids": [4, 5, 6, 0, 0, 0]},
                                        {"text": text, "ids": [4, 5, 6]}]) == 2
    with pytest.raises(TokenizerMismatchError, match=r"expected ids \[0, 0, 0, 4, 5, 6\], the rules give "
                                                     r"\[4, 5, 6, 0, 0, 0\] \(padding post.*try --padding pre"):
        check_sample_ids(tokenizer, [{"text": text, "ids": [0, 0, 0, 4, 5, 6]}])


def test_sample_ids_longer_than_max_len_say_so(tokenizer):
    text = " ".join(letters(8))
    with pytest.raises(DataError, match="sample 1 .* has 8 ids but max_len is 6.*truncation .post. decides"):
        check_sample_ids(tokenizer, [{"text": text, "ids": list(range(2, 10))}])


# 3. typed errors instead of tracebacks -------------------------------------------------------

TOKENIZER = {"num_words": None, "filters": "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n", "lower": True,
             "split": " ", "char_level": False, "oov_token": "<OOV>",
             "word_index": json.dumps({"<OOV>": 1, "free": 2, "call": 3})}


def keras_tokenizer(**changes):
    config = {k: v for k, v in {**TOKENIZER, **changes}.items() if v != "DROP"}
    return json.dumps({"class_name": "Tokenizer", "config": config})


@pytest.mark.parametrize("content,match", [
    ("<unk>\n", "no unknown-token entry '<unk>' after line 1"),
    (keras_tokenizer(word_index="DROP"), "has no word_index"),
    (json.dumps({"class_name": "Tokenizer", "config": "a string"}), "not a Keras Tokenizer"),
    (keras_tokenizer(split=None), "has split None"),
    (keras_tokenizer(filters=None), "has filters None"),
    (keras_tokenizer(word_index=json.dumps({"<OOV>": 1, "free": "2"})), "maps 'free' to '2'"),
    (keras_tokenizer(num_words="100"), "has num_words '100'"),
    (keras_tokenizer(word_index="{not json"), "word_index .* is broken JSON"),
    (keras_tokenizer()[:60], "is broken JSON .* truncated"),
    (json.dumps("just a sentence"), "JSON string that does not hold a Keras Tokenizer"),
    ("[1, 2, 3]", "holds int 1, not only strings"),
])
def test_broken_vocabulary_files_are_typed_errors(tmp_path, content, match):
    (tmp_path / "v.json").write_text(content, encoding="utf-8")
    with pytest.raises(VocabularyError, match=match):
        read_vocabulary(tmp_path / "v.json", 8)


def test_a_working_keras_tokenizer_json_reads(tmp_path):
    (tmp_path / "v.json").write_text(keras_tokenizer(), encoding="utf-8")
    assert read_vocabulary(tmp_path / "v.json", 8)[1] == ["<pad>", "<OOV>", "free", "call"]


@pytest.mark.parametrize("lines,match", [
    (["<pad>", "<unk>", "wa", "wb", "wa"], r"line 5 'wa' repeats line 3"),
    (["<pad>", "<unk>", "wa", "", "wb"], r"line 4 ''"),
    (["<pad>", "<unk>", "wa", "two words"], r"line 4 'two words'"),
    (["<pad>", "[OOV]", "wa", "<unk>"], r"line 2 is the unknown-token entry '\[OOV\]'.*line 4 already holds '<unk>'"),
])
def test_bad_vocabulary_entries_name_the_file_and_line(tmp_path, lines, match):
    """Bug: the message named no file or line and advised "Rebuild the bundle with bilite build",
    which is about bundles, not the user's own vocabulary file."""
    path = write(tmp_path / "v.txt", lines)
    with pytest.raises(VocabularyError, match=match) as info:
        read_vocabulary(path, 8, unk_token="[OOV]" if "[OOV]" in lines else None)
    assert str(path) in str(info.value) and "Rebuild" not in str(info.value)


def test_binary_files_are_typed_errors(tmp_path):
    (tmp_path / "bin").write_bytes(b"a\n\xff\xfe\x00b\n")
    with pytest.raises(VocabularyError, match="not UTF-8 text .byte 0xff on line 2"):
        read_vocabulary(tmp_path / "bin", 8)
    with pytest.raises(DataError, match="labels file .* not UTF-8"):
        parse_labels(tmp_path / "bin")
    with pytest.raises(DataError, match="samples file .* not UTF-8"):
        read_samples(tmp_path / "bin")


@pytest.mark.parametrize("ids", ['["a", "b"]', "5", "null", "[[2, 3]]", "[NaN]", "[1e400]", "[2.5]", "[-1]"])
def test_sample_ids_that_are_not_token_ids_are_typed_errors(tmp_path, ids):
    (tmp_path / "s.jsonl").write_text('{"text": "wa"}\n{"text": "wa wb", "ids": %s}\n' % ids, encoding="utf-8")
    with pytest.raises(DataError, match=r"s.jsonl:2: \"ids\" must be a flat list of token ids"):
        read_samples(tmp_path / "s.jsonl")


def test_keras3_sequential_without_an_input_is_refused_with_the_fix(tmp_path):
    import keras

    model = keras.Sequential([keras.layers.Embedding(50, 4), keras.layers.Bidirectional(keras.layers.LSTM(3)),
                              keras.layers.Dense(2, activation="softmax")])
    model.save(tmp_path / "m.keras")
    loaded, flavour, _ = load_user_model(tmp_path / "m.keras")
    with pytest.raises(UnsupportedLayerError, match=r'keras.Input\(shape=\(max_len,\), dtype="int32"\)'):
        read_spec(loaded, flavour)


def test_damaged_model_files_are_typed_errors(tmp_path):
    with zipfile.ZipFile(tmp_path / "m.keras", "w") as archive:
        archive.writestr("metadata.json", "[1, 2]")
    with pytest.raises(ModelLoadError, match="metadata.json is a JSON list"):
        load_user_model(tmp_path / "m.keras")
    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / "saved_model.pb").write_bytes(b"x\n")  # the reported files: "list index out of range"
    (saved / "keras_metadata.pb").write_bytes(b"x\n")  # the reported files: "list index out of range"
    with pytest.raises(ModelLoadError, match="not a readable SavedModel"):
        load_user_model(saved)


# 4-6. labels, sample labels, non-regular files: refused before the model is even loaded ---------

@pytest.mark.parametrize("lines,match", [
    (["a", "b", "a"], r"labels.txt:3: label 'a' repeats line 1"),
    (["a", "", "b", "c"], r"labels.txt:2: empty label"),
    (["a\tx", "b", "c"], r"labels.txt:1: label 'a\\tx' holds a tab"),
])
def test_bad_labels_are_refused_up_front_by_line(tmp_path, lines, match):
    """Bug: duplicate and tab-holding labels went through to conversion; a blank line vanished."""
    write(tmp_path / "labels.txt", lines)
    write(tmp_path / "v.txt", ["<pad>", "<unk>", "wa"])
    with pytest.raises(DataError, match=match):  # the model does not exist: labels come first
        bundle_model(tmp_path / "missing.keras", tmp_path / "v.txt", tmp_path / "labels.txt", tmp_path / "b",
                     log=lambda *_: None)


def test_sample_labels_missing_from_the_labels_file_are_refused(tmp_path):
    """Bug: samples labelled "zzz" were silently left out of the accuracy."""
    write(tmp_path / "labels.txt", ["a", "b"])
    write(tmp_path / "v.txt", ["<pad>", "<unk>", "wa"])
    write(tmp_path / "s.jsonl", [json.dumps({"text": "wa", "label": x}) for x in ("a", "zzz", "yyy")])
    with pytest.raises(DataError, match=r"labels.txt does not list: \['yyy', 'zzz'\]"):
        bundle_model(tmp_path / "missing.keras", tmp_path / "v.txt", tmp_path / "labels.txt", tmp_path / "b",
                     samples_path=tmp_path / "s.jsonl", log=lambda *_: None)
    write(tmp_path / "s.jsonl", [json.dumps({"text": "wa", "label": ["a"]})])
    with pytest.raises(DataError, match=r"s.jsonl:1: \"label\" is list"):
        read_samples(tmp_path / "s.jsonl")


def test_fifos_are_refused_not_read(tmp_path):
    """Bug: a FIFO as --model, --vocab, --labels or --samples blocked the host forever."""
    fifo = tmp_path / "fifo.keras"
    os.mkfifo(fifo)
    write(tmp_path / "labels.txt", ["a", "b"])
    write(tmp_path / "v.txt", ["<pad>", "<unk>", "wa"])
    assert isinstance(within(10, lambda: load_user_model(fifo)), ModelLoadError)
    assert isinstance(within(10, lambda: read_vocabulary(fifo, 8)), VocabularyError)
    assert isinstance(within(10, lambda: parse_labels(fifo)), DataError)
    assert isinstance(within(10, lambda: read_samples(fifo)), DataError)
    exc = within(10, lambda: bundle_model(tmp_path / "missing.keras", fifo, tmp_path / "labels.txt",
                                          tmp_path / "b", log=lambda *_: None))
    assert isinstance(exc, VocabularyError) and "not a regular file" in str(exc)


def test_a_bad_out_is_refused_before_any_input_is_read(tmp_path):
    """Bug: an --out below a file failed with a traceback after conversion and the smoke tests."""
    from bilite.errors import DestinationError

    (tmp_path / "afile").write_text("x")
    with pytest.raises(DestinationError, match="afile is a file, not a folder"):
        bundle_model(tmp_path / "missing.keras", tmp_path / "missing-vocab.txt", tmp_path / "missing-labels.txt",
                     tmp_path / "afile" / "b")
