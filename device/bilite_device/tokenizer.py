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

import re
import unicodedata
from collections import Counter, deque
from dataclasses import asdict, dataclass, fields
from typing import Iterable, Iterator

import numpy as np

from ._unicode_classes import GAP_RANGES, UNICODE_VERSION, WORD_RANGES
from .errors import BundleError, InputError, SchemaError

PAD, UNK = "<pad>", "<unk>"
PROFILE = "bilite-words-v1"


def char_class(ranges) -> str:
    """The body of a regex character class matching the given (first, last) code point ranges."""
    return "".join(
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
        for a, b in ranges
    )


# Letters, numbers and marks make words; separators and controls/format characters separate
# tokens (see _unicode_classes.py for why the ranges are frozen rather than computed).
_WORD = char_class(WORD_RANGES)
_GAP = char_class(GAP_RANGES)
_DIGIT_RE = re.compile(r"\d")  # Unicode decimal digits, after NFKC
_TOKEN_RE = re.compile(f"[{_WORD}]+(?:'[{_WORD}]+)*|[^{_WORD}{_GAP}\\s]")


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
    profile: str = PROFILE

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
        if self.profile != PROFILE:
            problems.append(
                f"tokenizer profile {self.profile!r} is unknown to this bilite-device "
                f"(knows {PROFILE!r}); upgrade bilite-device"
            )
        if problems:
            raise SchemaError("invalid tokenizer rules: " + "; ".join(problems))

    def to_json(self) -> dict:
        return {**asdict(self), "pad_token": PAD, "unk_token": UNK, "pad_id": 0, "unk_id": 1,
                "split": "words, inner apostrophes, one token per other visible character",
                "unicode_classes": UNICODE_VERSION}

    @classmethod
    def from_json(cls, data: dict) -> "TokenizerConfig":
        # Every rule must be recorded: a default filled in for a missing rule could tokenize
        # differently from training without any error.
        names = [f.name for f in fields(cls)]
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
    if config.normalization != "none":
        token = unicodedata.normalize(config.normalization, token)
    if config.lowercase:
        token = token.lower()
    if config.fold_digits:
        token = _DIGIT_RE.sub("0", token)
    # NFKC can turn a symbol into space + mark (U+00A8 -> ' \u0308'); a token never holds space.
    return "".join(token.split())


def iter_tokens(text, config: TokenizerConfig) -> Iterator[tuple[str, int, int]]:
    """Yield (normalized token, start, end) with offsets into the original text."""
    for match in _TOKEN_RE.finditer(as_text(text)):
        token = normalize_token(match.group(), config)
        if token:
            yield token, match.start(), match.end()


def split(text, config: TokenizerConfig) -> list[str]:
    return [token for token, _, _ in iter_tokens(text, config)]


def build_vocab(texts: Iterable[str], config: TokenizerConfig) -> list[str]:
    """<pad>, <unk>, then tokens seen at least ``min_count`` times, most frequent first.

    Ties are broken alphabetically so the same data always gives the same vocabulary.
    """
    counts = Counter()
    for text in texts:
        counts.update(split(text, config))
    kept = [(t, c) for t, c in counts.items() if c >= config.min_count and t not in (PAD, UNK)]
    kept.sort(key=lambda tc: (-tc[1], tc[0]))
    return [PAD, UNK] + [t for t, _ in kept[: config.max_vocab - 2]]


class Tokenizer:
    """Rules plus vocabulary: ``encode(text)`` gives the int32 ids the model was trained on."""

    def __init__(self, config: TokenizerConfig, vocab: list[str]):
        check_vocab(vocab)
        self.config = config
        self.vocab = list(vocab)
        self.index = {token: i for i, token in enumerate(self.vocab)}

    def __len__(self) -> int:
        return len(self.vocab)

    def split(self, text) -> list[str]:
        return split(text, self.config)

    def ids(self, tokens: Iterable[str]) -> list[int]:
        get = self.index.get
        return [get(token, 1) for token in tokens]

    def encode(self, text) -> np.ndarray:
        """Ids of ``text``, truncated and padded to ``max_len``: shape [max_len], int32."""
        cfg = self.config
        tokens = (token for token, _, _ in iter_tokens(text, cfg))
        if cfg.truncation == "post":
            # Stop scanning once max_len tokens are found: 1 MB of text costs no more than 1 KB.
            kept = [t for _, t in zip(range(cfg.max_len), tokens)]
        else:
            kept = list(deque(tokens, maxlen=cfg.max_len))
        return self.pad(self.ids(kept))

    def pad(self, ids: list[int]) -> np.ndarray:
        out = np.zeros(self.config.max_len, dtype=np.int32)
        n = len(ids)
        if n:
            if self.config.padding == "post":
                out[:n] = ids
            else:
                out[self.config.max_len - n :] = ids
        return out

    def encode_batch(self, texts: Iterable) -> np.ndarray:
        rows = [self.encode(t) for t in texts]
        if not rows:
            return np.zeros((0, self.config.max_len), dtype=np.int32)
        return np.stack(rows)


def check_vocab(vocab: list[str]) -> None:
    if len(vocab) < 2 or vocab[0] != PAD or vocab[1] != UNK:
        raise BundleError(
            f"vocabulary must start with {PAD!r} (id 0) and {UNK!r} (id 1); saw {vocab[:2]!r}. "
            "Rebuild the bundle with `bilite build`."
        )
    seen, dups = set(), []
    for token in vocab:
        if token in seen:
            dups.append(token)
        seen.add(token)
    if dups:
        raise BundleError(
            f"vocabulary has {len(dups)} duplicate token(s), e.g. {dups[:3]!r}: ids would be "
            "ambiguous. Rebuild the bundle with `bilite build`."
        )
    bad = [t for t in vocab if not t or any(ch.isspace() for ch in t)]
    if bad:
        raise BundleError(
            f"vocabulary has {len(bad)} empty or whitespace-containing token(s), e.g. {bad[:3]!r}; "
            "tokens never contain whitespace. Rebuild the bundle with `bilite build`."
        )
