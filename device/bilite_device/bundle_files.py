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


# First bytes of the containers ``tarfile.open(mode="r:*")`` reads; anything else is not an archive.
_COMPRESSED_MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz"}
# After the end-of-archive block a tar holds only zero padding (tarfile pads to 10 KB records).
# Draining it lets gzip check its CRC and length; past this much it is not padding, and the
# members are checksummed anyway, so reading (or decompressing) further buys nothing.
_MAX_TRAILER_BYTES = 1024 * 1024


def _head(path: Path, n: int = 512) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(n)


def archive_kind(head: bytes) -> str | None:
    """"gzip", "bzip2", "xz" or "tar" for the first bytes of an archive; None for anything else."""
    for magic, kind in _COMPRESSED_MAGIC.items():
        if head.startswith(magic):
            return kind
    return "tar" if head[257:262] == b"ustar" else None


def _stream_errors() -> tuple[type[BaseException], ...]:
    """What reading a damaged archive raises: tarfile's own errors, but also zlib.error, EOFError
    (a cut-off stream), OSError (gzip's BadGzipFile for a bad CRC or header) and LZMAError, which
    tarfile lets through from ``extractfile().read()``. Evaluated only when something was raised."""
    import tarfile
    import zlib

    errors: tuple[type[BaseException], ...] = (tarfile.TarError, zlib.error, EOFError, OSError)
    try:
        import lzma

        errors += (lzma.LZMAError,)
    except ImportError:  # a Python built without lzma cannot open .tar.xz in the first place
        pass
    return errors


def _corrupt(path: Path, detail: str) -> ArchiveError:
    return ArchiveError(
        f"bundle archive {path} is corrupt or truncated ({detail}); the file was damaged or cut "
        "short in transit or on disk. Re-download or re-copy it from the build machine (its sha256 "
        "should match there), or rebuild it."
    )


def _unreadable(path: Path, exc: BaseException) -> BundleError:
    """The error for an archive that raised while being read: corrupt, or not an archive at all."""
    from .tflite_file import is_tflite

    text = str(exc).strip()
    first = text.splitlines()[0].rstrip(":") if text else ""
    kind = type(exc).__name__
    if kind == "error":  # zlib.error says only "error"
        kind = f"{type(exc).__module__}.error"
    detail = f"{kind}: {first}" if first else kind
    try:
        head = _head(path)
    except OSError:
        head = b""
    if archive_kind(head) is None:
        if is_tflite(head):
            return BundleError(
                f"{path} is a bare TFLite model, not a bundle: this needs a bundle folder or the "
                ".tar.gz that `bilite build` writes (`bilite-device info` and `bilite inspect` also "
                "read bare .tflite files)."
            )
        return BundleError(
            f"{path} is not a bundle archive: {_seen(head)}, neither gzip-compressed nor a tar "
            "archive. Expected a bundle folder or the .tar.gz that `bilite build` writes; if this "
            "was one, the copy is damaged: re-copy it."
        )
    # It starts like an archive, so whatever failed is damage inside it.
    return _corrupt(path, detail)


def _seen(head: bytes) -> str:
    return "it is an empty file" if not head else f"it starts with {head[:8]!r}"


def is_bare_tflite(path) -> bool:
    """For ``info`` / ``inspect``, which take a bundle or a bare model: is ``path`` a model file?

    A model is recognised by its flatbuffer identifier whatever its suffix; a ``.tflite`` file is
    treated as a model even when damaged, so its error names the file. A file that is neither a
    model nor an archive is refused here, saying what is accepted (the bundle reader alone would
    only say it is not a bundle).
    """
    from .tflite_file import is_tflite

    path = Path(path)
    if not path.is_file():
        return False  # a folder (or nothing): the bundle reader says what is wrong with it
    try:
        head = _head(path)
    except OSError as exc:
        raise BundleError(f"cannot read {path}: {exc.strerror or exc}") from None
    if is_tflite(head) or path.suffix.lower() == ".tflite":
        return True
    if archive_kind(head) is None:
        raise BundleError(
            f"cannot inspect {path}: {_seen(head)}, which is neither a bundle archive nor a TFLite "
            "model. Pass a bundle folder, a bundle .tar.gz or a .tflite model file; if this was "
            "one of those, the copy is damaged: re-copy it."
        )
    return False


def _read_archive(path: Path) -> dict[str, bytes]:
    import tarfile  # only archives need it (~13 ms of a device's cold start)

    class _Info(tarfile.TarInfo):
        """Records why tarfile stopped iterating: past the first member it ends the iteration
        silently at a damaged or cut-off header, which would otherwise surface as a bundle
        "missing" the members after it instead of as a corrupt archive."""

        @classmethod
        def fromtarfile(cls, tar):
            try:
                return super().fromtarfile(tar)
            except tarfile.HeaderError as exc:
                tar.bilite_stop = exc
                raise

    files: dict[str, bytes] = {}
    total = 0
    tops: set[str] = set()
    try:
        with tarfile.open(path, mode="r:*", tarinfo=_Info) as tar:
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
                    raise _corrupt(path, f"member {name!r} holds {len(blob)} bytes but its header "
                                         f"declares {member.size}")
                files[name] = blob
            stop = getattr(tar, "bilite_stop", None)
            if not isinstance(stop, tarfile.EOFHeaderError):
                # EOFHeaderError is the all-zero end-of-archive block; anything else (a header
                # with a bad checksum, a cut-off header, no end block) is damage.
                if stop is None or isinstance(stop, tarfile.EmptyHeaderError):
                    why = f"the tar data ends at byte {tar.offset} with no end-of-archive block"
                elif isinstance(stop, tarfile.TruncatedHeaderError):
                    why = f"the tar data ends inside the header at byte {tar.offset}"
                else:
                    why = f"the tar header at byte {tar.offset} is damaged: {stop}"
                raise _corrupt(path, why)
            # Read what is left to the end, so gzip verifies its CRC and length (a flipped bit in
            # the compressed stream is otherwise only noticed if it lands in a member).
            left = _MAX_TRAILER_BYTES
            while left > 0:
                chunk = tar.fileobj.read(min(left, 64 * 1024))
                if not chunk:
                    break
                left -= len(chunk)
    except PermissionError:
        raise  # read_bundle_files says "cannot read": the file is fine, the permissions are not
    except BundleError:
        raise
    except _stream_errors() as exc:
        raise _unreadable(path, exc) from None
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


def parse_checksums(blob: bytes, where: str) -> dict[str, str]:
    """name -> sha256 hex digest from a ``checksums.sha256`` file, or a ChecksumError."""
    expected: dict[str, str] = {}
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError:
        raise ChecksumError(f"{CHECKSUMS_FILE} in {where} is not text; the bundle is damaged.") from None
    for line in text.splitlines():
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64:
            raise ChecksumError(f"{CHECKSUMS_FILE} in {where} has a malformed line: {line!r}")
        if name in expected and expected[name] != digest.lower():
            raise ChecksumError(f"{CHECKSUMS_FILE} in {where} lists {name} twice with different digests")
        expected[name] = digest.lower()
    return expected


def verify_checksums(files: dict[str, bytes], where: str) -> set[str]:
    expected = parse_checksums(files[CHECKSUMS_FILE], where)
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
