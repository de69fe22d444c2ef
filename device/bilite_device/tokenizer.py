"""The one tokenizer: the host trains with it, the device runs it, so ids can never differ.

Rules (all recorded in the bundle's metadata under ``tokenizer``):

* split the *original* text into words and symbols (so every token keeps its character offsets):
  a word is a run of letters, digits and combining marks, with inner apostrophes ("don't");
  every other visible character (punctuation, symbols, emoji) is a token of its own; whitespace
  and invisible characters (controls, format characters such as the emoji zero-width joiner)
  separate tokens and are dropped;
* normalize each token with Unicode NFKC (so NFC and NFD spellings, and full-width forms, give
  the same ids) and lowercase it;
* fold every decimal digit to "0" (phone numbers, prices and codes are rare one by one, but their
  shapes, such as an 11-digit number, are frequent and telling);
* map tokens to ids through the vocabulary: ``<pad>`` = 0, ``<unk>`` = 1;
* truncate to ``max_len`` ids, dropping tokens at the end ("post") or the start ("pre");
* pad with 0 up to ``max_len`` at the end ("post") or the start ("pre").
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections import Counter, deque
from dataclasses import asdict, dataclass, fields
from typing import Iterable, Iterator

import numpy as np

from ._unicode_classes import GAP_RANGES, UNICODE_VERSION, WORD_RANGES
from .errors import BundleError, InputError, SchemaError
from .features import KNOWN_FEATURES, SUFFIX_FEATURES, FeatureTable
from .profiles import BILITE, PROFILES, REGEX, profile_problems
from .profiles import normalize as profile_normalize
from .profiles import spans as profile_spans

PAD, UNK = "<pad>", "<unk>"
PROFILE = BILITE
START = "<START>"  # tflite-regex-v1: prepended when the vocabulary has it (as the Task Library does)


def char_class(ranges) -> str:
    """The body of a regex character class matching the given (first, last) code point ranges."""
    return "".join(
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
        for a, b in ranges
    )


def _token_pattern(word_ranges, gap_ranges) -> str:
    word, gap = char_class(word_ranges), char_class(gap_ranges)
    return f"[{word}]+(?:'[{word}]+)*|[^{word}{gap}\\s]"


def _clip_ascii(ranges):
    return tuple((a, min(b, 127)) for a, b in ranges if a <= 127)


# Letters, numbers and marks make words; separators and controls/format characters separate
# tokens (see _unicode_classes.py for why the ranges are frozen rather than computed). Most text
# is ASCII: for it, the same ranges clipped to ASCII give the same tokens from a regex that scans
# ~10x faster, and the full regex (781 ranges, ~35 ms to compile) is built only when first needed.
_ASCII_TOKEN_RE = re.compile(_token_pattern(_clip_ascii(WORD_RANGES), _clip_ascii(GAP_RANGES)))
_FULL_TOKEN_RE: re.Pattern | None = None
_DIGIT_RE = re.compile(r"\d")  # Unicode decimal digits, after NFKC


def token_regex(text: str) -> re.Pattern:
    global _FULL_TOKEN_RE
    if text.isascii():
        return _ASCII_TOKEN_RE
    if _FULL_TOKEN_RE is None:
        _FULL_TOKEN_RE = re.compile(_token_pattern(WORD_RANGES, GAP_RANGES))
    return _FULL_TOKEN_RE


@dataclass(frozen=True)
class TokenizerConfig:
    """Every rule that turns text into ids. Frozen: a bundle's rules never change after training."""

    max_len: int = 64
    lowercase: bool = True
    fold_digits: bool = True
    normalization: str = "NFKC"
    padding: str = "post"
    truncation: str = "post"
    max_vocab: int = 20000  # cap, counting <pad> and <unk>
    min_count: int = 1
    clitics: str = "none"  # "english": split n't 's 're 've 'll 'd 'm off words (as UD does)
    features: tuple[str, ...] = ("word",)  # columns per token; see features.py
    profile: str = PROFILE  # see profiles.py: bilite's rules, or those of another tokenizer
    unk_token: str = UNK  # unknown tokens map to this entry; "" drops them (Keras Tokenizer, no oov)
    separators: str = ""  # keras-tokenizer-v1: the characters that split tokens
    strip: str = ""  # keras-textvectorization-v1: characters deleted from tokens

    def __post_init__(self):
        problems = []
        if not isinstance(self.max_len, int) or self.max_len < 1:
            problems.append(f"max_len must be a positive integer, got {self.max_len!r}")
        if self.padding not in ("post", "pre"):
            problems.append(f"padding must be 'post' or 'pre', got {self.padding!r}")
        if self.truncation not in ("post", "pre"):
            problems.append(f"truncation must be 'post' or 'pre', got {self.truncation!r}")
        if self.normalization not in ("NFKC", "NFC", "none"):
            problems.append(f"normalization must be NFKC, NFC or none, got {self.normalization!r}")
        if not isinstance(self.max_vocab, int) or self.max_vocab < 3:
            problems.append(f"max_vocab must be at least 3 (<pad>, <unk>, one word), got {self.max_vocab!r}")
        if not isinstance(self.min_count, int) or self.min_count < 1:
            problems.append(f"min_count must be a positive integer, got {self.min_count!r}")
        if self.clitics not in ("none", "english"):
            problems.append(f"clitics must be 'none' or 'english', got {self.clitics!r}")
        object.__setattr__(self, "features", tuple(self.features))
        if not self.features or self.features[0] != "word" or not set(self.features) <= set(KNOWN_FEATURES) \
                or len(set(self.features)) != len(self.features):
            problems.append(f"features must start with 'word' and use each of {KNOWN_FEATURES} at "
                            f"most once, got {list(self.features)!r}")
        problems += profile_problems(self)
        if problems:
            raise SchemaError("invalid tokenizer rules: " + "; ".join(problems))

    @property
    def pad_token(self) -> str:
        return PROFILES[self.profile].pad_token

    def to_json(self) -> dict:
        data = {**asdict(self), "features": list(self.features), "pad_token": self.pad_token,
                "pad_id": 0, "split": PROFILES[self.profile].description}
        if self.profile == PROFILE:
            data.update(unk_id=1, unicode_classes=UNICODE_VERSION)
        return data

    @classmethod
    def from_json(cls, data: dict) -> "TokenizerConfig":
        # Every rule must be recorded: a default filled in for a missing rule could tokenize
        # differently from training without any error.
        names = [f.name for f in fields(cls)]
        if data.get("profile") == PROFILE:  # bundles from before these rules existed: bilite's own
            data = {"unk_token": UNK, "separators": "", "strip": "", **data}
        missing = [name for name in names if name not in data]
        if missing:
            raise SchemaError(
                f"tokenizer rules in metadata.json lack {', '.join(missing)}; the bundle is "
                "incomplete or from an incompatible bilite. Rebuild it with `bilite build`."
            )
        return cls(**{name: data[name] for name in names})


