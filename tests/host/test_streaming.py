"""Streaming input: line readers for every format, the hash split, the bounded vocabulary counter,
the tf.data pipeline (ids from the device's own tokenizer), and `bilite build --stream` end to end."""

import json
from collections import Counter

import pytest
from click.testing import CliRunner

from bilite.cli import main
from bilite.data import load_dataset
from bilite.errors import DataError
from bilite.streaming import TEST, TRAIN, VALIDATION, HashSplit, example_dataset, iter_records, open_source
from bilite.vocab_stream import BoundedTokenCounter, stream_vocab, vocab_from_counts
from bilite_device.tokenizer import Tokenizer, TokenizerConfig, build_vocab, split
from conftest import SMS


@pytest.fixture(scope="module")
def sms_lines():
    return SMS.read_bytes().splitlines()


def test_stream_vocab_is_build_vocab_when_the_cap_is_not_hit(sms):
    for config in (TokenizerConfig(), TokenizerConfig(min_count=1, max_vocab=500), TokenizerConfig(min_count=3)):
        vocab, stats = stream_vocab(iter(sms.texts), config, cap=50_000)
        assert vocab == build_vocab(sms.texts, config)
        assert stats.exact and stats.max_undercount == 0 and stats.distinct_kept == 8_283
    assert len(build_vocab(sms.texts, TokenizerConfig())) == 8_285  # pins the data the check ran on
    # Another profile: other special tokens, other splitting rules, the same selection.
    regex = TokenizerConfig(profile="tflite-regex-v1", unk_token="<UNKNOWN>", normalization="none",
                            fold_digits=False, lowercase=False)
    vocab, stats = stream_vocab(iter(sms.texts), regex, cap=50_000)
    assert vocab == build_vocab(sms.texts, regex) and vocab[:2] == ["<PAD>", "<UNKNOWN>"] and len(vocab) == 11_120


def test_bounded_counter_keeps_the_frequent_tokens_within_its_guarantee(sms):
    config = TokenizerConfig()
    exact = Counter(t for text in sms.texts for t in split(text, config))
    counter = BoundedTokenCounter(cap=1_000)
    held = 0
    for text in sms.texts:
        counter.update(split(text, config))
        held = max(held, len(counter.counts))
    stats = counter.stats()
    assert held <= 1_000 and stats.prunings == 44 and stats.tokens == sum(exact.values()) == 110_702
    assert stats.max_undercount <= 2 * stats.tokens / (1_000 + 1)  # the Misra-Gries bound
    for token, estimate in counter.counts.items():  # never over, never under by more than D
        assert exact[token] - stats.max_undercount <= estimate <= exact[token]
    assert all(t in counter.counts for t, c in exact.items() if c > stats.max_undercount)
    top = [t for t, _ in sorted(exact.items(), key=lambda tc: (-tc[1], tc[0]))[:100]]
    assert set(top) <= set(vocab_from_counts(counter.counts, config))
    again, _ = stream_vocab(iter(sms.texts), config, cap=1_000)  # deterministic
    assert again == vocab_from_counts(counter.counts, config)


def test_hash_split_depends_on_the_line_only(sms_lines):
    split_ = HashSplit(seed=0, validation=0.1, test=0.1)
    parts = [split_.part(line) for line in sms_lines]
    assert [split_.part(line) for line in reversed(sms_lines)] == parts[::-1]
    assert Counter(parts) == {TRAIN: 4_525, VALIDATION: 518, TEST: 531}
    other = [HashSplit(seed=1, validation=0.1, test=0.1).part(line) for line in sms_lines]
    assert sum(a != b for a, b in zip(parts, other)) == 1_831  # another seed, another split
    # Duplicated messages always land together (no copy in train and another in test).
    by_line = {}
    for line, part in zip(sms_lines, parts):
        assert by_line.setdefault(line, part) == part


