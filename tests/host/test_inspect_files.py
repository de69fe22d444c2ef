"""`bilite inspect` on damaged archives and on files that are not bundles: one clear line each.

It delegates to bilite_device (bundle_files, tflite_file); these check the host CLI end to end:
a bit-flipped .tar.gz used to print a zlib.error traceback, a garbage .tflite got bundle advice,
and a valid model under another suffix was "a bundle archive that could not be opened".
"""

import json
import shutil

from click.testing import CliRunner

from bilite.cli import main
from conftest import ROOT

FIXTURES = ROOT / "tests" / "fixtures"


def _inspect(*args):
    result = CliRunner().invoke(main, ["inspect", *map(str, args)])
    return result.exit_code, result.output


def test_bit_flips_in_an_archive_are_one_corrupt_line(tmp_path):
    src = (FIXTURES / "tiny-sms-while.tar.gz").read_bytes()
    bad = tmp_path / "b.tar.gz"
    for offset in (12, len(src) // 3, len(src) // 2, len(src) - 6):
        blob = bytearray(src)
        blob[offset] ^= 0x10
        bad.write_bytes(bytes(blob))
        code, out = _inspect(bad)
        assert code == 1 and "corrupt or truncated" in out and "missing" not in out, (offset, out)
        assert "Traceback" not in out and len(out.strip().splitlines()) == 1


def test_garbage_tflite_names_the_file_without_bundle_advice(tmp_path):
    path = tmp_path / "garbage.tflite"
    path.write_bytes(bytes(range(251)) * 8)
    code, out = _inspect(path)
    assert code == 1 and f"{path} is not a TFLite flatbuffer" in out
    assert "bilite build" not in out and "bundle with" not in out


def test_a_model_under_another_suffix_is_inspected(tmp_path):
    path = tmp_path / "model.bin"
    shutil.copy(FIXTURES / "tiny-sms-while" / "model.tflite", path)
    code, out = _inspect(path, "--json")
    assert code == 0, out
    assert any(op["name"] == "WHILE" for op in json.loads(out)["model"]["ops"])


def test_an_unknown_file_says_what_inspect_accepts(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    code, out = _inspect(path)
    assert code == 1 and "a bundle folder, a bundle .tar.gz or a .tflite model file" in out
    assert "could not be opened" not in out
