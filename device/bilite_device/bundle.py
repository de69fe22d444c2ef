"""A loaded, verified bundle: tokenize -> interpret -> postprocess.

``load_bundle`` checks everything it can before the first prediction: checksums, schema version,
required fields, vocabulary and label counts against metadata and against the model's tensors,
and the runtime version the model needs. Any mismatch is a typed error, never a wrong answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from .bundle_files import read_bundle_files
from .errors import BundleError, SchemaError
from .model import TfliteModel
from .runtime import Runtime
from .schema import GOLDEN_FILE, LABELS_FILE, METADATA_FILE, MODEL_FILE, VOCAB_FILE, Metadata, parse_metadata
from .tokenizer import Tokenizer, TokenizerConfig


@dataclass(frozen=True)
class Prediction:
    label: str
    score: float
    scores: dict[str, float]

    def to_json(self) -> dict:
        return {"label": self.label, "score": self.score, "scores": self.scores}


def _lines(blob: bytes, name: str) -> list[str]:
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError:
        raise BundleError(f"{name} is not UTF-8 text; the bundle is damaged. Rebuild it.") from None
    return text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")


class Bundle:
    def __init__(self, files: dict[str, bytes], source: str = "<memory>", num_threads: int = 1,
                 runtime: Runtime | None = None):
        self.source = source
        self.files = files
        self.metadata: Metadata = parse_metadata(files[METADATA_FILE])
        meta = self.metadata.raw
        self.labels = _lines(files[LABELS_FILE], LABELS_FILE)
        if self.labels != self.metadata.labels:
            raise BundleError(
                f"{LABELS_FILE} lists {len(self.labels)} labels {self.labels[:5]} but metadata.json "
                f"declares {len(self.metadata.labels)} {self.metadata.labels[:5]}. Rebuild the bundle."
            )
        vocab = _lines(files[VOCAB_FILE], VOCAB_FILE)
        declared = meta["tokenizer"]["vocab_size"]
        if len(vocab) != declared:
            raise BundleError(
                f"{VOCAB_FILE} has {len(vocab)} entries but metadata.json declares {declared}. "
                "The vocabulary is truncated or from another bundle; rebuild the bundle."
            )
        self.tokenizer = Tokenizer(TokenizerConfig.from_json(meta["tokenizer"]), vocab)
        self.model = TfliteModel(files[MODEL_FILE], meta["model"], num_threads, runtime)
        self._check_shapes()
        self.golden = self._golden()

    def _check_shapes(self) -> None:
        n_labels, out = len(self.labels), self.model.output_size
        kind = self.metadata.output_kind
        expected = 1 if kind == "sigmoid" else n_labels
        if (kind == "sigmoid" and n_labels != 2) or out != expected:
            raise BundleError(
                f"the model outputs {out} score(s) ({kind}) but the bundle has {n_labels} labels; "
                f"a {kind} head needs {'2 labels' if kind == 'sigmoid' else 'one label per output'}. "
                "labels.txt and model.tflite do not belong together: rebuild the bundle."
            )
        if self.model.max_len != self.tokenizer.config.max_len:
            raise BundleError(
                f"the model takes {self.model.max_len} token ids but the tokenizer produces "
                f"{self.tokenizer.config.max_len}; rebuild the bundle."
            )

    def _golden(self) -> list[dict]:
        try:
            data = json.loads(self.files[GOLDEN_FILE].decode("utf-8"))
            return list(data["vectors"])
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise SchemaError(f"{GOLDEN_FILE} is not a valid golden-vector file ({exc}).") from None

    # -- inference ---------------------------------------------------------------------------
    def scores_for_ids(self, ids: np.ndarray) -> np.ndarray:
        """Per-label scores for one row of token ids (sigmoid heads give [1 - p, p])."""
        raw = self.model.run(np.asarray(ids, dtype=np.int32))
        if self.metadata.output_kind == "sigmoid":
            p = float(raw[0])
            return np.array([1.0 - p, p], dtype=np.float32)
        return raw

    def predict(self, text) -> Prediction:
        scores = self.scores_for_ids(self.tokenizer.encode(text))
        best = int(np.argmax(scores))
        return Prediction(
            label=self.labels[best],
            score=float(scores[best]),
            scores={label: float(s) for label, s in zip(self.labels, scores)},
        )

    def predict_batch(self, texts: Iterable) -> list[Prediction]:
        # The model has a static batch of 1 (a dynamic batch would need Flex ops), so a batch is
        # a loop; tokenizing inside the loop keeps memory flat for long iterables.
        return [self.predict(text) for text in texts]


def load_bundle(path, num_threads: int = 1, runtime: Runtime | None = None) -> Bundle:
    """Load and verify a bundle directory or ``.tar.gz``."""
    if not isinstance(num_threads, int) or num_threads < 1:
        raise BundleError(f"num_threads must be a positive integer, got {num_threads!r}")
    return Bundle(read_bundle_files(path), str(Path(path)), num_threads, runtime)