def as_text(text) -> str:
    """Accept ``str`` or UTF-8 ``bytes``; anything else is a typed error, never a crash."""
    if isinstance(text, str):
        return text
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            return bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"input bytes are not valid UTF-8 ({exc.reason} at byte {exc.start}); "
                "decode them to text first (for example bytes.decode('utf-8', 'replace'))"
            ) from None
    raise InputError(f"expected text (str or UTF-8 bytes), got {type(text).__name__}")


def normalize_token(token: str, config: TokenizerConfig) -> str:
    if config.profile != PROFILE:
        return profile_normalize(token, config)
    if config.normalization != "none" and not token.isascii():  # ASCII is already NFKC
        token = unicodedata.normalize(config.normalization, token)
    if config.lowercase:
        token = token.lower()
    if config.fold_digits:
        token = _DIGIT_RE.sub("0", token)
    # NFKC can turn a symbol into space + mark (U+00A8 -> ' \u0308'); a token never holds space.
    return "".join(token.split())


# English clitics as Universal Dependencies splits them: "don't" -> "do" "n't", "it's" -> "it" "'s".
_CLITIC_RE = re.compile(r"(?i)(n't|'s|'re|'ve|'ll|'d|'m)$")


def iter_spans(text, config: TokenizerConfig) -> Iterator[tuple[str, int, int]]:
    """Yield (surface, start, end): each token's original characters and offsets."""
    return profile_spans(as_text(text), config, _bilite_spans)


