"""``bilite build --task tag``: a BiRNN part-of-speech tagger on CoNLL-U data, bundled.

Inputs per token: the word id plus case and suffix features (``bilite_device.features``), so
unknown words still get a good guess; the device computes the same features from the same code.
Sentences longer than ``max_len`` are cut into consecutive windows for training and for the
test metrics; the device tags long texts in overlapping windows (``bilite_device.tagging``).
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from bilite_device.features import SUFFIX_FEATURES, build_feature_vocabs
from bilite_device.model import TfliteModel
from bilite_device.schema import FEATURES_FILE, GOLDEN_FILE, SCHEMA_VERSION, VOCAB_FILE
from bilite_device.tokenizer import Tokenizer, build_vocab, normalize_token

from .build import BuildResult, bundle_files, choose_model, finish, library_versions
from .config import BuildConfig
from .conllu import TaggedCorpus
from .destination import check_output
from .golden import make_golden
from .metrics import classification_metrics
from .prune import prune_after_training
from .target import TargetRunner, find_device_python

TAGGER_FEATURES = ("word", "case", "suffix2", "suffix3")
GOLDEN_EDGE_WORDS = ([], ["\U0001F600"], ["!", "?", "..."], ["THE", "QUICK", "BROWN", "FOX"])


def tagger_config(config: BuildConfig) -> BuildConfig:
    """The tagger's tokenizer: UD-style English clitics, and the word-shape features."""
    return replace(config, tokenizer=replace(config.tokenizer, features=TAGGER_FEATURES, clitics="english"))


def windows_of(corpus: TaggedCorpus, size: int) -> tuple[list[list[str]], list[list[str]]]:
    words, tags = [], []
    for sent, sent_tags in zip(corpus.sentences, corpus.tags):
        for start in range(0, len(sent), size):
            words.append(sent[start : start + size])
            tags.append(sent_tags[start : start + size])
    return words, tags


def encode(tokenizer: Tokenizer, windows: list[list[str]], tags: list[list[str]], index: dict):
    x = np.stack([tokenizer.encode_words(w) for w in windows])
    y = np.full((len(windows), tokenizer.config.max_len), -1, dtype=np.int64)
    for i, row in enumerate(tags):
        ids = [index.get(t, -1) for t in row]
        if tokenizer.config.padding == "post":
            y[i, : len(ids)] = ids
        else:
            y[i, tokenizer.config.max_len - len(ids) :] = ids
    return x, y


def token_metrics(y: np.ndarray, scores: np.ndarray, labels: list[str]) -> dict:
    real = y >= 0
    return classification_metrics(y[real], scores.argmax(axis=-1)[real], labels)


