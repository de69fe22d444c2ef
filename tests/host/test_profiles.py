"""Each foreign tokenizer profile gives exactly the ids of the tokenizer it reproduces, on real
texts (SMS messages, plus Unicode and whitespace oddities)."""

from __future__ import annotations

import numpy as np

from bilite_device.profiles import KERAS_TOKENIZER_FILTERS, TEXTVECTORIZATION_PUNCTUATION
from bilite_device.tokenizer import Tokenizer, TokenizerConfig

ODD = ["Café ÉCOLE İstanbul ǅemal", "a\u00a0b c\u2003d e\u3000f g\x1ch i\x85j", "x...y ...  z",
       "tab\tnew\nline\rcr\x0bvt\x0cff", "", "   ", "don't DON'T l'été 2nd £5 ü\u0308"]
PLAIN = dict(normalization="none", fold_digits=False)


def texts(sms, n=600):
    return ODD + sms.texts[:n]


def test_textvectorization_profile_matches_the_keras_layer(sms):
    import keras

    sample = texts(sms)
    layer = keras.layers.TextVectorization(max_tokens=300, output_sequence_length=40)
    layer.adapt(sample[: len(sample) // 2])
    vocab = ["<pad>"] + [str(t) for t in layer.get_vocabulary()[1:]]
    tok = Tokenizer(TokenizerConfig(profile="keras-textvectorization-v1", max_len=40, unk_token="[UNK]",
                                    strip=TEXTVECTORIZATION_PUNCTUATION, **PLAIN), vocab)
    expected = np.asarray(layer(sample))
    got = tok.encode_batch(sample)
    assert (got == expected).all(), [t for t, a, b in zip(sample, got, expected) if (a != b).any()][:3]
    assert (expected == 1).any() and (expected > 1).any()  # unknown and known words both occur


def test_keras_tokenizer_profile_matches_tf_keras_tokenizer(sms):
    import tf_keras

    sample = texts(sms)
    for oov in ("<OOV>", None):
        keras_tok = tf_keras.preprocessing.text.Tokenizer(num_words=400, oov_token=oov)
        keras_tok.fit_on_texts(sample[: len(sample) // 2])
        by_id = sorted(keras_tok.word_index.items(), key=lambda kv: kv[1])
        vocab = ["<pad>"] + [w for w, i in by_id if i < 400]
        config = TokenizerConfig(profile="keras-tokenizer-v1", max_len=30, unk_token=oov or "",
                                 separators=KERAS_TOKENIZER_FILTERS + " ", padding="pre",
                                 truncation="pre", **PLAIN)
        expected = tf_keras.preprocessing.sequence.pad_sequences(
            keras_tok.texts_to_sequences(sample), maxlen=30)
        got = Tokenizer(config, vocab).encode_batch(sample)
        assert (got == expected).all(), (oov, [t for t, a, b in zip(sample, got, expected) if (a != b).any()][:3])
