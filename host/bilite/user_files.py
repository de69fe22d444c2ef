"""The user's own text files for ``bilite bundle``: labels and sample texts (and the safe read
under both them and the vocabulary file).

Each is read whole, as UTF-8, only when it is a regular file (a FIFO would block the host), and
checked line by line so an error names the file, the line and the fix, before any model is loaded.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import DataError, VocabularyError


def read_user_text(path, what: str, error=VocabularyError) -> str:
    """A user's text file as UTF-8 (a leading BOM dropped, newlines as ``Path.read_text`` gives
    them), or ``error`` saying why not. Non-regular files are refused before opening: reading a
    FIFO or a device would block or never end."""
    path = Path(path)
    if not path.exists():
        raise error(f"{what} {path} does not exist")
    if not path.is_file():
        raise error(f"{what} {path} is not a regular file (a FIFO, device or folder); pass the file itself")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise error(f"{what} {path} is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); "
                    "save it as UTF-8") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_samples(path) -> list[dict]:
    """Sample texts: JSON lines ``{"text": ..., "ids": [...], "label": ...}`` (ids and label
    optional) or plain text, one per line."""
    path = Path(path)
    samples = []
    for n, line in enumerate(read_user_text(path, "samples file", DataError).split("\n"), start=1):
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            try:
                item = json.loads(line)
            except (json.JSONDecodeError, RecursionError) as exc:
                raise DataError(f"{path}:{n}: not valid JSON ({getattr(exc, 'msg', 'nested too deeply')})") from None
            if not isinstance(item, dict) or not isinstance(item.get("text"), str):
                raise DataError(f"{path}:{n}: a JSON sample needs a \"text\" string")
            if "ids" in item:
                item["ids"] = _sample_ids(item["ids"], f"{path}:{n}")
            if "label" in item and not isinstance(item["label"], str):
                raise DataError(f"{path}:{n}: \"label\" is {type(item['label']).__name__} {item['label']!r}; "
                                "a sample's label is one of the --labels, as a string")
            samples.append(item)
        else:
            samples.append({"text": line})
    if not samples:
        raise DataError(f"{path} holds no sample texts")
    return samples


def _sample_ids(ids, where: str) -> list[int]:
    """A sample's ids as ints: a flat list of whole numbers >= 0 (an integral float such as 2.0,
    as float arrays' tolist() gives, is taken as its int)."""
    def whole(i):
        return (isinstance(i, int) and not isinstance(i, bool) and i >= 0) or \
            (isinstance(i, float) and i.is_integer() and i >= 0)  # NaN and inf are not

    if not isinstance(ids, list) or not all(whole(i) for i in ids):
        shown = next((i for i in ids if not whole(i)), None) if isinstance(ids, list) else ids
        raise DataError(f"{where}: \"ids\" must be a flat list of token ids (whole numbers >= 0) as the "
                        f"model was fed, e.g. [12, 7, 0, 0]; saw {type(shown).__name__} {shown!r}")
    return [int(i) for i in ids]


def check_sample_labels(samples: list[dict], labels: list[str], labels_path, samples_path) -> None:
    """A sample label outside --labels would be silently left out of the accuracy: refuse it."""
    unknown = sorted({s["label"] for s in samples if "label" in s and s["label"] not in labels})
    if unknown:
        raise DataError(f"{samples_path} has sample labels that {labels_path} does not list: "
                        f"{unknown[:5]}{' ...' if len(unknown) > 5 else ''} (labels are {labels}); "
                        "fix the samples' labels or the labels file")


def parse_labels(path) -> list[str]:
    """The labels file, one label per line in the model's output order (surrounding spaces and
    trailing blank lines dropped); empty, repeated or tab-holding labels are refused by line."""
    lines = read_user_text(path, "labels file", DataError).split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    labels, seen = [], {}
    for n, line in enumerate(lines, start=1):
        label = line.strip()
        if not label:
            raise DataError(f"{path}:{n}: empty label; every line is one of the model's outputs, in "
                            "order: remove the blank line or name the label")
        if "\t" in label:
            raise DataError(f"{path}:{n}: label {label!r} holds a tab; bundles write labels tab-free "
                            "(one per line): rename it")
        if label in seen:
            raise DataError(f"{path}:{n}: label {label!r} repeats line {seen[label]}; each of the "
                            "model's outputs needs its own label")
        seen[label] = n
        labels.append(label)
    if not labels:
        raise DataError(f"{path} lists no labels; one label per line, in the model's output order")
    return labels
