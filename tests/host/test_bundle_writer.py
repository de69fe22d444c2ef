"""Bundles appear whole or not at all, and archives are reproducible."""

import tarfile

import pytest

from bilite.bundle_writer import write_bundle
from bilite_device import BiliteError, load_bundle
from conftest import FIXTURES


def _fixture_files():
    src = FIXTURES / "tiny-sms-while"
    return {p.name: p.read_bytes() for p in src.iterdir() if p.name != "checksums.sha256"}


def test_written_bundle_loads_and_archive_is_reproducible(tmp_path):
    files = _fixture_files()
    out, archive = write_bundle(tmp_path / "x", files)
    assert load_bundle(out).predict("hi").label in ("ham", "spam")
    first = archive.read_bytes()
    write_bundle(tmp_path / "x", files)  # replaces the existing bundle
    assert archive.read_bytes() == first
    with tarfile.open(archive) as tar:
        assert sorted(m.name for m in tar) == sorted(f"x/{n}" for n in [*files, "checksums.sha256"])
    assert oct(out.stat().st_mode & 0o777) == "0o755"


def test_failed_verification_keeps_the_old_bundle_and_leaves_nothing(tmp_path):
    files = _fixture_files()
    out, archive = write_bundle(tmp_path / "x", files)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    old_archive = archive.read_bytes()

    def refuse(path):
        raise BiliteError("smoke failed")

    changed = {**files, "labels.txt": b"spam\nham\n"}
    with pytest.raises(BiliteError, match="smoke failed"):
        write_bundle(tmp_path / "x", changed, verify=refuse)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert archive.read_bytes() == old_archive
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x", "x.tar.gz"]


def test_refuses_to_replace_a_directory_that_is_not_a_bundle(tmp_path):
    precious = tmp_path / "docs"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(BiliteError, match="not a bilite bundle"):
        write_bundle(precious, _fixture_files())
    assert (precious / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs"]
