"""Streaming input: labelled text read line by line, so memory stays flat as the data grows.

* **Files.** DATA may be one file or a glob naming several shards of one format (quote it:
  ``'shards/*.tsv'``); tf.data interleaves them. Every format bilite reads is line-based here:
  SMS ``label<TAB>text``, CSV / TSV with a header row (one record per line: a quoted field that
  spans lines needs the in-memory reader, without ``--stream``), and JSONL.
* **Split.** A stratified split needs every label's rows in memory. Instead, each line goes to
  train, validation or test by a keyed hash of its bytes (BLAKE2b, keyed by the seed) modulo
  10,000, against the fractions in basis points. Any reader of the file, in any order, on any
  worker, puts a line in the same part without seeing the others; identical lines always land
  together, so a duplicated message cannot sit in train and test at once. Label proportions
  match only in expectation (as with any random split).
* **Tokens.** Texts become ids inside the pipeline through ``tf.numpy_function`` calling the
  device's own ``Tokenizer`` (the same code the device runs, not a TensorFlow re-implementation),
  a chunk of lines per call, with the output shape set explicitly; then a bounded shuffle
  buffer, batching and prefetch.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .data import FORMATS, _guess_format
from .errors import DataError

TRAIN, VALIDATION, TEST = 0, 1, 2
PART_NAMES = ("train", "validation", "test")
SPLIT_BUCKETS = 10_000  # fractions are honoured to 0.01 %
LINE_CHUNK = 256  # lines per call into Python: spreads the tf.data -> Python hop over many lines


@dataclass(frozen=True)
class HashSplit:
    """Which part a line belongs to, from the line alone (see the module's docstring)."""

    seed: int
    validation: float
    test: float  # 0 when an official test file is given

    def __post_init__(self):
        if not (0 < self.validation < 1 and 0 <= self.test < 1 and self.validation + self.test < 1):
            raise DataError(f"validation ({self.validation}) and test ({self.test}) fractions must be "
                            "in (0, 1) and sum to less than 1")

    @property
    def _key(self) -> bytes:
        return self.seed.to_bytes(16, "little", signed=True)

    def part(self, line: bytes) -> int:
        digest = hashlib.blake2b(line, digest_size=8, key=self._key).digest()
        bucket = int.from_bytes(digest, "little") % SPLIT_BUCKETS
        test_cut = round(self.test * SPLIT_BUCKETS)
        if bucket < test_cut:
            return TEST
        return VALIDATION if bucket < test_cut + round(self.validation * SPLIT_BUCKETS) else TRAIN

    def describe(self) -> str:
        return (f"hash split: BLAKE2b-64 of each line keyed by seed {self.seed}, mod {SPLIT_BUCKETS}; "
                f"test < {round(self.test * SPLIT_BUCKETS)}, validation the next "
                f"{round(self.validation * SPLIT_BUCKETS)}, train the rest")


@dataclass(frozen=True)
class StreamSource:
    """Files of one format and how one line becomes (text, label)."""

    files: tuple[str, ...]
    fmt: str  # sms | csv | tsv | jsonl
    text_column: str = "text"
    label_column: str = "label"
    columns: tuple[int, int] = (0, 0)  # csv / tsv: positions of the text and label columns
    width: int = 0  # csv / tsv: fields per record

    @property
    def header_lines(self) -> int:
        return 1 if self.fmt in ("csv", "tsv") else 0

    def describe(self) -> str:
        return self.files[0] if len(self.files) == 1 else f"{len(self.files)} files ({self.files[0]}, …)"

    def parse(self, line: bytes, where: str = "") -> tuple[str, str] | None:
        """(text, label) of one line without its line break; None for a blank line."""
        try:
            # utf-8-sig: a file saved with a byte-order mark has it on its first line only; the
            # in-memory readers (data.py) open files as utf-8-sig, so both paths read one label.
            text_line = line.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DataError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start}).") from None
        if not text_line.strip():
            return None
        if self.fmt == "sms":
            label, sep, text = text_line.partition("\t")
            if not sep or not label.strip():
                raise DataError(f"{where}: expected 'label<TAB>text' (SMS Spam Collection format), saw "
                                f"{text_line[:60]!r}. For CSV/TSV/JSONL pass --format and the columns.")
        elif self.fmt == "jsonl":
            try:
                row = json.loads(text_line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: not valid JSON ({exc.msg}).") from None
            if not isinstance(row, dict) or self.text_column not in row or self.label_column not in row:
                keys = sorted(row) if isinstance(row, dict) else type(row).__name__
                raise DataError(f"{where}: expected an object with keys {self.text_column!r} and "
                                f"{self.label_column!r}, saw {keys}. Pass --text-column/--label-column.")
            text, label = str(row[self.text_column]), str(row[self.label_column])
        else:
            try:
                fields = next(csv.reader([text_line], delimiter="," if self.fmt == "csv" else "\t", strict=True))
            except csv.Error as exc:
                raise DataError(f"{where}: {exc}. With --stream every record must sit on one line; a "
                                "quoted field spanning lines needs the in-memory reader (drop --stream).") from None
            if len(fields) != self.width:
                raise DataError(f"{where}: {len(fields)} fields where the header has {self.width}. With "
                                "--stream every record must sit on one line (drop --stream for quoted "
                                "multi-line fields).")
            text, label = fields[self.columns[0]], fields[self.columns[1]]
        label = label.strip()
        if not label or any(c in label for c in "\t\r\n"):
            raise DataError(f"{where}: label {label!r} is empty or holds a tab or line break; labels are "
                            "single-line names")
        return text, label


def open_source(data, fmt: str = "auto", text_column: str = "text", label_column: str = "label") -> StreamSource:
    """The files DATA names (a path or a glob), their format, and (CSV/TSV) the columns' positions."""
    pattern = str(data)
    files = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
    files = [f for f in files if Path(f).is_file()]
    if not files:
        raise DataError(f"no dataset file matches {pattern}" if glob.has_magic(pattern)
                        else f"dataset file not found: {pattern}")
    if fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    fmt = _guess_format(Path(files[0])) if fmt == "auto" else fmt
    if fmt not in ("csv", "tsv"):
        return StreamSource(tuple(files), fmt, text_column, label_column)
    headers = {f: _header(f, "," if fmt == "csv" else "\t") for f in files}
    first = headers[files[0]]
    odd = next((f for f in files if headers[f] != first), None)
    if odd is not None:
        raise DataError(f"{odd}: header {headers[odd]} differs from {files[0]}'s {first}; the shards of "
                        "one dataset must share one header")
    missing = [c for c in (text_column, label_column) if c not in first]
    if missing:
        raise DataError(f"{files[0]}: column(s) {missing} not found; the header has {first}. Pass "
                        "--text-column and --label-column with names from the header.")
    return StreamSource(tuple(files), fmt, text_column, label_column,
                        (first.index(text_column), first.index(label_column)), len(first))


def _header(path: str, delimiter: str) -> list[str]:
    with open(path, "rb") as handle:
        line = handle.readline().rstrip(b"\r\n")
    try:
        return next(csv.reader([line.decode("utf-8-sig")], delimiter=delimiter), [])
    except UnicodeDecodeError:
        raise DataError(f"{path}: the header is not UTF-8 text") from None


def iter_records(source: StreamSource) -> Iterator[tuple[bytes, str, str]]:
    """(line, text, label) for every record, file after file, holding one line at a time."""
    for path in source.files:
        with open(path, "rb") as handle:
            for number, raw in enumerate(handle, 1):
                if number <= source.header_lines:
                    continue
                line = raw.rstrip(b"\r\n")  # TextLineDataset strips the same
                record = source.parse(line, f"{path}:{number}")
                if record is not None:
                    yield line, record[0], record[1]


class ChunkEncoder:
    """Lines -> (ids [n, max_len] int32, label indices [n] int32) for one part of the split.
    Runs inside tf.numpy_function, so it is plain Python with the device's tokenizer."""

    def __init__(self, source: StreamSource, tokenizer, label_index: dict[str, int], split: HashSplit | None,
                 part: int):
        self.source, self.tokenizer, self.label_index = source, tokenizer, label_index
        self.split, self.part = split, part

    def __call__(self, chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids, labels = [], []
        for raw in chunk:
            line = bytes(raw).rstrip(b"\r")
            if self.split is not None and self.split.part(line) != self.part:
                continue
            record = self.source.parse(line, "streamed line")
            if record is None:
                continue
            if record[1] not in self.label_index:
                raise DataError(f"label {record[1]!r} was not seen when the data was scanned")
            ids.append(self.tokenizer.encode(record[0]))
            labels.append(self.label_index[record[1]])
        if not ids:
            return np.zeros((0, self.tokenizer.config.max_len), np.int32), np.zeros((0,), np.int32)
        return np.stack(ids), np.asarray(labels, np.int32)


def example_dataset(source: StreamSource, tokenizer, label_index: dict[str, int], split: HashSplit | None,
                    part: int, batch_size: int, *, float_labels: bool, shuffle_buffer: int = 0, seed: int = 0,
                    workers: int = 1, rank: int = 0, repeat: bool = False, examples_count: int | None = None):
    """tf.data pipeline of (ids, label) batches for one part. ``split`` None: every line (an
    official test file). ``workers`` > 1: this worker's shard (by file when there are enough
    files, else every ``workers``-th line), so workers read disjoint data. ``examples_count``: the
    part's size from the scan, so Keras knows the steps per epoch (and a file changed since the
    scan fails loudly instead of training on something else)."""
    import tensorflow as tf

    max_len = tokenizer.config.max_len
    files = tf.data.Dataset.from_tensor_slices(list(source.files))
    by_file = workers > 1 and len(source.files) >= workers
    if by_file:
        files = files.shard(workers, rank)
    skip = source.header_lines
    lines = files.interleave(lambda f: tf.data.TextLineDataset(f).skip(skip),
                             cycle_length=min(4, len(source.files)), block_length=LINE_CHUNK)
    if workers > 1 and not by_file:
        lines = lines.shard(workers, rank)
    encode = ChunkEncoder(source, tokenizer, label_index, split, part)

    def to_examples(chunk):
        ids, labels = tf.numpy_function(encode, [chunk], (tf.int32, tf.int32), stateful=False)
        ids.set_shape([None, max_len])
        labels.set_shape([None])
        return ids, tf.cast(labels, tf.float32) if float_labels else labels

    examples = lines.batch(LINE_CHUNK).map(to_examples).unbatch()
    if shuffle_buffer:
        examples = examples.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        examples = examples.repeat()
    batches = examples.batch(batch_size)
    if examples_count is not None and workers == 1 and not repeat:
        batches = batches.apply(tf.data.experimental.assert_cardinality(-(-examples_count // batch_size)))
    batches = batches.prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    # Sharding is done above, by hand: tf.distribute must not shard again.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    options.deterministic = True
    return batches.with_options(options)
