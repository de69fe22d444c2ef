"""Labelled text datasets: readers for the formats users have, and a seeded stratified split.

Formats:
* ``sms``: the SMS Spam Collection layout, ``label<TAB>text`` per line, no header, no quoting
  (messages contain ``"``: CSV quote handling would merge lines);
* ``csv`` / ``tsv``: a header row, with the text and label columns named by the user;
* ``jsonl``: one JSON object per line, with the text and label keys named by the user.
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError

FORMATS = ("auto", "sms", "csv", "tsv", "jsonl")


@dataclass(frozen=True)
class Dataset:
    texts: list[str]
    labels: list[str]
    source: str

    def __len__(self) -> int:
        return len(self.texts)

    def label_names(self) -> list[str]:
        """Sorted, so the label order (and the output index of each label) is reproducible."""
        return sorted(set(self.labels))

    def subset(self, indices: list[int]) -> "Dataset":
        return Dataset([self.texts[i] for i in indices], [self.labels[i] for i in indices], self.source)


def _guess_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".csv",):
        return "csv"
    if suffix in (".tsv",):
        return "tsv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    return "sms"


def _read_sms(path: Path) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    with path.open(encoding="utf-8-sig", newline="\n") as handle:  # a BOM: see _read_table
        for number, line in enumerate(handle, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            label, sep, text = line.partition("\t")
            if not sep or not label.strip():
                raise DataError(
                    f"{path}:{number}: expected 'label<TAB>text' (SMS Spam Collection format), "
                    f"saw {line[:60]!r}. For CSV/TSV/JSONL files pass --format and --text-column/"
                    "--label-column."
                )
            texts.append(text)
            labels.append(label.strip())
    return texts, labels


def _read_table(path: Path, delimiter: str, text_col: str, label_col: str):
    # utf-8-sig: spreadsheet programs (Excel's "CSV UTF-8") start the file with a byte-order mark,
    # which plain utf-8 would glue onto the first column's name ('\ufefftext'). The streaming
    # reader (streaming._header) decodes the header the same way, so both paths see one header.
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        header = reader.fieldnames or []
        missing = [c for c in (text_col, label_col) if c not in header]
        if missing:
            raise DataError(
                f"{path}: column(s) {missing} not found; the header has {header}. Pass "
                "--text-column and --label-column with names from the header."
            )
        texts, labels = [], []
        for row in reader:
            texts.append(row[text_col] or "")
            labels.append((row[label_col] or "").strip())
    return texts, labels


def _read_jsonl(path: Path, text_col: str, label_col: str):
    texts, labels = [], []
    with path.open(encoding="utf-8-sig") as handle:  # a BOM: see _read_table
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: not valid JSON ({exc.msg}).") from None
            if not isinstance(row, dict) or text_col not in row or label_col not in row:
                keys = sorted(row) if isinstance(row, dict) else type(row).__name__
                raise DataError(
                    f"{path}:{number}: expected an object with keys {text_col!r} and "
                    f"{label_col!r}, saw {keys}. Pass --text-column/--label-column."
                )
            texts.append(str(row[text_col]))
            labels.append(str(row[label_col]).strip())
    return texts, labels


def load_dataset(path, fmt: str = "auto", text_column: str = "text",
                 label_column: str = "label") -> Dataset:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"dataset file not found: {path}")
    if fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    fmt = _guess_format(path) if fmt == "auto" else fmt
    try:
        if fmt == "sms":
            texts, labels = _read_sms(path)
        elif fmt in ("csv", "tsv"):
            texts, labels = _read_table(path, "," if fmt == "csv" else "\t", text_column, label_column)
        else:
            texts, labels = _read_jsonl(path, text_column, label_column)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}).") from None
    if any(not label for label in labels):
        raise DataError(f"{path}: some rows have an empty label.")
    odd = next((i for i, label in enumerate(labels) if any(c in label for c in "\t\r\n")), None)
    if odd is not None:
        raise DataError(f"{path}: label {labels[odd]!r} (row {odd + 1}) contains a tab or line break; "
                        "labels are written one per line, so they must be single-line names")
    dataset = Dataset(texts, labels, str(path))
    if len(dataset.label_names()) < 2:
        raise DataError(
            f"{path}: found {len(dataset)} rows but only the label(s) {dataset.label_names()}; "
            "a classifier needs at least two labels."
        )
    return dataset


def split_with_test(dataset: Dataset, test_set: Dataset, seed: int,
                    validation: float = 0.1) -> tuple[Dataset, Dataset, Dataset]:
    """Train/validation from ``dataset`` (stratified, seeded); the given test set as is (an
    official test split, such as Banking77's, must stay the one everybody reports on)."""
    unknown = sorted(set(test_set.labels) - set(dataset.labels))
    if unknown:
        raise DataError(f"the test data has label(s) {unknown[:10]} that the training data lacks")
    train, val, _ = stratified_split(dataset, seed, validation, test=0.0)
    return train, val, test_set


def stratified_split(dataset: Dataset, seed: int, validation: float = 0.1,
                     test: float = 0.1) -> tuple[Dataset, Dataset, Dataset]:
    """Train/validation/test with every label in the same proportion in each part, seeded.
    ``test=0`` leaves the test part empty (for a separately given test set)."""
    if not (0 < validation < 1 and 0 <= test < 1 and validation + test < 1):
        raise DataError(f"validation ({validation}) and test ({test}) fractions must be in (0, 1) "
                        "and sum to less than 1")
    rng = random.Random(seed)
    parts: tuple[list[int], list[int], list[int]] = ([], [], [])
    for label in dataset.label_names():
        indices = [i for i, y in enumerate(dataset.labels) if y == label]
        rng.shuffle(indices)
        n_test = max(1, round(len(indices) * test)) if test else 0
        n_val = max(1, round(len(indices) * validation))
        if len(indices) < n_test + n_val + 1:
            raise DataError(f"label {label!r} has only {len(indices)} example(s); need at least "
                            f"{n_test + n_val + 1} to put one in each of train, validation"
                            + (" and test" if test else ""))
        parts[2].extend(indices[:n_test])
        parts[1].extend(indices[n_test : n_test + n_val])
        parts[0].extend(indices[n_test + n_val :])
    for part in parts:
        rng.shuffle(part)
    return tuple(dataset.subset(p) for p in parts)
