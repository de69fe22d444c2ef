"""Write a bundle directory and its ``.tar.gz`` so that a reader never sees half of one.

Everything is written into a staging directory beside the destination, checked by loading it
with the device package, and only then renamed into place; an existing bundle is swapped out
(renamed aside, then removed), so an interrupted build leaves the old bundle or the new one.
The archive is written to a temporary file and renamed too. Archives are reproducible: sorted
members, fixed owner and modification time.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from bilite_device.bundle_files import format_checksums
from bilite_device.schema import CHECKSUMS_FILE

from .destination import check_destination
from .errors import BiliteError


def with_checksums(files: dict[str, bytes]) -> dict[str, bytes]:
    files = {name: blob for name, blob in files.items() if name != CHECKSUMS_FILE}
    return {**files, CHECKSUMS_FILE: format_checksums(files)}


def _archive_bytes(folder_name: str, files: dict[str, bytes], mtime: int) -> bytes:
    buffer = io.BytesIO()
    # gzip's own header carries a timestamp: fix it too, for byte-identical rebuilds.
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=mtime, compresslevel=9) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted(files):
                info = tarfile.TarInfo(f"{folder_name}/{name}")
                info.size = len(files[name])
                info.mtime = mtime
                info.mode = 0o644
                info.uname = info.gname = "bilite"
                tar.addfile(info, io.BytesIO(files[name]))
    return buffer.getvalue()


def compressed_size(blob: bytes) -> int:
    """Bytes ``blob`` takes gzip-compressed the way the bundle archive compresses (level 9)."""
    return len(gzip.compress(blob, compresslevel=9, mtime=0))


def archive_size(out_dir, files: dict[str, bytes], mtime: int = 0) -> int:
    """The exact size of the ``.tar.gz`` that ``write_bundle(out_dir, files)`` would write."""
    return len(_archive_bytes(Path(out_dir).resolve().name, with_checksums(files), mtime))


def write_bundle(out_dir, files: dict[str, bytes], mtime: int = 0, verify=None) -> tuple[Path, Path]:
    """Write ``out_dir`` and ``out_dir.tar.gz`` atomically; ``verify(path)`` runs on the staged copy."""
    out_dir = check_destination(out_dir)  # again: the folder may have changed since the build began
    parent = out_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    files = with_checksums(files)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.staging-", dir=parent))
    archive = out_dir.with_name(out_dir.name + ".tar.gz")
    tmp_archive = parent / (staging.name + ".tar.gz.tmp")
    os.chmod(staging, 0o755)  # mkdtemp makes it 0700; a bundle is meant to be read by others
    old = None
    try:
        for name, blob in files.items():
            (staging / name).write_bytes(blob)
        if verify is not None:
            verify(staging)
        tmp_archive.write_bytes(_archive_bytes(out_dir.name, files, mtime))
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=parent))
            os.rename(out_dir, old / "bundle")
        try:
            os.rename(staging, out_dir)
            os.replace(tmp_archive, archive)
        except OSError as exc:
            # Put the old bundle back: a failed write must leave what was there before.
            if out_dir.exists() and not staging.exists():
                os.rename(out_dir, staging)
            if old is not None:
                os.rename(old / "bundle", out_dir)
            raise BiliteError(f"could not put the bundle in place at {out_dir} ({exc}); the previous "
                              "contents were left as they were.") from None
    finally:
        for leftover in (staging, old):
            if leftover is not None and leftover.exists():
                shutil.rmtree(leftover, ignore_errors=True)
        if tmp_archive.exists():
            tmp_archive.unlink()
    return out_dir, archive
