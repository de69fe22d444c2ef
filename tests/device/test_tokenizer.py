import sys
import unicodedata

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bilite_device import InputError, SchemaError, Tokenizer, TokenizerConfig, build_vocab
from bilite_device._unicode_classes import GAP_RANGES, UNICODE_VERSION, WORD_RANGES
from bilite_device.tokenizer import iter_tokens, split

CFG = TokenizerConfig(max_len=8)
VOCAB = ["<pad>", "<unk>", "free", "prize", "!", "café", "don't", "abc", "0000", "£"]


@pytest.fixture
def tok():
    return Tokenizer(CFG, VOCAB)


@pytest.mark.parametrize("text, tokens", [
    ("Hello, World! don't", ["hello", ",", "world", "!", "don't"]),
    ("FREE prize!!", ["free", "prize", "!", "!"]),
    ("call 09061701461 now £1000", ["call", "00000000000", "now", "£", "0000"]),
    ("١٢ ５", ["00", "0"]),                    # Arabic-Indic and full-width digits fold too
    ("ＡＢＣ！", ["abc", "!"]),                        # full-width forms fold to ASCII (NFKC)
    ("a\x00b\u200fc\td", ["a", "b", "c", "d"]),       # controls and format chars separate
    ("\U0001F468\u200d\U0001F469\u200d\U0001F467", ["\U0001F468", "\U0001F469", "\U0001F467"]),
    ("नमस्ते दुनिया", ["नमस्ते", "दुनिया"]),                # combining vowel signs stay in the word
    ("مرحبا بالعالم", ["مرحبا", "بالعالم"]),            # right-to-left
    ("x_y", ["x", "_", "y"]),
    ("", []),
    ("   \n\t ", []),
    ("...!?", [".", ".", ".", "!", "?"]),
])
def test_split(text, tokens):
    assert split(text, CFG) == tokens


def test_nfc_and_nfd_spellings_get_the_same_ids(tok):
    nfc = unicodedata.normalize("NFC", "Café")
    nfd = unicodedata.normalize("NFD", "Café")
    assert nfc != nfd
    assert tok.encode(nfc).tolist() == tok.encode(nfd).tolist()
    assert tok.encode(nfc)[0] == VOCAB.index("café")


def test_offsets_point_into_the_original_text():
    text = "  Café\u0301 ＡＢＣ free "
    for token, start, end in iter_tokens(text, CFG):
        assert unicodedata.normalize("NFKC", text[start:end]).lower().replace(" ", "") == token


def test_encode_pads_and_truncates(tok):
    assert tok.encode("free prize").tolist() == [2, 3, 0, 0, 0, 0, 0, 0]
    pre = Tokenizer(TokenizerConfig(max_len=4, padding="pre", truncation="pre"), VOCAB)
    assert pre.encode("free prize").tolist() == [0, 0, 2, 3]
    assert pre.encode("x free prize ! abc zzz").tolist() == [3, 4, 7, 1]
    post = Tokenizer(TokenizerConfig(max_len=4), VOCAB)
    assert post.encode("x free prize ! abc zzz").tolist() == [1, 2, 3, 4]


def test_encode_is_int32_and_unknowns_are_one(tok):
    ids = tok.encode("zzz qqq")
    assert ids.dtype == np.int32 and ids.tolist()[:2] == [1, 1]


def test_one_megabyte_and_a_10000_character_word(tok):
    big = "free prize " * 100_000
    assert len(big) > 1_000_000
    assert tok.encode(big).tolist() == [2, 3] * 4
    assert tok.encode("a" * 10_000).tolist() == [1] + [0] * 7


def test_bytes_input(tok):
    assert tok.encode("café".encode("utf-8")).tolist() == tok.encode("café").tolist()
    with pytest.raises(InputError, match="not valid UTF-8"):
        tok.encode(b"\xff\xfe free")
    with pytest.raises(InputError, match="expected text"):
        tok.encode(42)


def test_build_vocab_is_deterministic_and_respects_cap_and_min_count():
    texts = ["b a a", "c b a", "d"]
    cfg = TokenizerConfig(max_vocab=4, min_count=1)
    assert build_vocab(texts, cfg) == ["<pad>", "<unk>", "a", "b"]
    assert build_vocab(texts, TokenizerConfig(min_count=2)) == ["<pad>", "<unk>", "a", "b"]
    assert build_vocab(texts, TokenizerConfig(min_count=1))[-2:] == ["c", "d"]  # ties: alphabetical


def test_config_rejects_contradictions():
    with pytest.raises(SchemaError, match="padding"):
        TokenizerConfig(padding="middle")
    with pytest.raises(SchemaError, match="max_len"):
        TokenizerConfig(max_len=0)
    with pytest.raises(SchemaError, match="profile"):
        TokenizerConfig(profile="something-else")


def test_digits_can_be_kept():
    assert split("call 0906 now", TokenizerConfig(fold_digits=False)) == ["call", "0906", "now"]


def test_config_round_trips_through_metadata_json():
    cfg = TokenizerConfig(max_len=5, padding="pre", min_count=3)
    assert TokenizerConfig.from_json({**cfg.to_json(), "a_future_field": 1}) == cfg
    partial = cfg.to_json()
    del partial["fold_digits"]
    with pytest.raises(SchemaError, match="lack fold_digits"):
        TokenizerConfig.from_json(partial)


@pytest.mark.skipif(unicodedata.unidata_version != UNICODE_VERSION,
                    reason=f"frozen ranges are Unicode {UNICODE_VERSION}; this Python has "
                    f"{unicodedata.unidata_version}, so regenerating would differ by design")
def test_frozen_unicode_ranges_match_unicodedata():
    def ranges(pred):
        out, start = [], None
        for cp in range(sys.maxunicode + 2):
            hit = cp <= sys.maxunicode and pred(unicodedata.category(chr(cp)))
            if hit and start is None:
                start = cp
            elif not hit and start is not None:
                out.append((start, cp - 1))
                start = None
        return tuple(out)

    assert ranges(lambda c: c[0] in "LNM") == WORD_RANGES
    assert ranges(lambda c: c[0] in "ZC") == GAP_RANGES


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.characters(codec=None), max_size=300))
def test_any_unicode_encodes_inside_the_vocabulary(text):
    tok = Tokenizer(TokenizerConfig(max_len=16), VOCAB)
    ids = tok.encode(text)
    assert ids.shape == (16,) and ids.dtype == np.int32
    assert ids.min() >= 0 and ids.max() < len(VOCAB)
    for token in split(text, tok.config):
        assert token and not any(ch.isspace() for ch in token)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=200))
def test_ascii_fast_path_splits_exactly_like_the_full_regex(text):
    import re

    from bilite_device.tokenizer import WORD_RANGES, GAP_RANGES, _token_pattern, token_regex

    full = re.compile(_token_pattern(WORD_RANGES, GAP_RANGES))
    assert [m.span() for m in token_regex(text).finditer(text)] == [m.span() for m in full.finditer(text)]


def test_memoized_rows_give_the_same_ids(tok):
    first = tok.encode("Free prize! free PRIZE, café").tolist()
    assert tok.encode("Free prize! free PRIZE, café").tolist() == first
    assert tok.encode("free prize").tolist()[:2] == [2, 3]
