"""Read a bundle's files (a directory or a ``.tar.gz``) into memory and verify their checksums.

Why in memory: a bundle is a few hundred KB, the interpreter takes the model as bytes, and
reading an archive without extracting it means a hostile archive (``../`` paths, links, device
files) can never write anywhere: there is nothing to clean up after a refusal.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tarfile

from .errors import ArchiveError, BundleError, ChecksumError
from .schema import CHECKSUMS_FILE, REQUIRED_FILES

# A bundle holds a handful of small files. Anything beyond these caps is refused before it is
# read, so a decompression bomb costs neither memory nor time.
MAX_FILES = 64
MAX_TOTAL_BYTES = 512 * 1024 * 1024


def sha256_hex(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def format_checksums(files: dict[str, bytes]) -> bytes:
    """``sha256sum`` format, so ``sha256sum -c checksums.sha256`` works on the device too."""
    lines = [f"{sha256_hex(files[name])}  {name}\n" for name in sorted(files)]
    return "".join(lines).encode("utf-8")


def _read_directory(path: Path) -> dict[str, bytes]:
    files, total = {}, 0
    for entry in sorted(path.iterdir()):
        if entry.is_symlink() or not entry.is_file():
            continue  # only regular files belong to a bundle; others are not read
        if len(files) >= MAX_FILES:
            raise BundleError(f"{path} holds more than {MAX_FILES} files; is it really a bundle?")
        total += entry.stat().st_size
        if total > MAX_TOTAL_BYTES:
            raise BundleError(f"{path} holds more than {MAX_TOTAL_BYTES} bytes; is it really a bundle?")
        files[entry.name] = entry.read_bytes()
    return files


def _member_name(member: tarfile.TarInfo) -> str:
    """The bundle-relative name of a member; anything that could escape is refused."""
    name = member.name
    if name.startswith("/") or os.path.isabs(name):
        raise ArchiveError(f"archive member {name!r} has an absolute path; refusing the archive.")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(f"archive member {name!r} points outside the bundle ('..'); refusing.")
    if member.issym() or member.islnk():
        raise ArchiveError(
            f"archive member {name!r} is a link (to {member.linkname!r}); bundles hold only "
            "regular files. Refusing the archive."
        )
    if member.isdir():
        return ""
    if not member.isfile():
        raise ArchiveError(
            f"archive member {name!r} is a device, FIFO or other special file; refusing the archive."
        )
    # Bundles are written as one top-level folder; files are addressed by their base name.
    return parts[-1]


def _read_archive(path: Path) -> dict[str, bytes]:
    import tarfile  # only archives need it (~13 ms of a device's cold start)

    files: dict[str, bytes] = {}
    total = 0
    tops: set[str] = set()
    try:
        with tarfile.open(path, mode="r:*") as tar:
            for count, member in enumerate(tar):
                if count >= MAX_FILES:
                    raise ArchiveError(f"{path} holds more than {MAX_FILES} members; refusing it.")
                name = _member_name(member)
                if not name:
                    continue
                parts = [p for p in member.name.split("/") if p not in ("", ".")]
                tops.add(parts[0] if len(parts) > 1 else "")
                if len(tops) > 1:
                    raise ArchiveError(f"{path} holds files under more than one top-level folder "
                                       f"({sorted(tops)}); a bundle archive holds one bundle.")
                total += member.size
                if total > MAX_TOTAL_BYTES:
                    raise ArchiveError(
                        f"{path} declares more than {MAX_TOTAL_BYTES} bytes of content; refusing "
                        "it (bundles are a few MB)."
                    )
                if name in files:
                    raise ArchiveError(f"{path} holds {name!r} twice; refusing the archive.")
                handle = tar.extractfile(member)
                # Read at most the declared size + 1: a member that lies about its size is caught.
                blob = handle.read(member.size + 1) if handle else b""
                if len(blob) != member.size:
                    raise ArchiveError(f"archive member {name!r} is not the size it declares.")
                files[name] = blob
    except (tarfile.TarError, EOFError, OSError) as exc:
        first = str(exc).strip().splitlines()[0].rstrip(":") if str(exc).strip() else type(exc).__name__
        raise BundleError(
            f"cannot read bundle archive {path}: {first} (expected a bundle directory or the "
            ".tar.gz that `bilite build` writes). Re-copy it, or rebuild it."
        ) from None
    return files


def read_bundle_files(path) -> dict[str, bytes]:
    """All files of a bundle, checked against ``checksums.sha256``."""
    path = Path(path)
    if not path.exists():
        raise BundleError(f"bundle not found: {path} (expected a bundle directory or .tar.gz)")
    if not path.is_dir() and not path.is_file():  # a FIFO or device would block or stream forever
        raise BundleError(f"{path} is neither a bundle directory nor a regular .tar.gz file")
    try:
        files = _read_directory(path) if path.is_dir() else _read_archive(path)
    except PermissionError as exc:
        raise BundleError(f"cannot read bundle {path}: {exc}") from None
    missing = [name for name in REQUIRED_FILES if name not in files]
    if missing:
        raise BundleError(
            f"bundle {path} is missing {', '.join(missing)}; a bundle holds "
            f"{', '.join(REQUIRED_FILES)}. Re-copy the whole bundle, or rebuild it."
        )
    listed = verify_checksums(files, str(path))
    # Only files the checksum list vouches for are used; anything else in the folder is ignored.
    return {name: blob for name, blob in files.items() if name in listed or name == CHECKSUMS_FILE}


def verify_checksums(files: dict[str, bytes], where: str) -> set[str]:
    expected: dict[str, str] = {}
    try:
        text = files[CHECKSUMS_FILE].decode("utf-8")
    except UnicodeDecodeError:
        raise ChecksumError(f"{CHECKSUMS_FILE} in {where} is not text; the bundle is damaged.") from None
    for line in text.splitlines():
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64:
            raise ChecksumError(f"{CHECKSUMS_FILE} in {where} has a malformed line: {line!r}")
        if name in expected and expected[name] != digest.lower():
            raise ChecksumError(f"{CHECKSUMS_FILE} in {where} lists {name} twice with different digests")
        expected[name] = digest.lower()
    unlisted = [n for n in REQUIRED_FILES if n != CHECKSUMS_FILE and n not in expected]
    if unlisted:
        raise ChecksumError(
            f"{CHECKSUMS_FILE} in {where} does not cover {', '.join(unlisted)}; the bundle is damaged."
        )
    bad = []
    for name, digest in sorted(expected.items()):
        if name not in files:
            bad.append(f"{name} (listed but missing)")
        elif sha256_hex(files[name]) != digest:
            bad.append(f"{name} (sha256 {sha256_hex(files[name])[:12]}…, expected {digest[:12]}…)")
    if bad:
        raise ChecksumError(
            f"checksum mismatch in bundle {where}: {'; '.join(bad)}. The bundle was damaged in "
            "transit or on disk: copy it again from the build machine."
        )
    return set(expected)
