"""``bilite build --stream``: the classifier build for data that need not fit in memory.

1. **Scan**, one pass in Python: every line is parsed, checked (the same errors, with file and
   line, as the in-memory readers) and given its part by the hash split (streaming.py); the
   training part's tokens feed the bounded counter (vocab_stream.py); labels and part sizes are
   counted; and bounded samples are kept: the first training and validation texts (int8
   calibration, parity proofs) and up to ``TEST_SAMPLE`` test texts.
2. **Train** on tf.data pipelines that read the files again every epoch (distributed.py, so
   ``--strategy`` applies as in memory).
3. **Evaluate** the Keras model on the *whole* test part, streamed in batches.
4. **Ship** through the same code as the in-memory build (build.ship_classifier): conversion,
   parity, TFLite metrics, golden vectors and the bundle. TFLite runs one text at a time, so its
   metrics use the test sample (the whole test part when it has at most ``TEST_SAMPLE`` lines);
   the metadata says which.

Memory is bounded by the counter's cap, the shuffle buffer and the samples: not by the data.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from bilite_device.tokenizer import Tokenizer
from bilite_device.tokenizer import split as split_tokens

from .data import Dataset
from .errors import DataError
from .streaming import (PART_NAMES, TEST, TRAIN, VALIDATION, HashSplit, StreamSource, example_dataset,
                        iter_records)
from .vocab_stream import BoundedTokenCounter, CountStats, vocab_from_counts

TEST_SAMPLE = 20_000  # test texts run through TFLite (one invoke each) and offered to the golden set
HEAD_SAMPLE = 400  # first training / validation texts kept (calibration and parity take 200)


@dataclass
class StreamScan:
    """What one pass over the data learned."""

    labels: list[str]
    label_counts: list[Counter]  # per part: label -> lines
    vocab: list[str]
    vocab_stats: CountStats
    samples: list[list[tuple[str, str]]] = field(default_factory=lambda: [[], [], []])  # per part

    def size(self, part: int) -> int:
        return sum(self.label_counts[part].values())


def scan(source: StreamSource, split: HashSplit, config, test_source: StreamSource | None = None) -> StreamScan:
    """One pass over the data (and the test file, if given); see the module's docstring."""
    cfg_tok = config.tokenizer
    counter = BoundedTokenCounter(config.scale.vocab_count_cap)
    label_counts = [Counter(), Counter(), Counter()]
    samples: list[list[tuple[str, str]]] = [[], [], []]
    limits = (HEAD_SAMPLE, HEAD_SAMPLE, TEST_SAMPLE)
    streams = [(source, split)] + ([(test_source, None)] if test_source is not None else [])
    for stream, stream_split in streams:
        for line, text, label in iter_records(stream):
            part = stream_split.part(line) if stream_split is not None else TEST
            label_counts[part][label] += 1
            if part == TRAIN:
                counter.update(split_tokens(text, cfg_tok))
            if len(samples[part]) < limits[part]:
                samples[part].append((text, label))
    labels = sorted(set().union(*label_counts))
    if len(labels) < 2:
        raise DataError(f"{source.describe()}: only the label(s) {labels}; a classifier needs at least two")
    empty = [PART_NAMES[p] for p in (TRAIN, VALIDATION, TEST) if not label_counts[p]]
    if empty:
        raise DataError(f"{source.describe()}: the hash split left the {' and '.join(empty)} part(s) empty "
                        f"(sizes {[sum(c.values()) for c in label_counts]}); streaming needs more lines, "
                        "or drop --stream for a stratified split of a small file")
    unknown = sorted(set(label_counts[TEST]) - set(label_counts[TRAIN]))
    if test_source is not None and unknown:
        raise DataError(f"the test data has label(s) {unknown[:10]} that the training data lacks")
    return StreamScan(labels, label_counts, vocab_from_counts(counter.counts, cfg_tok), counter.stats(), samples)


def streamed_datasets(source, tokenizer, label_index, split, config, float_labels: bool, sizes: list[int]):
    """make_datasets(role) for distributed.train_on_datasets; ``sizes``: the scan's part sizes."""
    from .distributed import global_steps

    cfg_train, scale = config.train, config.scale

    def make(role):
        def part(p, shuffle):
            return example_dataset(source, tokenizer, label_index, split, p, cfg_train.batch_size,
                                   float_labels=float_labels, shuffle_buffer=scale.shuffle_buffer if shuffle else 0,
                                   seed=cfg_train.seed, workers=role.workers, rank=role.rank,
                                   repeat=role.workers > 1, examples_count=sizes[p])
        return (part(TRAIN, True), part(VALIDATION, False),
                global_steps(sizes[TRAIN], cfg_train.batch_size, role),
                global_steps(sizes[VALIDATION], cfg_train.batch_size, role))
    return make


