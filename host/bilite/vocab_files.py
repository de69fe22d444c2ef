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
from bilite_device.tokenizer import Tokenizer, TokenizerConfig, check_vocab

from .errors import BiliteError, DataError, TokenizerMismatchError, VocabularyError
from .user_files import read_user_text

RULES = {"bilite": BILITE, "tflite-regex": REGEX, "keras-tokenizer": KERAS_TOKENIZER,
         "textvectorization": TEXTVECTORIZATION}
STANDARDIZE = ("lower_and_strip_punctuation", "lower", "strip_punctuation", "none")
_PLAIN = dict(normalization="none", fold_digits=False)


def read_vocabulary(path, max_len: int, rules: str = "auto", standardize: str | None = None,
                    padding: str | None = None, truncation: str | None = None,
                    unk_token: str | None = None, lowercase: bool | None = None,
                    text: str | None = None) -> tuple[TokenizerConfig, list[str]]:
    """``text``: the file's content when the caller has read it already (with read_user_text)."""
    path = Path(path)
    text = read_user_text(path, "vocabulary") if text is None else text
    data = _json_content(text, path)
    if isinstance(data, dict):
        config, vocab = _keras_tokenizer(data, path, max_len)
        place = "word_index id {}".format
    else:
        if isinstance(data, list):
            entries = data
            place = "entry {} of the JSON list".format
        else:
            entries = (text[:-1] if text.endswith("\n") else text).split("\n")
            place = lambda i: f"line {i + 1}"  # noqa: E731 (line number = id + 1)
        if entries[:2] == ["", "[UNK]"]:
            config, vocab = _textvectorization(entries, max_len, standardize or "lower_and_strip_punctuation")
        else:
            config, vocab = _plain(entries, path, max_len, "bilite" if rules == "auto" else rules, unk_token,
                                   place)
    if rules != "auto" and RULES.get(rules) != config.profile:
        raise VocabularyError(f"--rules {rules} contradicts the vocabulary file {path}, which holds "
                              f"{config.profile} rules; drop --rules or pass another vocabulary")
    changes = {k: v for k, v in (("padding", padding), ("truncation", truncation)) if v is not None}
    if lowercase is not None and config.profile in (BILITE, KERAS_TOKENIZER):
        changes["lowercase"] = lowercase
    config = replace(config, **changes)
    try:  # the device's own check, told where the entries are in the user's file
        check_vocab(vocab, config, source=f"vocabulary {path}", place=place,
                    fix="Each line is one id, so the file was edited or is not the one the model was "
                        "trained with: pass the vocabulary saved with the model.")
    except BiliteError as exc:
        raise VocabularyError(str(exc)) from None
    check_reachable(Tokenizer(config, vocab), path, place)
    return config, vocab


def _json_content(text: str, path: Path):
    """The parsed JSON of a JSON vocabulary, or None for a line-per-token file."""
    head = text.lstrip()[:1]
    if head not in ("{", "[", '"'):
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if head != "{":  # "[PAD]" or a quoted token can open a plain vocabulary
            return None
        raise VocabularyError(f"{path} is broken JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
                              "it looks like a truncated or hand-edited tokenizer.to_json(): save it again "
                              "with open(path, 'w').write(tokenizer.to_json())") from None
    if isinstance(data, str):  # tokenizer.to_json() saved with json.dump: a JSON string of JSON
        try:
            data = json.loads(data)
        except json.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            raise VocabularyError(f"{path} is a JSON string that does not hold a Keras Tokenizer's JSON; "
                                  "pass tokenizer.to_json(), a TextVectorization vocabulary or a plain "
                                  "vocabulary (one token per line)")
    if isinstance(data, list) and not all(isinstance(t, str) for t in data):
        bad = next(t for t in data if not isinstance(t, str))
        raise VocabularyError(f"{path} is a JSON list but holds {type(bad).__name__} {bad!r}, not only "
                              "strings; a JSON vocabulary is a list of tokens (layer.get_vocabulary())")
    if not isinstance(data, (dict, list)):
        raise VocabularyError(f"{path} is JSON {type(data).__name__}, not a vocabulary: pass "
                              "tokenizer.to_json(), a JSON list of tokens or one token per line")
    return data


