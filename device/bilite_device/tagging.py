"""Token tagging: one tag per word, with character offsets, for texts of any length.

Texts longer than the model's ``max_len`` are tagged in overlapping windows (stride half a
window); each word takes its tag from the window in which it sits most centrally, so every word
gets context on both sides where the text has it, and no word is ever dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np



@dataclass(frozen=True)
class TaggedWord:
    word: str
    start: int | None  # character offsets into the original text (None for tag_tokens input)
    end: int | None
    tag: str
    score: float

    def to_json(self) -> dict:
        return dict(self.__dict__)


def windows(n: int, size: int) -> list[tuple[int, int]]:
    """(start, end) windows covering 0..n with stride size // 2, the last one ending at n."""
    if n <= size:
        return [(0, n)]
    stride = max(size // 2, 1)
    starts = list(range(0, n - size, stride)) + [n - size]
    return [(s, s + size) for s in starts]


def best_window(position: int, spans: list[tuple[int, int]]) -> int:
    """Index of the window whose centre is nearest to ``position`` (ties: the earlier one).
    Windows are evenly strided but for the last, so only a few neighbours need checking: O(1)."""
    if len(spans) == 1:
        return 0
    size = spans[0][1] - spans[0][0]
    stride = spans[1][0] - spans[0][0]
    guess = int((position - (size - 1) / 2) / stride) if stride else 0
    near = {max(0, min(len(spans) - 1, guess + d)) for d in (-1, 0, 1, 2)} | {len(spans) - 1}
    return min(sorted(near), key=lambda k: abs(position - (spans[k][0] + spans[k][1] - 1) / 2))


def tag_rows(bundle, rows: list) -> list[tuple[int, float]]:
    """(tag index, score) for each feature row, windowed to the model's length."""
    size = bundle.tokenizer.config.max_len
    spans = windows(len(rows), size)
    results = []
    for start, end in spans:
        ids = bundle.tokenizer.pad(rows[start:end])
        scores = bundle.scores_for_ids(ids)  # [max_len, C]
        offset = 0 if bundle.tokenizer.config.padding == "post" else size - (end - start)
        results.append(scores[offset : offset + end - start])
    out = []
    for i in range(len(rows)):
        k = best_window(i, spans) if len(spans) > 1 else 0
        row = results[k][i - spans[k][0]]
        best = int(np.argmax(row))
        out.append((best, float(row[best])))
    return out


def tag_text(bundle, text) -> list[TaggedWord]:
    pairs = list(bundle.tokenizer.spans_and_rows(text))
    spans, rows = [span for span, _ in pairs], [row for _, row in pairs]
    tags = tag_rows(bundle, rows)
    return [TaggedWord(s, a, b, bundle.labels[t], score) for (s, a, b), (t, score) in zip(spans, tags)]


def tag_words(bundle, words: list[str]) -> list[TaggedWord]:
    rows = bundle.tokenizer.word_rows(words)
    return [TaggedWord(w, None, None, bundle.labels[t], score)
            for w, (t, score) in zip(words, tag_rows(bundle, rows))]
