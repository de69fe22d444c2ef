"""Every way a bundle can be wrong gets a typed error that names the problem."""

import io
import json
import tarfile

import pytest

from bilite_device import (ArchiveError, BundleError, ChecksumError, IncompatibleRuntimeError,
                           ModelError, SchemaError, load_bundle)
from bilite_device.bundle_files import MAX_TOTAL_BYTES

from conftest import WHILE_BUNDLE, read_dir, write_dir


@pytest.fixture
def files():
    return read_dir(WHILE_BUNDLE)


def _meta(files):
    return json.loads(files["metadata.json"])


def _with_meta(files, meta):
    return {**files, "metadata.json": json.dumps(meta).encode()}


def test_missing_bundle(tmp_path):
    with pytest.raises(BundleError, match="not found"):
        load_bundle(tmp_path / "nope")


@pytest.mark.parametrize("name", ["model.tflite", "vocab.txt", "labels.txt", "metadata.json",
                                  "golden.json", "checksums.sha256"])
def test_missing_file(tmp_path, files, name):
    del files[name]
    with pytest.raises(BundleError, match=f"missing {name}"):
        load_bundle(write_dir(tmp_path / "b", files, rechecksum=False))


@pytest.mark.parametrize("name", ["model.tflite", "vocab.txt", "labels.txt", "metadata.json",
                                  "golden.json", "README.md", "INSTALL.md"])