def _bilite_spans(text: str, config: TokenizerConfig) -> Iterator[tuple[str, int, int]]:
    for match in token_regex(text).finditer(text):
        surface, start, end = match.group(), match.start(), match.end()
        if config.clitics == "english" and "'" in surface:
            clitic = _CLITIC_RE.search(surface)
            if clitic and clitic.start() > 0:
                cut = start + clitic.start()
                yield surface[: clitic.start()], start, cut
                yield clitic.group(), cut, end
                continue
        yield surface, start, end


def iter_tokens(text, config: TokenizerConfig) -> Iterator[tuple[str, int, int]]:
    """Yield (normalized token, start, end) with offsets into the original text."""
    for surface, start, end in iter_spans(text, config):
        token = normalize_token(surface, config)
        if token:
            yield token, start, end


def split(text, config: TokenizerConfig) -> list[str]:
    return [token for token, _, _ in iter_tokens(text, config)]


def build_vocab(texts: Iterable[str], config: TokenizerConfig, pretokenized: bool = False) -> list[str]:
    """The pad and unknown tokens, then tokens seen at least ``min_count`` times, most frequent first.

    ``pretokenized``: ``texts`` are words (one token each, only normalized), as taggers train on.
    Ties are broken alphabetically so the same data always gives the same vocabulary.
    """
    counts = Counter()
    if pretokenized:
        counts.update(t for t in (normalize_token(w, config) for w in texts) if t)
    else:
        for text in texts:
            counts.update(split(text, config))
    specials = [config.pad_token] + ([config.unk_token] if config.unk_token else [])
    kept = [(t, c) for t, c in counts.items() if c >= config.min_count and t not in specials]
    kept.sort(key=lambda tc: (-tc[1], tc[0]))
    return specials + [t for t, _ in kept[: config.max_vocab - len(specials)]]


_MISSING = object()
_CACHE_SIZE = 50_000  # surface forms; cleared when full, so memory stays bounded


class Tokenizer:
    """Rules plus vocabularies: ``encode(text)`` gives the int32 ids the model was trained on.

    With the default ``features=("word",)`` a text becomes ``[max_len]`` ids; with more feature
    columns (taggers), ``[max_len, len(features)]``.
    """

    def __init__(self, config: TokenizerConfig, vocab: list[str],
                 feature_vocabs: dict[str, list[str]] | None = None):
        check_vocab(vocab, config)
        self.config = config
        self.vocab = list(vocab)
        self.index = {token: i for i, token in enumerate(self.vocab)}
        # None: unknown tokens are dropped (a Keras Tokenizer without oov_token does that).
        self.unk_id = self.index[config.unk_token] if config.unk_token else None
        self.start_id = self.index.get(START) if config.profile == REGEX else None
        self.feature_vocabs = {k: list(v) for k, v in (feature_vocabs or {}).items()}
        needed = [f for f in config.features if f in SUFFIX_FEATURES]
        missing = [f for f in needed if f not in self.feature_vocabs]
        if missing:
            raise BundleError(f"the tokenizer uses features {missing} but no vocabulary for them was "
                              "given (features.json); rebuild the bundle.")
        for name in needed:
            check_vocab(self.feature_vocabs[name])
        self.table = (FeatureTable(config.features, self.index, self.feature_vocabs)
                      if len(config.features) > 1 else None)
        self._cache: dict[str, object] = {}

    def __len__(self) -> int:
        return len(self.vocab)

    @property
    def width(self) -> int:
        return len(self.config.features)

    def split(self, text) -> list[str]:
        return split(text, self.config)

    def _row(self, surface: str, token: str):
        if self.table is None:
            return self.index.get(token, self.unk_id)
        return self.table.row(surface, token)

    def _surface_row(self, surface: str):
        """Row of a surface form, or None if it normalizes to nothing; memoized (bounded),
        because the same words recur and normalizing them is most of the tokenizer's time."""
        row = self._cache.get(surface, _MISSING)
        if row is _MISSING:
            token = normalize_token(surface, self.config)
            row = self._row(surface, token) if token else None
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            self._cache[surface] = row
        return row

    def spans_and_rows(self, text) -> Iterator[tuple[tuple[str, int, int], object]]:
        """((surface, start, end), feature row) per token of ``text``, untruncated."""
        for span in iter_spans(text, self.config):
            row = self._surface_row(span[0])
            if row is not None:
                yield span, row

    def rows(self, text) -> Iterator:
        """One feature row per token of ``text``, untruncated."""
        return (row for _, row in self.spans_and_rows(text))

    def word_rows(self, words: Iterable[str]) -> list:
        """One row per given word, none dropped: a word that normalizes to nothing is unknown."""
        return [self._row(w, normalize_token(w, self.config)) for w in words]

    def encode(self, text) -> np.ndarray:
        """Ids of ``text``, truncated and padded to ``max_len``, int32."""
        cfg = self.config
        rows = self.rows(text)
        if self.start_id is not None:
            rows = itertools.chain([self.start_id], rows)
        if cfg.truncation == "post":
            # Stop scanning once max_len tokens are found: 1 MB of text costs no more than 1 KB.
            kept = [r for _, r in zip(range(cfg.max_len), rows)]
        else:
            kept = list(deque(rows, maxlen=cfg.max_len))
        return self.pad(kept)

    def encode_words(self, words: list[str]) -> np.ndarray:
        """Ids of pre-tokenized words (at most ``max_len``; longer input is the caller's to window)."""
        if len(words) > self.config.max_len:
            raise InputError(f"{len(words)} words do not fit max_len {self.config.max_len}; "
                             "split them into windows first")
        return self.pad(self.word_rows(words))

    def pad(self, rows: list) -> np.ndarray:
        shape = (self.config.max_len,) if self.width == 1 else (self.config.max_len, self.width)
        out = np.zeros(shape, dtype=np.int32)
        n = len(rows)
        if n:
            if self.config.padding == "post":
                out[:n] = rows
            else:
                out[self.config.max_len - n :] = rows
        return out

    def encode_batch(self, texts: Iterable) -> np.ndarray:
        rows = [self.encode(t) for t in texts]
        if not rows:
            shape = (0, self.config.max_len) + ((self.width,) if self.width > 1 else ())
            return np.zeros(shape, dtype=np.int32)
        return np.stack(rows)


