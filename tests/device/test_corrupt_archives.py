"""A damaged archive, or a file that is not a bundle at all, is named as what it is.

A flipped bit in a .tar.gz used to raise a bare ``zlib.error`` (a traceback), or - when it hit a
tar header past the first, where tarfile silently stops iterating - to be reported as a bundle
"missing vocab.txt", which sends the user looking for a file that was never left out.
"""

import gzip
import io
import shutil
import subprocess
import sys
import tarfile
import zlib

import pytest

from bilite_device import ArchiveError, BundleError, ModelError, load_bundle
from bilite_device.bundle_files import is_bare_tflite, read_bundle_files
from bilite_device.tflite_file import read_tflite_file

from conftest import FIXTURES, WHILE_BUNDLE

ARCHIVES = sorted(FIXTURES.glob("*.tar.gz"))


def _cli(*args):
    proc = subprocess.run([sys.executable, "-m", "bilite_device.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def _offsets(size: int) -> list[int]:
    # Past the 10-byte gzip header (its mtime/OS bytes are not covered by anything) up to the
    # last byte of the CRC/length trailer, spread over the whole stream: deflate data early and
    # late, and the trailer itself.
    return sorted({10, 11, 64, 500, size // 7, size // 3, size // 2, 2 * size // 3,
                   size - 2000, size - 300, size - 40, size - 8, size - 5, size - 1})


@pytest.mark.parametrize("archive", ARCHIVES, ids=lambda p: p.name)
def test_flipped_bits_are_a_corrupt_archive_never_a_missing_member(tmp_path, archive):
    src = archive.read_bytes()
    bad = tmp_path / archive.name
    for offset in _offsets(len(src)):
        for bit in (0, 5):
            blob = bytearray(src)
            blob[offset] ^= 1 << bit
            bad.write_bytes(bytes(blob))
            with pytest.raises(BundleError) as caught:
                read_bundle_files(bad)
            message = str(caught.value)
            assert "corrupt" in message, (offset, bit, message)
            assert "missing" not in message, (offset, bit, message)
            assert isinstance(caught.value, ArchiveError), (offset, bit, message)


@pytest.mark.parametrize("archive", ARCHIVES, ids=lambda p: p.name)
def test_truncated_archives_are_corrupt_or_truncated(tmp_path, archive):
    src = archive.read_bytes()
    bad = tmp_path / archive.name
    for cut in (20, len(src) // 4, len(src) // 2, len(src) - 100, len(src) - 9, len(src) - 1):
        bad.write_bytes(src[:cut])
        with pytest.raises(ArchiveError, match="corrupt or truncated") as caught:
            load_bundle(bad)
        assert "missing" not in str(caught.value)


def _recompressed(tar_bytes: bytes) -> bytes:
    return gzip.compress(tar_bytes, mtime=0)


def test_damaged_later_tar_header_is_corrupt_not_missing(tmp_path):
    # A valid gzip stream around a tar whose second header has a bad checksum: tarfile stops
    # there without an error, so only the end-of-archive check can tell this from a short bundle.
    raw = gzip.decompress((FIXTURES / "tiny-sms-while.tar.gz").read_bytes())
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        second = tar.getmembers()[1].offset
    blob = bytearray(raw)
    blob[second + 3] ^= 0x40  # inside the member name: only the header checksum notices
    path = tmp_path / "b.tar.gz"
    path.write_bytes(_recompressed(bytes(blob)))
    with pytest.raises(ArchiveError, match=f"corrupt or truncated.*header at byte {second} is damaged"):
        load_bundle(path)


def test_uncompressed_tar_cut_at_a_member_boundary_is_truncated(tmp_path):
    raw = gzip.decompress((FIXTURES / "tiny-sms-while.tar.gz").read_bytes())
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        last = tar.getmembers()[-1].offset
    path = tmp_path / "b.tar"
    path.write_bytes(raw[:last])  # whole members only, no end-of-archive block
    with pytest.raises(ArchiveError, match="no end-of-archive block"):
        load_bundle(path)


def test_zlib_error_is_typed_in_the_cli(tmp_path):
    # Found by fuzzing: this damage surfaced as `zlib.error: invalid distance too far back`
    # from extractfile().read(), which tarfile does not wrap.
    src = (FIXTURES / "tiny-sms-while.tar.gz").read_bytes()
    path = tmp_path / "z.tar.gz"
    for offset in range(200, len(src) - 8, 97):
        blob = bytearray(src)
        blob[offset] ^= 0xFF
        try:
            gzip.decompress(bytes(blob))
        except zlib.error:
            break
        except Exception:
            continue
    else:
        pytest.skip("no offset gave a zlib.error")
    path.write_bytes(bytes(blob))
    code, _, err = _cli("smoke", path)
    assert code == 1 and "corrupt or truncated" in err and "zlib" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_intact_archives_still_load(tmp_path):
    for archive in ARCHIVES:
        files = read_bundle_files(archive)
        assert "model.tflite" in files


def test_a_valid_archive_without_members_still_says_missing(tmp_path):
    # Not damage: a well-formed archive that lacks the files is the "missing" case.
    path = tmp_path / "other.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("x/readme.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(BundleError, match="missing model.tflite"):
        load_bundle(path)


def test_not_an_archive_says_what_was_expected(tmp_path):
    path = tmp_path / "x.tar.gz"
    path.write_bytes(b"")
    with pytest.raises(BundleError, match="not a bundle archive: it is an empty file.*bundle folder"):
        load_bundle(path)


# -- bare .tflite files for `info` ---------------------------------------------------------

def test_garbage_tflite_names_the_file_and_gives_no_bundle_advice(tmp_path):
    path = tmp_path / "garbage.tflite"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(ModelError) as caught:
        read_tflite_file(path)
    message = str(caught.value)
    assert str(path) in message and "not a TFLite flatbuffer" in message
    assert "bilite build" not in message and "Rebuild the bundle" not in message
    code, _, err = _cli("info", path)
    assert code == 1 and str(path) in err and "bilite build" not in err and "Traceback" not in err


def test_truncated_bare_tflite_names_the_file(tmp_path):
    path = tmp_path / "cut.tflite"
    path.write_bytes((WHILE_BUNDLE / "model.tflite").read_bytes()[:100])
    with pytest.raises(ModelError, match="cut.tflite is truncated or corrupt") as caught:
        read_tflite_file(path)
    assert "bundle" not in str(caught.value)


@pytest.mark.parametrize("name", ["model.bin", "model", "model.tar.gz"])
def test_a_tflite_model_is_recognised_by_its_identifier_whatever_the_suffix(tmp_path, name):
    path = tmp_path / name
    shutil.copy(WHILE_BUNDLE / "model.tflite", path)
    assert is_bare_tflite(path)
    code, out, err = _cli("info", path)
    assert code == 0, err
    assert "WHILE v" in out


def test_an_unknown_file_lists_what_info_accepts(tmp_path):
    path = tmp_path / "notes.bin"
    path.write_bytes(b"just some notes\n" * 40)
    code, _, err = _cli("info", path)
    assert code == 1 and "Traceback" not in err
    assert "a bundle folder, a bundle .tar.gz or a .tflite model file" in err
    assert str(path) in err and "could not be opened" not in err


def test_smoke_on_a_bare_model_says_it_needs_a_bundle(tmp_path):
    path = tmp_path / "model.bin"
    shutil.copy(WHILE_BUNDLE / "model.tflite", path)
    code, _, err = _cli("smoke", path)
    assert code == 1 and "bare TFLite model, not a bundle" in err