def test_one_flipped_byte_in_any_file(tmp_path, files, name):
    blob = bytearray(files[name])
    blob[len(blob) // 2] ^= 0x01
    files[name] = bytes(blob)
    with pytest.raises(ChecksumError, match=f"checksum mismatch.*{name}"):
        load_bundle(write_dir(tmp_path / "b", files, rechecksum=False))


def test_truncated_model(tmp_path, files):
    files["model.tflite"] = files["model.tflite"][: len(files["model.tflite"]) // 3]
    with pytest.raises(ModelError, match="truncated or corrupt"):
        load_bundle(write_dir(tmp_path / "b", files))


def test_not_a_model(tmp_path, files):
    files["model.tflite"] = b"<html>404</html>"
    with pytest.raises(ModelError, match="not a TFLite flatbuffer"):
        load_bundle(write_dir(tmp_path / "b", files))


def test_metadata_not_json(tmp_path, files):
    files["metadata.json"] = b"{not json"
    with pytest.raises(SchemaError, match="not valid JSON"):
        load_bundle(write_dir(tmp_path / "b", files))


def test_unknown_schema_major(tmp_path, files):
    meta = _meta(files)
    meta["schema_version"] = "2.0"
    with pytest.raises(SchemaError, match="schema version 2.0 is not supported"):
        load_bundle(write_dir(tmp_path / "b", _with_meta(files, meta)))


def test_newer_minor_with_unknown_fields_is_accepted(tmp_path, files):
    meta = _meta(files)
    meta["schema_version"] = "1.7"
    meta["something_new"] = {"x": 1}
    meta["tokenizer"]["future_rule"] = True
    bundle = load_bundle(write_dir(tmp_path / "b", _with_meta(files, meta)))
    assert bundle.predict("hello").label in ("ham", "spam")


@pytest.mark.parametrize("field", ["task", "tokenizer.max_len", "model.reset_variables", "golden"])
def test_missing_field(tmp_path, files, field):
    meta = _meta(files)
    node = meta
    *parents, last = field.split(".")
    for part in parents:
        node = node[part]
    del node[last]
    with pytest.raises(SchemaError, match=f"lacks required field.*{field}"):
        load_bundle(write_dir(tmp_path / "b", _with_meta(files, meta)))


def test_label_count_does_not_match_the_model(tmp_path, files):
    meta = _meta(files)
    meta["labels"] = ["ham", "spam", "eggs"]
    files["labels.txt"] = b"ham\nspam\neggs\n"
    with pytest.raises(BundleError, match=r"outputs shape \[1\] \(sigmoid\) but the bundle has 3 labels"):
        load_bundle(write_dir(tmp_path / "b", _with_meta(files, meta)))


def test_labels_file_disagrees_with_metadata(tmp_path, files):
    files["labels.txt"] = b"spam\nham\n"
    with pytest.raises(BundleError, match="labels.txt lists"):
        load_bundle(write_dir(tmp_path / "b", files))


def test_vocab_with_duplicates(tmp_path, files):
    vocab = files["vocab.txt"].decode().splitlines()
    vocab[5] = vocab[4]
    files["vocab.txt"] = ("\n".join(vocab) + "\n").encode()
    with pytest.raises(BundleError, match=rf"1 duplicate token\(s\): id 5 {vocab[4]!r} repeats id 4.*Rebuild the bundle"):
        load_bundle(write_dir(tmp_path / "b", files))


def test_vocab_shorter_than_metadata_says(tmp_path, files):
    vocab = files["vocab.txt"].decode().splitlines()
    files["vocab.txt"] = ("\n".join(vocab[:-10]) + "\n").encode()
    with pytest.raises(BundleError, match=f"{len(vocab) - 10} entries but metadata.json declares {len(vocab)}"):
        load_bundle(write_dir(tmp_path / "b", files))


def test_model_needing_a_newer_runtime_is_refused_before_loading(tmp_path, files):
    from bilite_device.runtime import Runtime, find_runtime
    from bilite_device.tflite_file import read_tflite_facts

    recorded = read_tflite_facts(files["model.tflite"]).min_runtime_version
    assert recorded, "converter no longer records min_runtime_version"
    old = Runtime("tflite-runtime", "1.0.0", find_runtime().interpreter_class)
    with pytest.raises(IncompatibleRuntimeError, match=f"needs TFLite runtime {recorded}.*1.0.0"):
        load_bundle(write_dir(tmp_path / "b", files), runtime=old)


def test_stateful_model_without_reset_is_refused(tmp_path):
    from conftest import FUSED_BUNDLE

    files = read_dir(FUSED_BUNDLE)
    meta = _meta(files)
    meta["model"]["reset_variables"] = False
    with pytest.raises(ModelError, match="variable tensors"):
        load_bundle(write_dir(tmp_path / "b", _with_meta(files, meta)))


# -- archives ---------------------------------------------------------------------------------

def _tar(tmp_path, members, name="bad.tar.gz"):
    path = tmp_path / name
    with tarfile.open(path, "w:gz") as tar:
        for info, blob in members:
            tar.addfile(info, io.BytesIO(blob) if blob is not None else None)
    return path


def _file(name, blob):
    info = tarfile.TarInfo(name)
    info.size = len(blob)
    return info, blob


def _good_members(files):
    return [_file(f"b/{name}", blob) for name, blob in files.items()]


@pytest.mark.parametrize("evil", ["../evil.txt", "b/../../evil.txt", "/tmp/evil.txt"])
def test_archive_paths_outside(tmp_path, files, evil):
    path = _tar(tmp_path, _good_members(files) + [_file(evil, b"x")])
    with pytest.raises(ArchiveError, match="outside|absolute"):
        load_bundle(path)
    assert not (tmp_path.parent / "evil.txt").exists()


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE])
def test_archive_links(tmp_path, files, kind):
    link = tarfile.TarInfo("b/vocab.txt")
    link.type = kind
    link.linkname = "/etc/passwd"
    others = [m for m in _good_members(files) if m[0].name != "b/vocab.txt"]
    with pytest.raises(ArchiveError, match="is a link"):
        load_bundle(_tar(tmp_path, others + [(link, None)]))


def test_archive_device_file(tmp_path, files):
    dev = tarfile.TarInfo("b/null")
    dev.type = tarfile.CHRTYPE
    dev.devmajor, dev.devminor = 1, 3
    with pytest.raises(ArchiveError, match="device"):
        load_bundle(_tar(tmp_path, _good_members(files) + [(dev, None)]))


def test_archive_declaring_a_huge_size_is_refused_before_reading(tmp_path):
    # Only a header that declares 512 MB + 1 of content, and no content: the reader must refuse
    # from the header alone, before it reads (or decompresses) anything.
    info = tarfile.TarInfo("b/zeros")
    info.size = MAX_TOTAL_BYTES + 1
    bomb = tmp_path / "bomb.tar"
    bomb.write_bytes(info.tobuf(format=tarfile.PAX_FORMAT))
    with pytest.raises(ArchiveError, match="declares more than"):
        load_bundle(bomb)


def test_archive_with_many_members_is_refused(tmp_path):
    members = [_file(f"b/f{i}", b"x") for i in range(100)]
    with pytest.raises(ArchiveError, match="more than 64 members"):
        load_bundle(_tar(tmp_path, members))