def build_tagger(train: TaggedCorpus, val: TaggedCorpus, test: TaggedCorpus, config: BuildConfig,
                 out_dir, name: str | None = None, device_python: str | None = None,
                 log=print) -> BuildResult:
    t0 = time.perf_counter()
    check_output(out_dir, name)
    config = tagger_config(config)
    cfg_tok, cfg_model, cfg_train = config.tokenizer, config.model, config.train
    labels = train.tag_names()
    index = {t: i for i, t in enumerate(labels)}
    log(f"data: {len(train)}/{len(val)}/{len(test)} sentences (train/validation/test) from "
        f"{train.source}; {len(labels)} tags {labels}")

    train_words = [w for sent in train.sentences for w in sent]
    vocab = build_vocab(train_words, cfg_tok, pretokenized=True)
    normalized = [t for t in (normalize_token(w, cfg_tok) for w in train_words) if t]
    feature_vocabs = build_feature_vocabs(normalized, cfg_tok.features)
    tokenizer = Tokenizer(cfg_tok, vocab, feature_vocabs)
    log(f"vocabulary: {len(vocab)} words; features {list(cfg_tok.features)} "
        f"({', '.join(f'{k} {len(v)}' for k, v in feature_vocabs.items())}); max_len {cfg_tok.max_len}")
    splits = [windows_of(c, cfg_tok.max_len) for c in (train, val, test)]
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (encode(tokenizer, w, t, index) for w, t in splits)
    extra = tuple((f, 6 if f == "case" else len(feature_vocabs[f])) for f in cfg_tok.features[1:])
    model_kwargs = {"tagging": True, "extra_features": extra}

    from .keras_model import predict_scores, train_model

    log(f"training: Bidirectional({cfg_model.cell.upper()} {cfg_model.units}) x {cfg_model.layers} tagger")
    keras_model, history = train_model(cfg_model, cfg_train, len(vocab), len(labels), cfg_tok.max_len,
                                       x_train, y_train, x_val, y_val, log=log, **model_kwargs)
    pruning = prune_after_training(keras_model, config, len(vocab), labels, x_train, y_train, x_val, y_val,
                                   log=log, **model_kwargs)
    keras_test = token_metrics(y_test, predict_scores(keras_model, x_test), labels)
    log(f"keras test token accuracy {keras_test['accuracy']:.4f}")

    target = TargetRunner(find_device_python(device_python, config.convert.target))
    chosen, model_meta, quantization, sweep = choose_model(
        keras_model, config, len(vocab), labels, x_train, x_val, x_test, y_test, target, log,
        metrics_fn=token_metrics, **model_kwargs)
    tflite = TfliteModel(chosen.model_bytes, model_meta, num_threads=1)
    tflite_test = np.stack([tflite.run(row) for row in x_test])
    metrics = token_metrics(y_test, tflite_test, labels)
    metrics.update({"evaluated_on": "tflite", "split": "test", "unit": "token",
                    "keras": {"accuracy": keras_test["accuracy"], "macro_f1": keras_test["macro_f1"]}})
    log(f"tflite test token accuracy {metrics['accuracy']:.4f}, macro F1 {metrics['macro_f1']:.4f}")

    picks = [s for s in test.sentences if 3 <= len(s) <= cfg_tok.max_len]
    golden_words = list(GOLDEN_EDGE_WORDS) + picks[:: max(1, len(picks) // 20)][:20]
    golden = make_golden([{"words": w} for w in golden_words],
                         np.stack([tokenizer.encode_words(w) for w in golden_words]),
                         chosen.model_bytes, model_meta, labels,
                         lambda ids: predict_scores(keras_model, ids), quantization,
                         sigmoid=False, fresh_scores=target.fresh_scores)
    golden["computed_on"] = model_meta["selection"]["runtime"]

    meta = {
        "schema_version": SCHEMA_VERSION,
        "name": name or Path(out_dir).name,
        "description": f"Bidirectional {cfg_model.cell.upper()} token tagger built by bilite.",
        "task": "tagging",
        "created": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "labels": labels,
        "output": {"kind": "softmax", "per_token": True},
        "tokenizer": {**cfg_tok.to_json(), "vocab_file": VOCAB_FILE, "vocab_size": len(vocab),
                      "features_file": FEATURES_FILE},
        "model": model_meta,
        "metrics": metrics,
        "quantization_sweep": sweep,
        "pruning": (pruning.report(chosen, quantization, x_test, y_test, target, log, metrics_fn=token_metrics)
                    if pruning else None),
        "golden": {"file": GOLDEN_FILE, "count": len(golden["vectors"]),
                   **{k: v for k, v in golden.items() if k != "vectors"}},
        "training": {"dataset": train.source, "validation_set": val.source, "test_set": test.source,
                     "config": config.to_json(), "seed": cfg_train.seed,
                     "split_sizes": {"train": len(train), "validation": len(val), "test": len(test)},
                     "epochs_run": len(history.get("loss", [])), "history": history},
        "library_versions": library_versions(),
    }
    features = {k: feature_vocabs[k] for k in SUFFIX_FEATURES if k in feature_vocabs}
    make_files = lambda m: bundle_files(  # noqa: E731
        chosen.model_bytes, vocab, labels, m, golden,
        example_text="The quick brown fox didn't jump over 2 lazy dogs.",
        extra={FEATURES_FILE: (json.dumps(features, ensure_ascii=False) + "\n").encode("utf-8")})
    files = pruning.bundle_with_sizes(meta, make_files, out_dir) if pruning else make_files(meta)
    return finish(out_dir, files, meta, target, t0, log)