def write_formats(tmp_path, sms):
    """The first 300 SMS messages as CSV (quoted commas and quotes), TSV, JSONL and SMS shards."""
    import csv

    rows = list(zip(sms.texts[:300], sms.labels[:300]))
    with open(tmp_path / "d.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "body", "intent"])
        w.writerows([i, t.replace("\t", " "), y] for i, (t, y) in enumerate(rows))
    with open(tmp_path / "d.tsv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(["body", "intent"])
        w.writerows([t.replace("\t", " "), y] for t, y in rows)
    (tmp_path / "d.jsonl").write_text("".join(json.dumps({"body": t, "intent": y}) + "\n" for t, y in rows))
    shards = tmp_path / "shards"
    shards.mkdir()
    for k in range(3):
        (shards / f"part-{k}.txt").write_text("".join(f"{y}\t{t}\n" for t, y in rows[k::3]), encoding="utf-8")
    return rows


def test_every_format_streams_the_records_the_in_memory_reader_loads(tmp_path, sms):
    rows = write_formats(tmp_path, sms)
    assert sum('"' in t or "," in t for t, _ in rows) == 76  # quoting is exercised
    for name in ("d.csv", "d.tsv", "d.jsonl"):
        source = open_source(tmp_path / name, "auto", "body", "intent")
        streamed = [(text, label) for _, text, label in iter_records(source)]
        loaded = load_dataset(tmp_path / name, "auto", "body", "intent")
        assert streamed == list(zip(loaded.texts, loaded.labels)) and len(streamed) == 300, name
    shards = open_source(str(tmp_path / "shards" / "part-*.txt"))
    assert [f.rsplit("/", 1)[1] for f in shards.files] == ["part-0.txt", "part-1.txt", "part-2.txt"]
    assert sorted((t, y) for _, t, y in iter_records(shards)) == sorted(rows)


def test_stream_errors_name_the_file_line_and_fix(tmp_path):
    (tmp_path / "bad.txt").write_text("ham\tfine\nno tab here\n")
    with pytest.raises(DataError, match=r"bad.txt:2: expected 'label<TAB>text'"):
        list(iter_records(open_source(tmp_path / "bad.txt")))
    (tmp_path / "multi.csv").write_text('text,label\n"two\nlines",ham\n')
    with pytest.raises(DataError, match=r"multi.csv:2: .*every record must sit on one line.*drop --stream"):
        list(iter_records(open_source(tmp_path / "multi.csv")))
    (tmp_path / "a.csv").write_text("text,label\nhi,ham\n")
    (tmp_path / "b.csv").write_text("label,text\nham,hi\n")
    with pytest.raises(DataError, match="differs from .*a.csv's \\['text', 'label'\\]; the shards of one dataset"):
        open_source(str(tmp_path / "*.csv"))
    with pytest.raises(DataError, match="no dataset file matches"):
        open_source(str(tmp_path / "*.nothing"))


def test_pipeline_gives_the_device_tokenizers_ids_in_file_order(sms_lines):
    import numpy as np

    source = open_source(SMS)
    split_ = HashSplit(seed=0, validation=0.1, test=0.1)
    config = TokenizerConfig(max_len=24)
    records = list(iter_records(source))
    tokenizer = Tokenizer(config, build_vocab([t for line, t, _ in records if split_.part(line) == TRAIN], config))
    index = {"ham": 0, "spam": 1}
    for part in (VALIDATION, TEST):
        dataset = example_dataset(source, tokenizer, index, split_, part, batch_size=64, float_labels=False,
                                  examples_count=sum(split_.part(line) == part for line, _, _ in records))
        assert dataset.element_spec[0].shape.as_list() == [None, 24]  # the shape is set, not inferred
        ids = np.concatenate([x for x, _ in dataset.as_numpy_iterator()])
        labels = np.concatenate([y for _, y in dataset.as_numpy_iterator()])
        mine = [(t, y) for line, t, y in records if split_.part(line) == part]
        assert np.array_equal(ids, tokenizer.encode_batch([t for t, _ in mine]))
        assert labels.tolist() == [index[y] for _, y in mine]
    shuffled = example_dataset(source, tokenizer, index, split_, TRAIN, batch_size=512, float_labels=True,
                               shuffle_buffer=1000, seed=0, workers=2, rank=1)
    first = next(shuffled.as_numpy_iterator())
    assert first[0].shape == (512, 24) and first[1].dtype == np.float32 and set(first[1]) == {0.0, 1.0}


def test_stream_build_end_to_end(tmp_path, sms):
    """`bilite build --stream` on a 1,858-message file: hash split, exact vocabulary, the Keras
    model evaluated on the whole streamed test part, and a bundle that passes smoke."""
    from bilite_device import load_bundle
    from bilite_device.smoke import run_smoke

    data = tmp_path / "sms.txt"
    data.write_text("".join(f"{y}\t{t}\n" for t, y in list(zip(sms.texts, sms.labels))[::3]), encoding="utf-8")
    out = tmp_path / "bundle"
    result = CliRunner().invoke(main, ["build", str(data), "--stream", "--out", str(out), "--units", "8",
                                       "--embed-dim", "16", "--epochs", "2", "--max-len", "32",
                                       "--form", "while", "--shuffle-buffer", "500", "--seed", "3"])
    assert result.exit_code == 0, result.output[-3000:]
    meta = json.loads((out / "metadata.json").read_text())
    training = meta["training"]
    sizes = training["split_sizes"]
    assert sum(sizes.values()) == 1_858 and training["split"].startswith("hash split: BLAKE2b-64")
    streamed = training["streamed"]
    assert streamed["vocabulary_counts"]["exact"] and streamed["keras_whole_test"]["n"] == sizes["test"]
    assert streamed["tflite_test_sample"] == {"n": sizes["test"], "of": sizes["test"],
                                              "rule": "the first 20000 test lines in file order"}
    split_ = HashSplit(seed=3, validation=0.1, test=0.1)
    train_texts = [t for line, t, _ in iter_records(open_source(data)) if split_.part(line) == TRAIN]
    assert (out / "vocab.txt").read_text().splitlines() == build_vocab(train_texts, TokenizerConfig(max_len=32,
                                                                                                    min_count=2))
    assert meta["metrics"]["n"] == sizes["test"] and meta["metrics"]["accuracy"] >= 0.93
    assert abs(meta["metrics"]["keras"]["accuracy"] - streamed["keras_whole_test"]["accuracy"]) < 1e-9
    assert run_smoke(load_bundle(out)).ok


@pytest.mark.parametrize("args, message", [
    (["--stream", "--prune", "0.5"], "--prune 0.5 with --stream: pruning fine-tunes on the training texts"),
    (["--vocab-count-cap", "5000"], "--vocab-count-cap 5000 given without --stream"),
    (["--stream", "--vocab-count-cap", "100"], "--vocab-count-cap 100 is below --max-vocab 20000"),
    (["--stream", "--task", "tag"], "apply to classifiers; --task tag trains in memory on one device"),
])
def test_contradictory_scale_options_are_refused(tmp_path, args, message):
    result = CliRunner().invoke(main, ["build", str(SMS), "--out", str(tmp_path / "b"), *args])
    assert result.exit_code == 1 and message in result.output, result.output
