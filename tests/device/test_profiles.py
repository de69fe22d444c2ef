"""Tokenizer profiles other than bilite's own: pinned against what the original tokenizers give
(the host suite's test_profiles.py compares them with the real Keras layers on real texts)."""

from __future__ import annotations

import pytest

from bilite_device.errors import BundleError, SchemaError
from bilite_device.profiles import KERAS_TOKENIZER_FILTERS, TEXTVECTORIZATION_PUNCTUATION
from bilite_device.tokenizer import Tokenizer, TokenizerConfig, build_vocab, split

PLAIN = dict(normalization="none", fold_digits=False)
REGEX = TokenizerConfig(profile="tflite-regex-v1", lowercase=False, unk_token="<UNKNOWN>", max_len=6, **PLAIN)
KERAS = TokenizerConfig(profile="keras-tokenizer-v1", separators=KERAS_TOKENIZER_FILTERS + " ",
                        unk_token="<OOV>", max_len=6, **PLAIN)
TV = TokenizerConfig(profile="keras-textvectorization-v1", strip=TEXTVECTORIZATION_PUNCTUATION,
                     unk_token="[UNK]", max_len=6, **PLAIN)


def test_regex_profile_splits_like_re2_ascii_word_class():
    assert split("Café don't STOP_now!! x2", REGEX) == ["Caf", "don't", "STOP_now", "x2"]


def test_regex_profile_prepends_start_when_the_vocabulary_has_it():
    with_start = Tokenizer(REGEX, ["<PAD>", "<START>", "<UNKNOWN>", "hi"])
    assert with_start.encode("hi there").tolist() == [1, 3, 2, 0, 0, 0]
    without = Tokenizer(REGEX, ["<PAD>", "<UNKNOWN>", "hi"])
    assert without.encode("hi there").tolist() == [2, 1, 0, 0, 0, 0]


def test_keras_tokenizer_profile_splits_on_filters_and_space_only():
    # "\r" is neither in the default filters nor the split character: Keras keeps it in the word.
    assert split("Hello, WORLD! x...y a\rb İ", KERAS) == ["hello", "world", "x", "y", "a\rb", "i\u0307"]


def test_keras_tokenizer_without_oov_token_drops_unknown_words():
    config = TokenizerConfig(profile="keras-tokenizer-v1", separators=" ", unk_token="", max_len=4, **PLAIN)
    tok = Tokenizer(config, ["<pad>", "the", "cat"])
    assert tok.encode("the dog saw the cat").tolist() == [1, 1, 2, 0]


def test_textvectorization_profile_lowercases_ascii_only_and_strips_punctuation():
    # Measured with keras.layers.TextVectorization: "ÉCOLE" -> "École", "don't" -> "dont",
    # a no-break space does not split, "..." vanishes.
    assert split("ÉCOLE Don't a\u00a0b ... x.y", TV) == ["École", "dont", "a\u00a0b", "xy"]


def test_build_vocab_puts_each_profiles_specials_first():
    assert build_vocab(["b a b"], REGEX)[:2] == ["<PAD>", "<UNKNOWN>"]
    assert build_vocab(["b a b"], TV) == ["<pad>", "[UNK]", "b", "a"]


def test_profile_contradictions_are_refused():
    with pytest.raises(SchemaError, match="requires lowercase=False"):
        TokenizerConfig(profile="tflite-regex-v1", unk_token="<UNKNOWN>", **PLAIN)
    with pytest.raises(SchemaError, match="needs separators"):
        TokenizerConfig(profile="keras-tokenizer-v1", unk_token="", **PLAIN)
    with pytest.raises(SchemaError, match="unknown to this bilite-device"):
        TokenizerConfig(profile="sentencepiece-v9")


def test_vocabulary_must_hold_the_profiles_unknown_token():
    with pytest.raises(BundleError, match="unknown token '<UNKNOWN>'"):
        Tokenizer(REGEX, ["<PAD>", "<unk>", "hi"])


def test_old_bilite_metadata_without_the_new_fields_still_loads():
    data = TokenizerConfig().to_json()
    for name in ("unk_token", "separators", "strip"):
        data.pop(name)
    assert TokenizerConfig.from_json(data) == TokenizerConfig()


def test_other_profiles_must_record_every_rule():
    data = TV.to_json()
    data.pop("strip")
    with pytest.raises(SchemaError, match="lack strip"):
        TokenizerConfig.from_json(data)
    assert TokenizerConfig.from_json(TV.to_json()) == TV
