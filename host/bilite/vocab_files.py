"""Read the vocabulary a user's model was trained with, and the tokenizer rules that go with it.

Three formats, recognised from the content:

* a Keras ``Tokenizer`` JSON (``tokenizer.to_json()``): carries its own rules (filters, split,
  lower, num_words, oov_token) -> profile ``keras-tokenizer-v1``; ids as in ``word_index``;
* a ``TextVectorization`` vocabulary (``layer.get_vocabulary()`` one per line, or a JSON list):
  starts with "" and "[UNK]" -> profile ``keras-textvectorization-v1``;
* a plain vocabulary, one token per line, line number = id, line 0 the padding entry: bilite's
  own rules (``bilite-words-v1``) unless told otherwise (``tflite-regex-v1``).

The result is a TokenizerConfig and the id-ordered token list bilite ships as vocab.txt, with the
profile's padding token at id 0. Whether the rules really reproduce the model's ids is checked on
the user's sample texts (:func:`check_sample_ids`), never assumed.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from bilite_device.profiles import (BILITE, KERAS_TOKENIZER, REGEX, TEXTVECTORIZATION,
                                    TEXTVECTORIZATION_PUNCTUATION)
from bilite_device.tokenizer import Tokenizer, TokenizerConfig

from .errors import TokenizerMismatchError, VocabularyError

RULES = {"bilite": BILITE, "tflite-regex": REGEX, "keras-tokenizer": KERAS_TOKENIZER,
         "textvectorization": TEXTVECTORIZATION}
STANDARDIZE = ("lower_and_strip_punctuation", "lower", "strip_punctuation", "none")
_PLAIN = dict(normalization="none", fold_digits=False)


def read_vocabulary(path, max_len: int, rules: str = "auto", standardize: str | None = None,
                    padding: str | None = None, truncation: str | None = None,
                    unk_token: str | None = None, lowercase: bool | None = None) -> tuple[TokenizerConfig, list[str]]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise VocabularyError(f"cannot read vocabulary {path}: {exc}") from None
    data = None
    if text.lstrip()[:1] in ("{", "["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None
    if isinstance(data, str):  # tokenizer.to_json() saved with json.dump: a JSON string of JSON
        data = json.loads(data)
    if isinstance(data, dict):
        config, vocab = _keras_tokenizer(data, path, max_len)
    else:
        entries = data if isinstance(data, list) else (text[:-1] if text.endswith("\n") else text).split("\n")
        if entries[:2] == ["", "[UNK]"]:
            config, vocab = _textvectorization(entries, max_len, standardize or "lower_and_strip_punctuation")
        else:
            config, vocab = _plain(entries, path, max_len, "bilite" if rules == "auto" else rules, unk_token)
    if rules != "auto" and RULES.get(rules) != config.profile:
        raise VocabularyError(f"--rules {rules} contradicts the vocabulary file {path}, which holds "
                              f"{config.profile} rules; drop --rules or pass another vocabulary")
    changes = {k: v for k, v in (("padding", padding), ("truncation", truncation)) if v is not None}
    if lowercase is not None and config.profile in (BILITE, KERAS_TOKENIZER):
        changes["lowercase"] = lowercase
    config = replace(config, **changes)
    Tokenizer(config, vocab)  # duplicates, empty tokens, missing unknown token: refused here
    return config, vocab


def _keras_tokenizer(data: dict, path: Path, max_len: int):
    if data.get("class_name") != "Tokenizer" or "config" not in data:
        raise VocabularyError(f"{path} is JSON but not a Keras Tokenizer (tokenizer.to_json()) or a "
                              "vocabulary list")
    cfg = data["config"]
    if cfg.get("char_level"):
        raise VocabularyError("the Keras Tokenizer is char_level; bilite reproduces word-level tokenizers")
    split = cfg.get("split", " ")
    if len(split) != 1:
        raise VocabularyError(f"the Keras Tokenizer splits on {split!r}; bilite reproduces a "
                              "one-character split (the default ' ')")
    index = cfg["word_index"]
    index = json.loads(index) if isinstance(index, str) else index
    by_id = sorted(index.items(), key=lambda kv: kv[1])
    if [i for _, i in by_id] != list(range(1, len(by_id) + 1)):
        raise VocabularyError(f"the Keras Tokenizer's word_index in {path} is not numbered 1..N")
    num_words = cfg.get("num_words")
    # texts_to_sequences treats words with index >= num_words as unknown: the same as a cut list.
    words = [w for w, i in by_id if not num_words or i < num_words]
    oov = cfg.get("oov_token") or ""
    config = TokenizerConfig(profile=KERAS_TOKENIZER, max_len=max_len, lowercase=bool(cfg.get("lower", True)),
                             separators=cfg.get("filters", "") + split, unk_token=oov,
                             padding="pre", truncation="pre",  # pad_sequences' defaults
                             **_PLAIN)
    return config, ["<pad>"] + words


def _textvectorization(entries: list[str], max_len: int, standardize: str):
    if standardize not in STANDARDIZE:
        raise VocabularyError(f"--standardize must be one of {STANDARDIZE}, got {standardize!r}")
    config = TokenizerConfig(profile=TEXTVECTORIZATION, max_len=max_len, unk_token="[UNK]",
                             lowercase=standardize.startswith("lower"),
                             strip=TEXTVECTORIZATION_PUNCTUATION if "strip" in standardize else "",
                             **_PLAIN)
    return config, ["<pad>"] + [str(t) for t in entries[1:]]


def _plain(entries: list[str], path: Path, max_len: int, rules: str, unk_token: str | None):
    if rules == "bilite":
        config = TokenizerConfig(max_len=max_len)
    elif rules == "tflite-regex":
        config = TokenizerConfig(profile=REGEX, max_len=max_len, lowercase=False, unk_token="<UNKNOWN>", **_PLAIN)
    else:
        raise VocabularyError(f"a plain vocabulary file goes with --rules bilite or tflite-regex, got "
                              f"{rules!r} (Keras Tokenizer and TextVectorization vocabularies carry their own)")
    vocab = [str(t) for t in entries]
    if not vocab:
        raise VocabularyError(f"vocabulary {path} is empty")
    unk = unk_token or config.unk_token
    if unk not in vocab:
        raise VocabularyError(f"vocabulary {path} has no unknown-token entry {unk!r}; name yours with "
                              "--unk-token")
    if config.profile == BILITE and vocab[1] != unk:
        raise VocabularyError(f"with bilite's rules the unknown token must be id 1; {path} has "
                              f"{vocab[1]!r} there and {unk!r} at id {vocab.index(unk)}")
    vocab[vocab.index(unk)] = config.unk_token
    vocab[0] = config.pad_token  # id 0 pads, whatever the user called it
    return config, vocab


def check_sample_ids(tokenizer: Tokenizer, samples: list[dict]) -> int:
    """Samples with ``ids`` (as the model was trained on; padded or not) must encode the same.
    Returns how many were checked; raises with the first mismatches listed."""
    bad, checked = [], 0
    for n, sample in enumerate(samples):
        if "ids" not in sample:
            continue
        checked += 1
        want = [int(i) for i in sample["ids"] if int(i) != 0]
        got = [int(i) for i in np.asarray(tokenizer.encode(sample["text"])).ravel() if i != 0]
        if want != got:
            bad.append(f"sample {n} {sample['text'][:40]!r}: expected ids {want[:8]}, the rules give "
                       f"{got[:8]} (tokens {tokenizer.split(sample['text'])[:6]})")
    if bad:
        raise TokenizerMismatchError(
            f"{len(bad)} of {checked} sample texts tokenize to other ids than the model was trained "
            f"with ({tokenizer.config.profile} rules): " + "; ".join(bad[:3]) + ". Fix the rules "
            "(--rules, --lowercase/--no-lowercase, --standardize, --padding/--truncation) or the vocabulary.")
    return checked