def test_not_an_archive(tmp_path):
    path = tmp_path / "x.tar.gz"
    path.write_bytes(b"definitely not gzip")
    with pytest.raises(BundleError, match="is not a bundle archive: it starts with b'definite'"):
        load_bundle(path)


@pytest.mark.parametrize("change, message", [
    (lambda m: m["golden"].__setitem__("tolerance", float("nan")), "golden.tolerance must be a finite"),
    (lambda m: m.__setitem__("labels", ["ham", "ham"]), "labels must be distinct"),
    (lambda m: m.__setitem__("labels", ["ham", ""]), "non-empty one-line"),
    (lambda m: m["model"].__setitem__("reset_variables", "false"), "reset_variables must be true or false"),
    (lambda m: m["tokenizer"].__setitem__("vocab_size", "2000"), "vocab_size must be a positive integer"),
    (lambda m: m["model"].__setitem__("inputs", [3]), "wrong type or shape"),
    (lambda m: m["tokenizer"].__setitem__("features", None), "wrong type or shape|features"),
])
def test_odd_metadata_values_are_typed_errors(tmp_path, files, change, message):
    meta = _meta(files)
    change(meta)
    labels = meta["labels"] if isinstance(meta["labels"], list) else []
    files["labels.txt"] = ("\n".join(labels) + "\n").encode()
    with pytest.raises(SchemaError, match=message):
        load_bundle(write_dir(tmp_path / "b", {**files, "metadata.json": json.dumps(meta).encode()}))


def test_nan_golden_scores_fail_the_smoke_test(tmp_path, files):
    from bilite_device.smoke import run_smoke

    golden = json.loads(files["golden.json"])
    for vector in golden["vectors"]:
        vector["scores"] = [float("nan"), float("nan")]
    report = run_smoke(load_bundle(write_dir(tmp_path / "b", {**files, "golden.json": json.dumps(golden).encode()})), 1)
    assert not report.ok and "non-finite" in report.failures[0]


def test_vocabulary_larger_than_the_model_is_a_model_error_not_a_crash(tmp_path, files):
    meta = _meta(files)
    vocab = files["vocab.txt"].decode().splitlines() + ["zzqx"]
    meta["tokenizer"]["vocab_size"] = len(vocab)
    bundle = load_bundle(write_dir(tmp_path / "b", {**files, "vocab.txt": ("\n".join(vocab) + "\n").encode(),
                                                    "metadata.json": json.dumps(meta).encode()}))
    with pytest.raises(ModelError, match="do not fit the model"):
        bundle.predict("zzqx hello")


@pytest.mark.parametrize("bad", [None, 123, b"dir", ["x"]])
def test_load_bundle_wants_a_path(bad):
    with pytest.raises(BundleError, match="expected the path"):
        load_bundle(bad)


def test_tag_tokens_wants_a_list_of_words():
    from bilite_device import InputError
    from conftest import FIXTURES

    tagger = load_bundle(FIXTURES / "tiny-ewt-tag")
    for bad in ("abc", {"a": 1}, [""], ["a b"], ["a", None]):
        with pytest.raises(InputError, match="list of words"):
            tagger.tag_tokens(bad)


def test_fifo_is_refused_without_blocking(tmp_path):
    import os

    fifo = tmp_path / "bundle.tar.gz"
    os.mkfifo(fifo)
    with pytest.raises(BundleError, match="neither a bundle directory nor a regular"):
        load_bundle(fifo)


def test_archive_with_two_bundles_is_refused(tmp_path, files):
    members = [_file(f"a/{n}", b) for n, b in files.items() if n != "model.tflite"]
    members.append(_file("b/model.tflite", files["model.tflite"]))
    with pytest.raises(ArchiveError, match="more than one top-level folder"):
        load_bundle(_tar(tmp_path, members))


def test_conflicting_checksum_lines_are_refused(tmp_path, files):
    first = files["checksums.sha256"].decode().splitlines()[0]
    digest, name = first.split("  ")
    forged = f"{'0' * 64}  {name}\n".encode() + files["checksums.sha256"]
    with pytest.raises(ChecksumError, match="twice with different digests"):
        load_bundle(write_dir(tmp_path / "b", {**files, "checksums.sha256": forged}, rechecksum=False))