REBUILD = "Rebuild the bundle with `bilite build`."


def check_vocab(vocab: list[str], config: TokenizerConfig | None = None, *, source: str = "vocabulary",
                place=lambda i: f"id {i}", fix: str = REBUILD) -> None:
    """Refuse a vocabulary the rules cannot use. ``source``, ``place`` (id -> where it is) and
    ``fix`` let the host name a user's own file, its lines and the right advice (a user's
    vocabulary is not rebuilt with `bilite build`)."""
    config = config or TokenizerConfig()
    pad, unk = config.pad_token, config.unk_token
    if config.profile == PROFILE and (len(vocab) < 2 or vocab[0] != PAD or vocab[1] != UNK):
        raise BundleError(f"{source} must start with {PAD!r} (id 0) and {UNK!r} (id 1); saw {vocab[:2]!r}. {fix}")
    if not vocab or vocab[0] != pad or (unk and unk not in vocab):
        raise BundleError(
            f"the {config.profile} {source} must start with {pad!r} (id 0)"
            + (f" and hold the unknown token {unk!r}" if unk else "") + f"; saw {vocab[:3]!r}. {fix}")
    first, dups = {}, []
    for i, token in enumerate(vocab):
        if token in first:
            dups.append(f"{place(i)} {token!r} repeats {place(first[token])}")
        first.setdefault(token, i)
    if dups:
        raise BundleError(f"{source} has {len(dups)} duplicate token(s): " + "; ".join(dups[:3])
                          + f"; ids would be ambiguous. {fix}")
    # bilite's own tokens never hold whitespace; other tokenizers' may (TextVectorization keeps
    # "a\u00a0b" whole), but one token per line means never a newline.
    bad = [f"{place(i)} {t!r}" for i, t in enumerate(vocab) if not t or "\n" in t
           or (config.profile == PROFILE and any(ch.isspace() for ch in t))]
    if bad:
        raise BundleError(f"{source} has {len(bad)} empty or whitespace-containing token(s): "
                          + "; ".join(bad[:3]) + f"; the {config.profile} rules never make such a token. {fix}")
