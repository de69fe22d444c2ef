"""A loaded, verified bundle: tokenize -> interpret -> postprocess.

``load_bundle`` checks everything it can before the first prediction: checksums, schema version,
required fields, vocabulary and label counts against metadata and against the model's tensors,
and the runtime version the model needs. Any mismatch is a typed error, never a wrong answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import numpy as np

from .bundle_files import read_bundle_files
from .errors import BundleError, InputError, SchemaError
from .model import TfliteModel
from .runtime import Runtime
from .schema import (FEATURES_FILE, GOLDEN_FILE, LABELS_FILE, METADATA_FILE, MODEL_FILE, VOCAB_FILE,
                     Metadata, parse_metadata)
from .tokenizer import Tokenizer, TokenizerConfig

if TYPE_CHECKING:
    from .tagging import TaggedWord


@dataclass(frozen=True)
class ClassifierOptions:
    """Which categories ``classify`` returns, as in MediaPipe's ClassifierOptions.

    ``top_k``: at most this many, best first (None: all); ``score_threshold``: only scores at or
    above it; ``allow`` / ``deny``: only these labels / never these labels (not both at once).
    """

    top_k: int | None = None
    score_threshold: float | None = None
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()

    def __post_init__(self):
        if self.top_k is not None and (isinstance(self.top_k, bool) or not isinstance(self.top_k, int)
                                       or self.top_k < 1):
            raise InputError(f"top_k must be a positive integer or None, got {self.top_k!r}")
        if self.score_threshold is not None and (
                isinstance(self.score_threshold, bool) or not isinstance(self.score_threshold, (int, float))
                or not 0 <= self.score_threshold <= 1):
            raise InputError(f"score_threshold must be a number from 0 to 1, got {self.score_threshold!r}")
        for name in ("allow", "deny"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(x, str) for x in value):
                raise InputError(f"{name} must be a list of label names, got {value!r}")
        if self.allow and self.deny:
            raise InputError("give an allow-list or a deny-list of labels, not both")
        object.__setattr__(self, "allow", tuple(self.allow))
        object.__setattr__(self, "deny", tuple(self.deny))

    def check_labels(self, labels: list[str]) -> None:
        unknown = sorted(set(self.allow + self.deny) - set(labels))
        if unknown:
            raise InputError(f"unknown label(s) {unknown} in the allow/deny list; this bundle's "
                             f"labels are {labels[:20]}{' …' if len(labels) > 20 else ''}")


@dataclass(frozen=True)
class Category:
    label: str
    score: float


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
        self.tokenizer = Tokenizer(TokenizerConfig.from_json(meta["tokenizer"]), vocab,
                                   self._feature_vocabs())
        self.model = TfliteModel(files[MODEL_FILE], meta["model"], num_threads, runtime)
        self._check_shapes()
        self.golden = self._golden()

    def _feature_vocabs(self) -> dict[str, list[str]]:
        if FEATURES_FILE not in self.files:
            return {}
        try:
            data = json.loads(self.files[FEATURES_FILE].decode("utf-8"))
            return {str(k): [str(t) for t in v] for k, v in data.items()}
        except (UnicodeDecodeError, json.JSONDecodeError, AttributeError, TypeError) as exc:
            raise SchemaError(f"{FEATURES_FILE} is not a valid feature-vocabulary file ({exc}).") from None

    def _check_shapes(self) -> None:
        n_labels, shape = len(self.labels), self.model.output_shape
        kind, tagging = self.metadata.output_kind, self.metadata.task == "tagging"
        expected = (self.tokenizer.config.max_len, n_labels) if tagging else (1 if kind == "sigmoid" else n_labels,)
        if (kind == "sigmoid" and n_labels != 2) or shape != expected:
            raise BundleError(
                f"the model outputs shape {list(shape)} ({kind}) but the bundle has {n_labels} labels; "
                f"expected {list(expected)}. labels.txt and model.tflite do not belong together: "
                "rebuild the bundle."
            )
        if (self.model.max_len, self.model.input_width) != (self.tokenizer.config.max_len, self.tokenizer.width):
            raise BundleError(
                f"the model takes {self.model.max_len} x {self.model.input_width} ids per text but the "
                f"tokenizer produces {self.tokenizer.config.max_len} x {self.tokenizer.width}; "
                "rebuild the bundle."
            )

    def _golden(self) -> list[dict]:
        try:
            data = json.loads(self.files[GOLDEN_FILE].decode("utf-8"))
            return list(data["vectors"])
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise SchemaError(f"{GOLDEN_FILE} is not a valid golden-vector file ({exc}).") from None

    # -- inference ---------------------------------------------------------------------------
    def scores_for_ids(self, ids: np.ndarray) -> np.ndarray:
        """Per-label scores for one input (sigmoid heads give [1 - p, p]; taggers [max_len, C])."""
        raw = self.model.run(np.asarray(ids, dtype=np.int32))
        if self.metadata.output_kind == "sigmoid":
            p = float(raw[0])
            return np.array([1.0 - p, p], dtype=np.float32)
        return raw

    def _require(self, task: str, call: str) -> None:
        if self.metadata.task != task:
            other = "tag(text) or tag_tokens(words)" if self.metadata.task == "tagging" else "predict(text)"
            raise InputError(f"this bundle is a {self.metadata.task} model: {call} needs a {task} "
                             f"bundle; use {other}")

    def tag(self, text) -> list[TaggedWord]:
        """One entry per word of ``text``: word, start/end offsets, tag, score (any length)."""
        self._require("tagging", "tag()")
        from .tagging import tag_text

        return tag_text(self, text)

    def tag_tokens(self, words: list[str]) -> list[TaggedWord]:
        """Tags for pre-tokenized words (one entry per given word)."""
        self._require("tagging", "tag_tokens()")
        if isinstance(words, (str, bytes)) or not isinstance(words, (list, tuple)) or \
                not all(isinstance(w, str) and w.strip() and not any(c.isspace() for c in w) for w in words):
            raise InputError("tag_tokens() takes a list of words: non-empty strings without spaces "
                             "(use tag(text) for raw text)")
        from .tagging import tag_words

        return tag_words(self, list(words))

    def predict(self, text) -> Prediction:
        self._require("classification", "predict()")
        scores = self.scores_for_ids(self.tokenizer.encode(text))
        best = int(np.argmax(scores))
        return Prediction(
            label=self.labels[best],
            score=float(scores[best]),
            scores={label: float(s) for label, s in zip(self.labels, scores)},
        )

    def classify(self, text, options: ClassifierOptions | None = None) -> list[Category]:
        """Categories for ``text``, best first, filtered by ``options``."""
        self._require("classification", "classify()")
        options = options or ClassifierOptions()
        if not isinstance(options, ClassifierOptions):
            raise InputError(f"options must be a ClassifierOptions, got {type(options).__name__}")
        options.check_labels(self.labels)
        scores = self.scores_for_ids(self.tokenizer.encode(text))
        order = np.argsort(-scores, kind="stable")
        out = []
        for i in order:
            label, score = self.labels[i], float(scores[i])
            if options.allow and label not in options.allow or label in options.deny:
                continue
            if options.score_threshold is not None and score < options.score_threshold:
                continue
            out.append(Category(label, score))
            if options.top_k is not None and len(out) == options.top_k:
                break
        return out

    def predict_batch(self, texts: Iterable) -> list[Prediction]:
        # The model has a static batch of 1 (a dynamic batch would need Flex ops), so a batch is
        # a loop; tokenizing inside the loop keeps memory flat for long iterables.
        return [self.predict(text) for text in texts]


MAX_THREADS = 64


def load_bundle(path, num_threads: int = 1, runtime: Runtime | None = None) -> Bundle:
    """Load and verify a bundle directory or ``.tar.gz``."""
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or not 1 <= num_threads <= MAX_THREADS:
        raise BundleError(f"num_threads must be an integer from 1 to {MAX_THREADS}, got {num_threads!r}")
    if not isinstance(path, (str, Path)) or not str(path):
        raise BundleError(f"expected the path of a bundle directory or .tar.gz, got {path!r}")
    files = read_bundle_files(path)
    try:
        return Bundle(files, str(Path(path)), num_threads, runtime)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        # metadata that parses but has a field of the wrong type: a damaged bundle, not a crash
        raise SchemaError(f"metadata.json, golden.json or features.json of {path} has a field of the "
                          f"wrong type or shape ({type(exc).__name__}: {exc}); rebuild the bundle.") from None
