"""The bundle schema: which files a bundle holds and what metadata.json must say.

Versioning: ``schema_version`` is "MAJOR.MINOR". A reader accepts any minor version of its major
(newer minors only add fields, which are ignored) and refuses another major with a message that
says which bilite-device to install.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .errors import SchemaError

SCHEMA_VERSION = "1.0"
SCHEMA_MAJOR = 1

MODEL_FILE = "model.tflite"
VOCAB_FILE = "vocab.txt"
LABELS_FILE = "labels.txt"
METADATA_FILE = "metadata.json"
GOLDEN_FILE = "golden.json"
CARD_FILE = "README.md"
CHECKSUMS_FILE = "checksums.sha256"
FEATURES_FILE = "features.json"  # suffix vocabularies; only for tokenizers with suffix features
# Files every bundle must have; all but the checksum list are covered by the checksum list.
REQUIRED_FILES = (MODEL_FILE, VOCAB_FILE, LABELS_FILE, METADATA_FILE, GOLDEN_FILE, CHECKSUMS_FILE)

TASKS = ("classification", "tagging")
OUTPUT_KINDS = ("sigmoid", "softmax")
# Conversion forms (see host/bilite/convert.py): only "fused" keeps state between invokes.
FORMS = ("while", "unrolled", "fused")

# Dotted paths that must be present; checked before anything else reads the metadata.
_REQUIRED_FIELDS = (
    "schema_version",
    "task",
    "tokenizer",
    "tokenizer.max_len",
    "tokenizer.vocab_size",
    "labels",
    "model",
    "model.form",
    "model.reset_variables",
    "model.quantization",
    "model.inputs",
    "model.outputs",
    "model.ops",
    "output",
    "output.kind",
    "golden",
    "golden.tolerance",
)


@dataclass(frozen=True)
class Metadata:
    raw: dict

    @property
    def task(self) -> str:
        return self.raw["task"]

    @property
    def labels(self) -> list[str]:
        return list(self.raw["labels"])

    @property
    def model(self) -> dict:
        return self.raw["model"]

    @property
    def output_kind(self) -> str:
        return self.raw["output"]["kind"]

    @property
    def golden_tolerance(self) -> float:
        return float(self.raw["golden"]["tolerance"])  # validated finite and >= 0 at parse time


def _lookup(data: dict, dotted: str):
    node = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


def parse_metadata(blob: bytes) -> Metadata:
    try:
        data = json.loads(blob.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SchemaError(
            f"{METADATA_FILE} is not valid JSON ({exc}). Rebuild the bundle with `bilite build`."
        ) from None
    if not isinstance(data, dict):
        raise SchemaError(f"{METADATA_FILE} must hold a JSON object, saw {type(data).__name__}.")
    version = data.get("schema_version")
    try:
        major = int(str(version).split(".")[0])
    except ValueError:
        raise SchemaError(
            f"{METADATA_FILE} has schema_version {version!r}; expected 'MAJOR.MINOR' such as "
            f"{SCHEMA_VERSION!r}. Rebuild the bundle with `bilite build`."
        ) from None
    if major != SCHEMA_MAJOR:
        raise SchemaError(
            f"bundle schema version {version} is not supported: this bilite-device reads "
            f"{SCHEMA_MAJOR}.x. Install a bilite-device that matches the bilite that built it, "
            "or rebuild the bundle with this version."
        )
    missing = []
    for dotted in _REQUIRED_FIELDS:
        try:
            _lookup(data, dotted)
        except KeyError:
            missing.append(dotted)
    if missing:
        raise SchemaError(
            f"{METADATA_FILE} lacks required field(s): {', '.join(missing)}. The bundle is "
            "incomplete or was edited by hand; rebuild it with `bilite build`."
        )
    problems = []
    if data["task"] not in TASKS:
        problems.append(f"task {data['task']!r} (this bilite-device knows {', '.join(TASKS)})")
    if data["task"] == "tagging" and data["output"]["kind"] != "softmax":
        problems.append("a tagging model needs a softmax output per token")
    if data["output"]["kind"] not in OUTPUT_KINDS:
        problems.append(f"output.kind {data['output']['kind']!r} (expected one of {OUTPUT_KINDS})")
    if data["model"]["form"] not in FORMS:
        problems.append(f"model.form {data['model']['form']!r} (expected one of {FORMS})")
    if len(data["model"]["inputs"]) != 1 or len(data["model"]["outputs"]) != 1:
        problems.append("model must declare exactly one input and one output")
    labels = data["labels"]
    if not isinstance(labels, list) or not all(isinstance(x, str) and x and x.strip() == x and
                                               "\t" not in x for x in labels):
        problems.append("labels must be a list of non-empty one-line label names")
    elif len(set(labels)) != len(labels):
        problems.append(f"labels must be distinct; duplicates in {labels[:10]}")
    tol = data["golden"].get("tolerance") if isinstance(data["golden"], dict) else None
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not (0 <= tol < float("inf")):
        problems.append(f"golden.tolerance must be a finite number >= 0, got {tol!r}")
    if not isinstance(data["model"]["reset_variables"], bool):
        problems.append(f"model.reset_variables must be true or false, got {data['model']['reset_variables']!r}")
    for key in ("max_len", "vocab_size"):
        value = data["tokenizer"][key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            problems.append(f"tokenizer.{key} must be a positive integer, got {value!r}")
    if problems:
        raise SchemaError(f"{METADATA_FILE} is inconsistent: " + "; ".join(problems) + ".")
    return Metadata(data)
