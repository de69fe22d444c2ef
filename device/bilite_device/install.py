"""Install bundles on a device atomically, keep the previous one, and roll back.

Layout under ``--root``::

    bundles/<name>-<id>/    complete, verified, smoke-tested bundle directories (never edited)
    current  -> bundles/…   symlink: the active bundle
    previous -> bundles/…   symlink: the one before it (for rollback)
    .staging-*/             work in progress; removed by the next install

Why this order survives a power cut at any instant: a bundle directory appears under
``bundles/`` only by one ``rename`` of a staging directory that was fully written, fsynced and
smoke-tested; the active bundle changes only by one ``rename`` of a new symlink over
``current``. Every intermediate state leaves ``current`` pointing at a complete bundle: the old
one or the new one. ``previous`` is updated first, so a crash between the two switches leaves
``previous`` and ``current`` equal, which is still correct.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .bundle import load_bundle
from .bundle_files import read_bundle_files
from .errors import BundleError
from .schema import CHECKSUMS_FILE, METADATA_FILE
from .smoke import require_ok, run_smoke

CURRENT, PREVIOUS, BUNDLES = "current", "previous", "bundles"
COMPLETE_MARKER = ".bilite-complete"
ROOT_MARKER = ".bilite-root"  # marks a directory bilite-device manages; others are never touched


def _crash_point(step: str) -> None:
    """Test hook: ``BILITE_INSTALL_CRASH_AT=step`` kills the process right here (SIGKILL)."""
    if os.environ.get("BILITE_INSTALL_CRASH_AT") == step:
        os.kill(os.getpid(), signal.SIGKILL)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(path: Path, blob: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(blob)
        handle.flush()
        os.fsync(handle.fileno())


def _point(root: Path, link: str, target_name: str) -> None:
    """Atomically make ``root/link`` a symlink to ``bundles/target_name``."""
    tmp = root / f".{link}.tmp-{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(f"{BUNDLES}/{target_name}", tmp)
    os.replace(tmp, root / link)
    _fsync_dir(root)


def _target(root: Path, link: str) -> str | None:
    path = root / link
    if not path.is_symlink():
        return None
    return Path(os.readlink(path)).name


@dataclass
class InstallResult:
    active: str
    previous: str | None
    unchanged: bool = False


def _bundle_id(files: dict[str, bytes]) -> str:
    try:
        name = json.loads(files[METADATA_FILE].decode("utf-8")).get("name") or "bundle"
    except (UnicodeDecodeError, json.JSONDecodeError):
        name = "bundle"
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(name))[:60] or "bundle"
    return f"{safe}-{hashlib.sha256(files[CHECKSUMS_FILE]).hexdigest()[:12]}"


def _prepare_root(root: Path) -> None:
    """Create or adopt ``root``; refuse a path that is not a directory bilite-device manages."""
    if str(root) in ("", "."):
        raise BundleError("--root must name the installation directory, for example /opt/bilite/models")
    if root.exists() and not root.is_dir():
        raise BundleError(f"--root {root} exists and is not a directory; choose an installation directory")
    if root.is_dir() and not (root / ROOT_MARKER).exists() and any(root.iterdir()):
        raise BundleError(f"--root {root} is not empty and was not made by bilite-device install; "
                          "refusing to manage (and clean) it. Use a new or empty directory.")
    try:
        (root / BUNDLES).mkdir(parents=True, exist_ok=True)
        (root / ROOT_MARKER).touch()
    except OSError as exc:
        raise BundleError(f"cannot create the installation directory {root}: {exc}") from None
    for link in (CURRENT, PREVIOUS):
        if (root / link).exists() and not (root / link).is_symlink():
            raise BundleError(f"{root / link} is not a symlink made by bilite-device; refusing to replace it")


def _clean(root: Path) -> None:
    """Remove staging leftovers and installed bundles that neither link points to (only
    directories this installer completed: they carry its marker)."""
    keep = {_target(root, CURRENT), _target(root, PREVIOUS)}
    for entry in root.iterdir():
        if not entry.name.startswith((".staging-", ".current.tmp-", ".previous.tmp-")):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink()
    bundles = root / BUNDLES
    if bundles.is_dir():
        for entry in bundles.iterdir():
            if entry.name not in keep and (entry / COMPLETE_MARKER).exists() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)


def install(archive, root) -> InstallResult:
    """Verify ``archive``, stage and smoke-test it under ``root``, then make it active."""
    root = Path(root)
    files = read_bundle_files(archive)  # checksums, safe archive reading: nothing written yet
    _prepare_root(root)
    _clean(root)
    bundle_id = _bundle_id(files)
    final = root / BUNDLES / bundle_id
    if _target(root, CURRENT) == bundle_id and (final / COMPLETE_MARKER).exists():
        return InstallResult(bundle_id, _target(root, PREVIOUS), unchanged=True)
    if not (final / COMPLETE_MARKER).exists():
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
        try:
            for name, blob in sorted(files.items()):
                _write_synced(staging / name, blob)
                _crash_point("writing")
            # The staged copy must load and reproduce its golden vectors on this device.
            require_ok(run_smoke(load_bundle(staging), latency_runs=5))
            _crash_point("smoked")
            _write_synced(staging / COMPLETE_MARKER, b"ok\n")
            os.chmod(staging, 0o755)
            _fsync_dir(staging)
            if final.exists():  # an incomplete leftover under the same id
                shutil.rmtree(final)
            os.rename(staging, final)
            _fsync_dir(root / BUNDLES)
            _crash_point("renamed")
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    old = _target(root, CURRENT)
    if old and old != bundle_id:
        _point(root, PREVIOUS, old)
    _crash_point("previous-switched")
    _point(root, CURRENT, bundle_id)
    _crash_point("current-switched")
    return InstallResult(bundle_id, _target(root, PREVIOUS))


def rollback(root) -> InstallResult:
    root = Path(root)
    if not (root / ROOT_MARKER).exists():
        raise BundleError(f"{root} is not an installation directory made by bilite-device install")
    current, previous = _target(root, CURRENT), _target(root, PREVIOUS)
    if not previous or previous == current:
        raise BundleError(f"nothing to roll back to under {root}: no previous bundle is kept "
                          f"(active: {current or 'none'}). Install another bundle first.")
    if not (root / BUNDLES / previous / COMPLETE_MARKER).exists():
        raise BundleError(f"the previous bundle {previous} under {root} is incomplete; refusing to "
                          "activate it. Reinstall a bundle instead.")
    _point(root, CURRENT, previous)
    _crash_point("rollback-current-switched")
    if current:
        _point(root, PREVIOUS, current)
    return InstallResult(previous, current)


def status(root) -> dict:
    root = Path(root)
    if not (root / ROOT_MARKER).exists():
        raise BundleError(f"{root} is not an installation directory made by bilite-device install "
                          "(nothing installed there)")
    info: dict = {"root": str(root)}
    for link in (CURRENT, PREVIOUS):
        target = _target(root, link)
        entry: dict | None = None
        if target:
            path = root / BUNDLES / target
            entry = {"id": target, "path": str(path), "complete": (path / COMPLETE_MARKER).exists()}
            try:
                meta = json.loads((path / METADATA_FILE).read_text("utf-8"))
                entry.update({"name": meta.get("name"), "created": meta.get("created"),
                              "task": meta.get("task"), "accuracy": meta.get("metrics", {}).get("accuracy")})
            except (OSError, ValueError, AttributeError) as exc:  # unreadable or odd metadata
                entry["error"] = f"{type(exc).__name__}: {exc}"
        info[link] = entry
    return info
