"""The vocabulary from a stream of texts, in one pass, with bounded memory for the counts.

``build_vocab`` (device/bilite_device/tokenizer.py) holds a count for every distinct token. On a
growing corpus the distinct tokens grow with it (names, typos, codes), so here at most
``cap`` distinct tokens are counted at once. When a new token would exceed the cap, the counter
is pruned by a batched Misra-Gries rule:

    d = the median of the current counts;
    every count drops by d, and the tokens left at or below zero are forgotten.

At least half of the counters go each time, so pruning happens at most once per ``cap / 2`` new
tokens (O(1) amortized per token, one sort per pruning). What it guarantees (Misra-Gries): every
kept count is an underestimate by at most ``D``, the sum of all the ``d`` subtracted so far, and
``D <= 2 * tokens_seen / (cap + 1)`` (each pruning removes at least ``d`` from at least half of
``cap + 1`` counters, and the counters never hold more than the tokens seen). So every token seen
more than ``D`` times survives, and the frequent tokens that make a vocabulary are never lost.

The rule depends only on the order of the tokens, so the same files in the same order always
give the same vocabulary. When the cap is never hit nothing is subtracted, the counts are exact,
and the result is *exactly* ``build_vocab``'s (the same selection: ``min_count``, most frequent
first, ties alphabetical, ``max_vocab`` including the pad and unknown tokens).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from bilite_device.tokenizer import TokenizerConfig, split

DEFAULT_COUNT_CAP = 200_000  # distinct tokens counted at once: ~25 MB of Python dict, 10x max_vocab


@dataclass(frozen=True)
class CountStats:
    """What the bounded counter did, for the log and the bundle's metadata."""

    tokens: int  # tokens counted
    distinct_kept: int  # distinct tokens held at the end
    cap: int
    prunings: int
    max_undercount: int  # D: no kept count is lower than the true count by more than this

    @property
    def exact(self) -> bool:
        return self.prunings == 0

    def to_json(self) -> dict:
        return {"tokens": self.tokens, "distinct_kept": self.distinct_kept, "cap": self.cap,
                "prunings": self.prunings, "max_undercount": self.max_undercount,
                "exact": self.exact,
                "rule": "batched Misra-Gries: at the cap, subtract the median count from every "
                        "count and forget those at or below zero"}


class BoundedTokenCounter:
    """Token counts with at most ``cap`` distinct tokens held (see the module's docstring)."""

    def __init__(self, cap: int = DEFAULT_COUNT_CAP):
        if not isinstance(cap, int) or cap < 2:
            raise ValueError(f"cap must be an integer >= 2, got {cap!r}")
        self.cap = cap
        self.counts: dict[str, int] = {}
        self.tokens = 0
        self.prunings = 0
        self.max_undercount = 0

    def update(self, tokens: Iterable[str]) -> None:
        counts = self.counts
        for token in tokens:
            self.tokens += 1
            if token in counts:
                counts[token] += 1
            else:
                counts[token] = 1
                if len(counts) > self.cap:
                    self._prune()
                    counts = self.counts

    def _prune(self) -> None:
        values = sorted(self.counts.values())
        d = values[len(values) // 2]  # the median: at least half the counts are <= d
        self.counts = {t: c - d for t, c in self.counts.items() if c > d}
        self.prunings += 1
        self.max_undercount += d

    def stats(self) -> CountStats:
        return CountStats(self.tokens, len(self.counts), self.cap, self.prunings, self.max_undercount)


def vocab_from_counts(counts: dict[str, int], config: TokenizerConfig) -> list[str]:
    """The pad and unknown tokens, then tokens counted at least ``min_count`` times, most frequent
    first, ties alphabetical, up to ``max_vocab`` ids: build_vocab's selection on given counts.
    (build_vocab counts internally and cannot take counts, so its selection is mirrored here;
    tests/host/test_streaming.py proves both give the same vocabulary.)"""
    specials = [config.pad_token] + ([config.unk_token] if config.unk_token else [])
    kept = [(t, c) for t, c in counts.items() if c >= config.min_count and t not in specials]
    kept.sort(key=lambda tc: (-tc[1], tc[0]))
    return specials + [t for t, _ in kept[: config.max_vocab - len(specials)]]


def stream_vocab(texts: Iterable[str], config: TokenizerConfig,
                 cap: int = DEFAULT_COUNT_CAP) -> tuple[list[str], CountStats]:
    """The vocabulary of ``texts`` read once, split by the device's tokenizer rules."""
    counter = BoundedTokenCounter(cap)
    for text in texts:
        counter.update(split(text, config))
    return vocab_from_counts(counter.counts, config), counter.stats()
