"""Where a bundle may be written, checked before any work and again before the swap.

``--out DIR`` replaces DIR and DIR.tar.gz. That is safe only when both are absent, DIR is an
empty folder, or they are bundles that bilite wrote: a folder holding nothing but the files its
``checksums.sha256`` lists (with ``metadata.json`` among them), and an archive of one such folder.
Anything else is the user's and is never deleted. The checks run when a build starts, so a
wrong ``--out`` fails in a second, not after training and conversion.
"""

from __future__ import annotations

import os
import tarfile
import unicodedata
import zlib
from pathlib import Path

from bilite_device.bundle_files import parse_checksums
from bilite_device.errors import BiliteError
from bilite_device.schema import CHECKSUMS_FILE, METADATA_FILE

from .errors import DestinationError

MAX_NAME = 100


def check_destination(out_dir) -> Path:
    """``out_dir`` resolved, or a DestinationError saying why bilite may not write there."""
    out_dir = Path(out_dir).resolve()
    archive = out_dir.with_name(out_dir.name + ".tar.gz")
    _check_writable_parent(out_dir)
    if out_dir.exists() or out_dir.is_symlink():
        if not out_dir.is_dir():
            raise DestinationError(f"--out {out_dir} exists and is not a folder; bilite writes a bundle "
                                   "folder there. Choose another --out.")
        foreign = _foreign_entries(out_dir)
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" … ({len(foreign)} in all)" if len(foreign) > 5 else "")
            raise DestinationError(f"--out {out_dir} is not an empty folder or a bilite bundle (it holds "
                                   f"{shown}, which no bundle's checksums list); bilite would delete them "
                                   "when it replaces the folder. Choose another --out.")
    if archive.exists() or archive.is_symlink():
        problem = _archive_problem(archive, out_dir.name)
        if problem:
            raise DestinationError(f"{archive} exists and {problem}; bilite writes the bundle's archive "
                                   "there and would replace it. Move it away or choose another --out.")
    return out_dir


def check_output(out_dir, name: str | None = None) -> None:
    """What every build checks first: the destination, and the bundle name (default: the folder's)."""
    folder = check_destination(out_dir)
    check_bundle_name(folder.name if name is None else name)


def check_bundle_name(name: str) -> str:
    """A bundle name goes into metadata, the model card and a systemd unit: one printable line."""
    bad = [c for c in name if unicodedata.category(c).startswith("C")]
    if not name.strip() or bad or len(name) > MAX_NAME:
        seen = "empty" if not name.strip() else (f"has control character(s) {sorted(set(bad))!r}" if bad
                                                 else f"is {len(name)} characters long")
        raise DestinationError(f"bundle name {name!r} {seen}; it must be one printable line of at most "
                               f"{MAX_NAME} characters (it goes into the model card and the device's "
                               "systemd unit). Pass another --name.")
    return name


def _check_writable_parent(out_dir: Path) -> None:
    ancestor = out_dir.parent
    while not ancestor.exists():  # the build creates the missing folders: the first existing one decides
        if ancestor.is_symlink():
            raise DestinationError(f"--out {out_dir}: {ancestor} is a broken symbolic link. Choose another --out.")
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise DestinationError(f"--out {out_dir}: {ancestor} is a file, not a folder, so nothing can be "
                               "written below it. Choose another --out.")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise DestinationError(f"--out {out_dir}: the folder {ancestor} is not writable by this user. "
                               "Choose another --out (or fix its permissions).")


def _listed(checksums: Path) -> set[str]:
    """The names a bundle folder's checksums file lists; none if it is not one bilite wrote."""
    try:
        return set(parse_checksums(checksums.read_bytes(), str(checksums.parent)))
    except (OSError, BiliteError):
        return set()


def _foreign_entries(folder: Path) -> list[str]:
    """Entries of ``folder`` that are not part of a bilite bundle (all of them, if it is none)."""
    entries = sorted(p.name for p in folder.iterdir())
    if not entries:
        return []
    listed = _listed(folder / CHECKSUMS_FILE) if (folder / CHECKSUMS_FILE).is_file() else set()
    if METADATA_FILE not in listed:
        return entries
    return [name for name in entries if name != CHECKSUMS_FILE
            and (name not in listed or not (folder / name).is_file() or (folder / name).is_symlink())]


def _archive_problem(archive: Path, folder_name: str) -> str | None:
    """Why ``archive`` is not a bilite bundle archive of ``folder_name``, or None if it is one."""
    if archive.is_symlink() or not archive.is_file():
        return "is not a regular file"
    try:
        with tarfile.open(archive, "r:gz") as tar:
            names = tar.getnames()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:  # zlib.error: a damaged stream
        return f"is not a readable .tar.gz ({type(exc).__name__})"
    prefix = folder_name + "/"
    inside = {n[len(prefix):] for n in names if n.startswith(prefix)}
    if len(inside) != len(names) or METADATA_FILE not in inside or CHECKSUMS_FILE not in inside:
        return f"is not a bilite bundle archive of {folder_name}/"
    return None
