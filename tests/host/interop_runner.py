"""Classify texts with a third-party runtime; run by test_interop.py inside ``.venv/interop``.

That environment holds the TFLite Task Library (tflite-support) and MediaPipe, never bilite or
TensorFlow: tflite-support pins protobuf<4, which TensorFlow 2.21 cannot live with. So this file
imports nothing from bilite. It reads a JSON request on stdin and prints one JSON answer:

  {"runtime": "task_library" | "mediapipe", "texts": [...], "models": {"key": "path.tflite"},
   "official_writer": {...}}   (optional, task_library only; see write_official)

-> {"runtime": ..., "versions": {...}, "results": {"key": [{label: score} per text]}, ...}
   or {"unavailable": "why"} when the runtime cannot be imported here.
Each runtime runs in its own process: both embed their own TFLite, which must not meet.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from importlib import metadata


def load_task_library():
    # tflite-support's native modules link libusb-1.0.so.0, which many machines lack. The
    # libusb-package wheel ships it with that soname; loaded globally first, it satisfies them.
    try:
        import libusb_package

        ctypes.CDLL(os.path.join(os.path.dirname(libusb_package.__file__), "libusb-1.0.so"),
                    mode=ctypes.RTLD_GLOBAL)
    except (ImportError, OSError):
        pass  # a system libusb-1.0 may still be there
    from tflite_support.task import text

    return text


def classify_task_library(paths: dict, texts: list[str]) -> dict:
    text = load_task_library()
    results = {}
    for key, path in paths.items():
        classifier = text.NLClassifier.create_from_file(path)
        results[key] = [{c.category_name: c.score for c in classifier.classify(t).classifications[0].categories}
                        for t in texts]
    return results


def classify_mediapipe(paths: dict, texts: list[str]) -> dict:
    from mediapipe.tasks.python import BaseOptions
    from mediapipe.tasks.python import text

    results = {}
    for key, path in paths.items():
        options = text.TextClassifierOptions(base_options=BaseOptions(model_asset_path=path))
        with text.TextClassifier.create_from_options(options) as classifier:
            results[key] = [{c.category_name: c.score for c in classifier.classify(t).classifications[0].categories}
                            for t in texts]
    return results


def write_official(spec: dict) -> dict:
    """Add metadata to ``spec["plain"]`` with tflite-support's own NL classifier writer, write it
    to ``spec["out"]``, and return both files' metadata as tflite-support displays it."""
    load_task_library()
    from tflite_support import metadata as tfl_metadata
    from tflite_support.metadata_writers import metadata_info, nl_classifier, writer_utils

    plain = open(spec["plain"], "rb").read()
    workdir = os.path.dirname(spec["out"])
    vocab_path, labels_path = os.path.join(workdir, "vocab.txt"), os.path.join(workdir, "labels.txt")
    with open(vocab_path, "w", encoding="utf-8") as f:
        f.writelines(f"{token} {i}\n" for i, token in enumerate(spec["vocab"]))
    with open(labels_path, "w", encoding="utf-8") as f:
        f.writelines(f"{label}\n" for label in spec["labels"])
    writer = nl_classifier.MetadataWriter.create_from_metadata_info(
        plain,
        general_md=metadata_info.GeneralMd(name=spec["name"], description=spec["description"],
                                           version=spec["version"], author=spec["author"]),
        input_md=metadata_info.InputTextTensorMd(
            name="input_text",
            description="Embedding vectors representing the input text to be classified.",
            tokenizer_md=metadata_info.RegexTokenizerMd(spec["delim_regex"], vocab_path)),
        output_md=metadata_info.ClassificationTensorMd(
            name="probability", description="Probabilities of the labels respectively.",
            label_files=[metadata_info.LabelFileMd(labels_path)],
            tensor_type=writer_utils.get_output_tensor_types(plain)[0]))
    with open(spec["out"], "wb") as f:
        f.write(writer.populate())

    def shown(path):
        displayer = tfl_metadata.MetadataDisplayer.with_model_file(path)
        return {"json": json.loads(displayer.get_metadata_json()),
                "files": sorted(displayer.get_packed_associated_file_list())}

    return {"official": shown(spec["out"]), "bilite": shown(spec["bilite"])}


def main() -> int:
    request = json.load(sys.stdin)
    runtime = request["runtime"]
    package = {"task_library": "tflite-support", "mediapipe": "mediapipe"}[runtime]
    try:
        versions = {package: metadata.version(package), "python": sys.version.split()[0]}
        classify = classify_task_library if runtime == "task_library" else classify_mediapipe
        if runtime == "task_library":
            load_task_library()
        else:
            from mediapipe.tasks.python import text  # noqa: F401
    except (ImportError, OSError, metadata.PackageNotFoundError) as exc:
        print(json.dumps({"unavailable": f"{package} does not import in {sys.prefix}: "
                                         f"{type(exc).__name__}: {exc}"}))
        return 0
    answer = {"runtime": runtime, "versions": versions}
    if request.get("official_writer"):  # first: it writes a model that is classified below
        answer["official_writer"] = write_official(request["official_writer"])
    answer["results"] = classify(request["models"], request["texts"])
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
