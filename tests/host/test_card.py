"""Model cards: a confusion picture for few labels, a top-confusions table for many."""

import xml.etree.ElementTree as ET

from bilite.card import render_bundle_docs
from bilite.charts import confusion_svg, top_confusions


def _meta(labels, matrix, task="classification"):
    per_label = {l: {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1} for l in labels}
    return {
        "name": "x", "description": "d", "task": task, "labels": labels, "created": "now",
        "output": {"kind": "softmax"},
        "tokenizer": {"vocab_size": 10, "profile": "p", "split": "s", "normalization": "NFKC",
                      "lowercase": True, "pad_token": "<pad>", "pad_id": 0, "unk_token": "<unk>",
                      "unk_id": 1, "max_vocab": 10, "min_count": 1, "max_len": 8, "padding": "post",
                      "truncation": "post"},
        "model": {"form": "while", "reset_variables": False, "quantization": "dynamic", "target": "t",
                  "size_bytes": 1, "subgraphs": 1, "min_runtime_version": "1.0",
                  "inputs": [{"name": "i", "dtype": "int32", "shape": [1, 8]}],
                  "outputs": [{"name": "o", "dtype": "float32", "shape": [1, len(labels)]}],
                  "ops": [{"name": "WHILE", "version": 1}],
                  "selection": {"runtime": "r", "candidates": []}},
        "metrics": {"split": "test", "n": 3, "accuracy": 0.5, "macro_f1": 0.5, "per_label": per_label,
                    "keras": {"accuracy": 0.5, "macro_f1": 0.5},
                    "confusion": {"labels": labels, "matrix": matrix}},
        "training": {"dataset": "d", "split_sizes": {"train": 1, "validation": 1, "test": 1}, "seed": 0,
                     "epochs_run": 1, "config": {"model": {"embed_dim": 4, "layers": 1, "cell": "lstm", "units": 4}}},
        "golden": {"count": 20, "keras_max_abs_diff": 0.0, "keras_tolerance": 0.05, "tolerance": 0.001},
        "library_versions": {"bilite": "0", "bilite_device": "0", "tensorflow": "0"},
    }


def test_few_labels_get_a_picture_that_is_valid_svg():
    docs = render_bundle_docs(_meta(["a", "b"], [[3, 1], [0, 2]]), example_text="hello")
    root = ET.fromstring(docs["confusion.svg"])
    assert root.tag.endswith("svg")
    assert "![confusion matrix](confusion.svg)" in docs["README.md"].decode()
    assert 'bilite-device predict x.tar.gz "hello"' in docs["README.md"].decode()


def test_many_labels_get_top_confusions():
    labels = [f"l{i:02d}" for i in range(30)]
    matrix = [[5 if i == j else 0 for j in range(30)] for i in range(30)]
    matrix[3][7], matrix[9][1] = 4, 2
    docs = render_bundle_docs(_meta(labels, matrix), example_text="hello")
    card = docs["README.md"].decode()
    assert "confusion.svg" not in docs and "| l03 | l07 | 4 |" in card
    assert top_confusions(labels, matrix)[:2] == [{"true": "l03", "predicted": "l07", "count": 4},
                                                  {"true": "l09", "predicted": "l01", "count": 2}]


def test_tagger_card_says_tag():
    docs = render_bundle_docs(_meta(["NOUN", "VERB"], [[1, 0], [0, 1]], task="tagging"), example_text="Dogs bark")
    assert 'bilite-device tag x.tar.gz "Dogs bark"' in docs["README.md"].decode()
    assert confusion_svg(["a&b"], [[1]]).count("a&amp;b") == 2