def evaluate_streamed(keras_model, source, tokenizer, label_index, split, part, batch_size: int, labels,
                      sigmoid: bool, examples_count: int | None = None) -> dict:
    """Keras accuracy and confusion matrix over a whole part, batch by batch (memory stays flat)."""
    dataset = example_dataset(source, tokenizer, label_index, split, part, max(256, batch_size),
                              float_labels=False, examples_count=examples_count)
    confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for ids, y in dataset.as_numpy_iterator():
        raw = np.asarray(keras_model.predict_on_batch(ids))
        # As predict_scores' argmax over [1 - p, p]: a tie goes to the first label.
        predicted = (raw[:, 0] > 0.5).astype(np.int64) if sigmoid else raw.argmax(1)
        np.add.at(confusion, (y, predicted), 1)
    n = int(confusion.sum())
    return {"n": n, "accuracy": float(np.trace(confusion) / n) if n else 0.0,
            "confusion": {"labels": list(labels), "matrix": confusion.tolist()}, "evaluated_on": "keras"}


def build_streaming(source: StreamSource, config, out_dir, name: str | None = None,
                    device_python: str | None = None, test_source: StreamSource | None = None, log=print):
    """The streamed classifier build; returns build.BuildResult, or None on a non-chief worker."""
    from .build import TrainedClassifier, ship_classifier
    from .destination import check_output
    from .distributed import train_on_datasets
    from .keras_model import sigmoid_head

    check_output(out_dir, name)

    t0 = time.perf_counter()
    cfg_tok, cfg_model, cfg_train = config.tokenizer, config.model, config.train
    split = HashSplit(cfg_train.seed, cfg_train.validation_fraction,
                      0.0 if test_source is not None else cfg_train.test_fraction)
    found = scan(source, split, config, test_source)
    sizes = [found.size(p) for p in (TRAIN, VALIDATION, TEST)]
    labels = found.labels
    shown = labels if len(labels) <= 10 else labels[:10] + [f"… {len(labels)} in all"]
    log(f"data (streamed): {sum(sizes)} texts from {source.describe()}; labels {shown}; split "
        f"{sizes[0]}/{sizes[1]}/{sizes[2]} (train/validation/test, hash of each line, seed {cfg_train.seed}"
        + (f"; test set {test_source.describe()}" if test_source is not None else "") + ")")
    stats = found.vocab_stats
    tokenizer = Tokenizer(cfg_tok, found.vocab)
    log(f"vocabulary: {len(tokenizer)} tokens (cap {cfg_tok.max_vocab}, min count {cfg_tok.min_count}; "
        f"{stats.tokens} tokens counted, " + ("exactly" if stats.exact else
                                              f"{stats.prunings} prunings at {stats.cap} distinct, counts "
                                              f"low by at most {stats.max_undercount}") + f"); max_len {cfg_tok.max_len}")
    index = {label: i for i, label in enumerate(labels)}
    float_labels = sigmoid_head(cfg_model, len(labels))
    make = streamed_datasets(source, tokenizer, index, split, config, float_labels, sizes)
    log(f"training: Bidirectional({cfg_model.cell.upper()} {cfg_model.units}) x {cfg_model.layers}, "
        f"embedding {cfg_model.embed_dim}, streamed (shuffle buffer {config.scale.shuffle_buffer})")
    keras_model, history = train_on_datasets(cfg_model, cfg_train, config.scale, len(tokenizer), len(labels),
                                             cfg_tok.max_len, make, log=log)
    if keras_model is None:
        return None
    test_stream, test_split = (test_source, None) if test_source is not None else (source, split)
    full_test = evaluate_streamed(keras_model, test_stream, tokenizer, index, test_split, TEST,
                                  cfg_train.batch_size, labels, float_labels, sizes[TEST])
    log(f"keras accuracy on the whole test part (streamed): {full_test['accuracy']:.4f} (n={full_test['n']})")

    def arrays(part):
        texts = [t for t, _ in found.samples[part]]
        return tokenizer.encode_batch(texts), np.array([index[y] for _, y in found.samples[part]], dtype=np.int64)

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (arrays(p) for p in (TRAIN, VALIDATION, TEST))
    test = Dataset([t for t, _ in found.samples[TEST]], [y for _, y in found.samples[TEST]],
                   test_stream.describe())
    training = {
        "dataset": source.describe(), "files": list(source.files),
        "test_set": test_source.describe() if test_source is not None else "hash split",
        "split_sizes": dict(zip(PART_NAMES, sizes)), "split": split.describe(),
        "streamed": {"vocabulary_counts": stats.to_json(), "keras_whole_test": full_test,
                     "tflite_test_sample": {"n": len(test), "of": sizes[TEST],
                                            "rule": f"the first {TEST_SAMPLE} test lines in file order"}},
    }
    return ship_classifier(TrainedClassifier(keras_model, history, tokenizer, labels, x_train, y_train, x_val,
                                             y_val, x_test, y_test, test, training),
                           config, out_dir, name, device_python, t0, log)
