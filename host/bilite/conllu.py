"""CoNLL-U reading for taggers (UD English EWT ships as .conllu.xz in data/).

Each sentence becomes (FORM, UPOS) pairs: comment lines, multiword-token ranges ("1-2 don't")
and empty nodes ("8.1") are skipped, as UD's own evaluation does for UPOS.
"""

from __future__ import annotations

import gzip
import lzma
import zlib
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError


@dataclass(frozen=True)
class TaggedCorpus:
    sentences: list[list[str]]
    tags: list[list[str]]
    source: str

    def __len__(self) -> int:
        return len(self.sentences)

    def tag_names(self) -> list[str]:
        return sorted({t for sent in self.tags for t in sent})

    def head(self, n: int) -> "TaggedCorpus":
        return TaggedCorpus(self.sentences[:n], self.tags[:n], f"{self.source} (first {n} sentences)")


def _open(path: Path):
    if path.suffix == ".xz":
        return lzma.open(path, "rt", encoding="utf-8")
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def load_conllu(path, column: int = 3) -> TaggedCorpus:
    """Sentences of (FORM, tag) from ``path`` (.conllu, .conllu.xz or .conllu.gz); ``column`` is
    the 0-based tag column (3: UPOS, 4: XPOS)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"CoNLL-U file not found: {path}")
    sentences, tags, words, labels = [], [], [], []
    try:
        with _open(path) as handle:
            for number, line in enumerate(handle, 1):
                line = line.rstrip("\n")
                if not line.strip():
                    if words:
                        sentences.append(words)
                        tags.append(labels)
                    words, labels = [], []
                    continue
                if line.startswith("#"):
                    continue
                cols = line.split("\t")
                if len(cols) != 10:
                    raise DataError(f"{path}:{number}: a CoNLL-U line has 10 TAB-separated columns, "
                                    f"saw {len(cols)}: {line[:60]!r}")
                if "-" in cols[0] or "." in cols[0]:
                    continue
                words.append(cols[1])
                labels.append(cols[column])
    except (UnicodeDecodeError, lzma.LZMAError, zlib.error, OSError, EOFError) as exc:
        raise DataError(f"cannot read {path} as UTF-8 CoNLL-U: {exc}") from None
    if words:
        sentences.append(words)
        tags.append(labels)
    if not sentences:
        raise DataError(f"{path} holds no sentences")
    return TaggedCorpus(sentences, tags, str(path))