def _keras_tokenizer(data: dict, path: Path, max_len: int):
    if data.get("class_name") != "Tokenizer" or not isinstance(data.get("config"), dict):
        raise VocabularyError(f"{path} is JSON but not a Keras Tokenizer (tokenizer.to_json(): a "
                              "\"class_name\": \"Tokenizer\" object with a \"config\" object) or a "
                              "vocabulary list")
    cfg = data["config"]

    def bad(field, want):  # Keras itself fails on such a value: the file was not written by it
        return VocabularyError(f"the Keras Tokenizer in {path} has {field} {cfg.get(field)!r}; Keras writes "
                               f"{want} there. Save the fitted tokenizer again with tokenizer.to_json()")

    if cfg.get("char_level"):
        raise VocabularyError("the Keras Tokenizer is char_level; bilite reproduces word-level tokenizers")
    split = cfg.get("split", " ")
    if not isinstance(split, str):
        raise bad("split", "a one-character string (default ' ')")
    if len(split) != 1:
        raise VocabularyError(f"the Keras Tokenizer splits on {split!r}; bilite reproduces a "
                              "one-character split (the default ' ')")
    filters = cfg.get("filters", "")
    if not isinstance(filters, str):
        raise bad("filters", "a string of characters")
    num_words = cfg.get("num_words")
    if num_words is not None and (not isinstance(num_words, int) or isinstance(num_words, bool)):
        raise bad("num_words", "an integer or null")
    oov = cfg.get("oov_token")
    if oov is not None and not isinstance(oov, str):
        raise bad("oov_token", "a string or null")
    if "word_index" not in cfg:
        raise VocabularyError(f"the Keras Tokenizer in {path} has no word_index: it was saved before "
                              "fit_on_texts or cut down; save the fitted tokenizer with tokenizer.to_json()")
    index = cfg["word_index"]
    if isinstance(index, str):
        try:
            index = json.loads(index)
        except json.JSONDecodeError as exc:
            raise VocabularyError(f"the Keras Tokenizer's word_index in {path} is broken JSON ({exc.msg}); "
                                  "save the fitted tokenizer again with tokenizer.to_json()") from None
    if not isinstance(index, dict) or not index:
        raise VocabularyError(f"the Keras Tokenizer's word_index in {path} is "
                              f"{'empty' if index == {} else type(index).__name__}: the tokenizer was not "
                              "fitted (fit_on_texts) before tokenizer.to_json()")
    wrong = [(w, i) for w, i in index.items() if not isinstance(i, int) or isinstance(i, bool)]
    if wrong:
        raise VocabularyError(f"the Keras Tokenizer's word_index in {path} maps {wrong[0][0]!r} to "
                              f"{wrong[0][1]!r} ({len(wrong)} such); ids are integers 1..N")
    by_id = sorted(index.items(), key=lambda kv: kv[1])
    if [i for _, i in by_id] != list(range(1, len(by_id) + 1)):
        raise VocabularyError(f"the Keras Tokenizer's word_index in {path} is not numbered 1..N")
    if oov and oov not in index:
        raise VocabularyError(f"the Keras Tokenizer in {path} names oov_token {oov!r} but its word_index "
                              "lacks it (Keras puts it at id 1); save the fitted tokenizer again")
    # texts_to_sequences treats words with index >= num_words as unknown: the same as a cut list.
    words = [w for w, i in by_id if not num_words or i < num_words]
    config = TokenizerConfig(profile=KERAS_TOKENIZER, max_len=max_len, lowercase=bool(cfg.get("lower", True)),
                             separators=filters + split, unk_token=oov or "",
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


def _plain(entries: list[str], path: Path, max_len: int, rules: str, unk_token: str | None, place):
    if rules == "bilite":
        config = TokenizerConfig(max_len=max_len)
    elif rules == "tflite-regex":
        config = TokenizerConfig(profile=REGEX, max_len=max_len, lowercase=False, unk_token="<UNKNOWN>", **_PLAIN)
    else:
        raise VocabularyError(f"a plain vocabulary file goes with --rules bilite or tflite-regex, got "
                              f"{rules!r} (Keras Tokenizer and TextVectorization vocabularies carry their own)")
    vocab = [str(t) for t in entries]
    if not vocab or vocab == [""]:
        raise VocabularyError(f"vocabulary {path} is empty")
    unk = unk_token or config.unk_token
    if unk not in vocab[1:]:
        raise VocabularyError(f"vocabulary {path} has no unknown-token entry {unk!r} after line 1 (line 1 "
                              "is the padding entry, id 0, whatever it says; unknown words need an entry "
                              "of their own): name yours with --unk-token, or pass the vocabulary saved "
                              "with the model")
    at = vocab.index(unk, 1)
    if config.profile == BILITE and at != 1:
        raise VocabularyError(f"with bilite's rules the unknown token must be id 1; {path} has "
                              f"{vocab[1]!r} there and {unk!r} at id {at} ({place(at)})")
    # The user's names for padding and unknown become the rules' own; the rules' own names must
    # not be taken by another entry, or two ids would share one token.
    for i, token in ((at, config.unk_token), (0, config.pad_token)):
        other = [k for k, t in enumerate(vocab) if t == token and k not in (0, at)]
        if other:
            what = "the padding entry" if i == 0 else f"the unknown-token entry {unk!r}"
            raise VocabularyError(
                f"vocabulary {path}: {place(i)} is {what}, which bilite names {token!r}, but "
                f"{place(other[0])} already holds {token!r}: two ids would share it. Name the "
                "unknown-token entry with --unk-token (the one the model was trained with), or pass "
                "the vocabulary saved with the model")
    vocab[at] = config.unk_token
    vocab[0] = config.pad_token  # id 0 pads, whatever the user called it
    return config, vocab


_REACH_FIX = {
    BILITE: "bilite's rules lowercase, fold digits to 0 and split punctuation off words: try --rules "
            "tflite-regex (no lowercasing or digit folding), --no-lowercase, or pass the Keras Tokenizer "
            "JSON or TextVectorization vocabulary the model was trained with",
    REGEX: "the RegexTokenizer rules keep only runs of [A-Za-z0-9_']: try --rules bilite, or pass the "
           "Keras Tokenizer JSON or TextVectorization vocabulary the model was trained with",
    KERAS_TOKENIZER: "check --lowercase/--no-lowercase against the Tokenizer's lower setting; a Tokenizer "
                     "fitted on pre-split word lists holds words its own text rules cannot produce",
    TEXTVECTORIZATION: "pass the TextVectorization's standardize setting with --standardize",
}


def check_reachable(tokenizer: Tokenizer, path: Path, place=lambda i: f"line {i + 1}") -> None:
    """Every entry but the rules' specials must be what the rules make of that entry alone: an
    entry they never produce is an embedding row the model was trained on but would never see
    (its words would all come out unknown), a sign the rules are not the model's."""
    special = {0, tokenizer.unk_id, tokenizer.start_id}  # start: prepended, never produced by a word
    bad = [(i, token) for i, token in enumerate(tokenizer.vocab)
           if i not in special and list(tokenizer.rows(token)) != [i]]
    if bad:
        shown = "; ".join(f"{place(i)} {t!r} (the rules make {tokenizer.split(t)})" for i, t in bad[:5])
        raise VocabularyError(
            f"{len(bad)} of {len(tokenizer.vocab)} entries in vocabulary {path} can never come out of the "
            f"{tokenizer.config.profile} rules, so the model would never see their ids: {shown}. These are "
            f"not the rules the model was trained with: {_REACH_FIX[tokenizer.config.profile]}.")


def check_sample_ids(tokenizer: Tokenizer, samples: list[dict]) -> int:
    """Samples with ``ids`` (as the model was trained on) must encode the same: a row of max_len
    ids is compared whole, padding included (where the padding goes matters to the model); a
    shorter one is taken as unpadded and compared with the unpadded encoding.
    Returns how many were checked; raises with the first mismatches listed."""
    bad, checked = [], 0
    max_len = tokenizer.config.max_len
    for n, sample in enumerate(samples):
        if "ids" not in sample:
            continue
        checked += 1
        want = [int(i) for i in sample["ids"]]
        row = [int(i) for i in np.asarray(tokenizer.encode(sample["text"])).ravel()]
        where = f"sample {n + 1} {sample['text'][:40]!r}"
        if len(want) > max_len:  # not a rules question: the sample is not what the model was fed
            raise DataError(f"{where} has {len(want)} ids but max_len is {max_len}: the model never sees "
                            f"more than {max_len}, and truncation ({tokenizer.config.truncation}) decides "
                            f"which end is kept; give the ids the model was fed (at most {max_len}, padded "
                            "or not)")
        got = row if len(want) == max_len else [i for i in row if i != 0]
        if want != got:
            other = "pre" if tokenizer.config.padding == "post" else "post"
            hint = (f"; the same ids padded at the other end: try --padding {other}"
                    if len(want) == max_len and [i for i in want if i] == [i for i in row if i] else "")
            bad.append(f"{where}: expected ids {_short(want)}, the rules give {_short(got)} "
                       f"(padding {tokenizer.config.padding}; tokens {tokenizer.split(sample['text'])[:6]}{hint})")
    if bad:
        raise TokenizerMismatchError(
            f"{len(bad)} of {checked} sample texts tokenize to other ids than the model was trained "
            f"with ({tokenizer.config.profile} rules): " + "; ".join(bad[:3]) + ". Fix the rules "
            "(--rules, --lowercase/--no-lowercase, --standardize, --padding/--truncation) or the vocabulary.")
    return checked


def _short(ids: list[int]) -> str:
    """The ids, with a long run of leading padding shown as a count (the differing part stays visible)."""
    lead = next((k for k, i in enumerate(ids) if i != 0), len(ids))
    if lead > 3:
        return f"[0 x{lead}, " + ", ".join(map(str, ids[lead:lead + 8])) + ("...]" if len(ids) > lead + 8 else "]")
    return str(ids[:12])[:-1] + (", ...]" if len(ids) > 12 else "]")
