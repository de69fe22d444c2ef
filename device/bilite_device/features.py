"""Per-token features beyond the word id, for taggers: word shape (case) and suffixes.

Why: word ids alone lose on unknown words, which are most of a tagger's errors. "Blorfing"
is unknown, but its case class (title) and suffixes ("ng", "ing") say a lot about its tag. The
host trains with these features and the device computes them with this same code.

Feature columns (``TokenizerConfig.features``), in order: ``word`` (always first: the vocabulary
id), ``case`` (a fixed class id, below), ``suffix2`` / ``suffix3`` (ids in their own small
vocabularies, kept in the bundle's ``features.json``). Id 0 is padding, id 1 unknown.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

KNOWN_FEATURES = ("word", "case", "suffix2", "suffix3")
SUFFIX_FEATURES = {"suffix2": 2, "suffix3": 3}

# Case classes of a token's surface form (after NFKC, before lowercasing). 0 is padding.
CASE_CLASSES = ("<pad>", "lower", "title", "upper", "mixed", "no-letters")
_LOWER, _TITLE, _UPPER, _MIXED, _NONE = 1, 2, 3, 4, 5


def case_id(surface: str) -> int:
    letters = [ch for ch in surface if ch.isalpha()]
    if not letters:
        return _NONE
    if all(ch.islower() or not ch.isupper() and not ch.islower() for ch in letters):
        return _LOWER
    if letters[0].isupper() and all(not ch.isupper() for ch in letters[1:]):
        return _TITLE
    if all(ch.isupper() or not ch.islower() for ch in letters):
        return _UPPER
    return _MIXED


def suffix(token: str, n: int) -> str:
    return token[-n:]


def build_feature_vocabs(tokens: Iterable[str], features: tuple[str, ...], min_count: int = 2,
                         max_size: int = 5000) -> dict[str, list[str]]:
    """Suffix vocabularies from normalized training tokens: <pad>, <unk>, most frequent first."""
    wanted = [f for f in features if f in SUFFIX_FEATURES]
    counts = {f: Counter() for f in wanted}
    for token in tokens:
        for f in wanted:
            counts[f][suffix(token, SUFFIX_FEATURES[f])] += 1
    vocabs = {}
    for f in wanted:
        kept = sorted(((s, c) for s, c in counts[f].items() if c >= min_count), key=lambda sc: (-sc[1], sc[0]))
        vocabs[f] = ["<pad>", "<unk>"] + [s for s, _ in kept[: max_size - 2]]
    return vocabs


class FeatureTable:
    """Turns (surface, normalized token) pairs into rows of feature ids."""

    def __init__(self, features: tuple[str, ...], word_index: dict[str, int],
                 vocabs: dict[str, list[str]]):
        self.features = features
        self.word_index = word_index
        self.suffix_index = {f: {s: i for i, s in enumerate(vocabs[f])} for f in features
                             if f in SUFFIX_FEATURES}

    def row(self, surface: str, token: str) -> tuple[int, ...]:
        out = []
        for f in self.features:
            if f == "word":
                out.append(self.word_index.get(token, 1))
            elif f == "case":
                out.append(case_id(surface))
            else:
                out.append(self.suffix_index[f].get(suffix(token, SUFFIX_FEATURES[f]), 1))
        return tuple(out)
