"""Bundles appear whole or not at all, and archives are reproducible."""

import tarfile

import pytest

from bilite import bundle_writer
from bilite.bundle_writer import write_bundle
from bilite.destination import check_bundle_name, check_destination
from bilite.errors import DestinationError
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
    with pytest.raises(DestinationError, match="not an empty folder or a bilite bundle .it holds thesis.tex"):
        write_bundle(precious, _fixture_files())
    assert (precious / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs"]


def _tree(folder):
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


def test_a_folder_with_a_checksums_file_of_its_own_is_not_taken_for_a_bundle(tmp_path):
    """Bug: any folder holding a file named checksums.sha256 was wiped as if it were a bundle."""
    releases = tmp_path / "releases"
    releases.mkdir()
    (releases / "NOTES.md").write_text("notes")
    (releases / "checksums.sha256").write_text("0" * 64 + "  NOTES.md\n")
    before = _tree(tmp_path)
    with pytest.raises(DestinationError, match="it holds NOTES.md, checksums.sha256"):
        write_bundle(releases, _fixture_files())
    assert _tree(tmp_path) == before


def test_a_bundle_with_a_users_file_added_is_not_replaced(tmp_path):
    out, _ = write_bundle(tmp_path / "x", _fixture_files())
    (out / "my-notes.txt").write_text("mine")
    before = _tree(tmp_path)
    with pytest.raises(DestinationError, match="it holds my-notes.txt, which no bundle's checksums list"):
        write_bundle(tmp_path / "x", _fixture_files())
    assert _tree(tmp_path) == before


def test_an_archive_path_holding_something_else_is_refused_before_anything_is_written(tmp_path):
    """Bugs: a user's own x.tar.gz was overwritten; an x.tar.gz folder let the bundle be replaced
    (old one left in .x.old-*) and then failed with a traceback."""
    (tmp_path / "x.tar.gz").write_bytes(b"my precious backup")
    with pytest.raises(DestinationError, match="x.tar.gz exists and is not a readable .tar.gz"):
        write_bundle(tmp_path / "x", _fixture_files())
    assert (tmp_path / "x.tar.gz").read_bytes() == b"my precious backup" and not (tmp_path / "x").exists()

    write_bundle(tmp_path / "y", _fixture_files())
    (tmp_path / "y.tar.gz").unlink()
    (tmp_path / "y.tar.gz").mkdir()
    before = _tree(tmp_path)
    with pytest.raises(DestinationError, match="y.tar.gz exists and is not a regular file"):
        write_bundle(tmp_path / "y", _fixture_files())
    assert _tree(tmp_path) == before

    other, _ = write_bundle(tmp_path / "z", _fixture_files())
    (tmp_path / "z.tar.gz").write_bytes((other / "vocab.txt").read_bytes())  # a text file by that name
    with pytest.raises(DestinationError, match="z.tar.gz exists and is not a readable"):
        check_destination(tmp_path / "z")


def test_an_archive_of_another_folder_is_not_replaced(tmp_path):
    _, archive = write_bundle(tmp_path / "a", _fixture_files())
    archive.rename(tmp_path / "b.tar.gz")
    with pytest.raises(DestinationError, match="not a bilite bundle archive of b/"):
        check_destination(tmp_path / "b")


def test_a_failed_swap_puts_the_old_bundle_back(tmp_path, monkeypatch):
    out, archive = write_bundle(tmp_path / "x", _fixture_files())
    before = _tree(tmp_path)

    def no_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bundle_writer.os, "replace", no_replace)
    with pytest.raises(BiliteError, match="No space left on device.*left as they were"):
        write_bundle(tmp_path / "x", {**_fixture_files(), "labels.txt": b"spam\nham\n"})
    assert _tree(tmp_path) == before


def test_an_out_below_a_file_is_refused(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(DestinationError, match="afile is a file, not a folder"):
        check_destination(tmp_path / "afile" / "sub" / "bundle")
    with pytest.raises(DestinationError, match="exists and is not a folder"):
        check_destination(tmp_path / "afile")


@pytest.mark.parametrize("name", ["evil\nExecStartPre=/bin/touch /tmp/pwned\n#", "tab\there", "", "x" * 101])
def test_a_bundle_name_must_be_one_printable_line(name):
    """Bug: --name with a newline injected lines into the rendered bilite-smoke.service."""
    with pytest.raises(DestinationError, match="must be one printable line"):
        check_bundle_name(name)
    assert check_bundle_name("SMS spam — v2 (ünïcode ok)") == "SMS spam — v2 (ünïcode ok)"
