"""Atomic install and rollback: after a SIGKILL at any point, the active bundle is the complete
old one or the complete new one, and the next install works."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bilite_device import BundleError, load_bundle
from bilite_device.bundle_files import read_bundle_files
from bilite_device.install import install, rollback, status

from conftest import FIXTURES

OLD = FIXTURES / "tiny-sms-while.tar.gz"
NEW = FIXTURES / "tiny-sms-fused.tar.gz"


def _active_id(root: Path) -> str:
    return Path(os.readlink(root / "current")).name


def _assert_active_is_whole(root: Path, allowed: set[str]) -> str:
    active = _active_id(root)
    assert active in allowed
    read_bundle_files(root / "current")  # every file present, every checksum right
    assert (root / "current" / ".bilite-complete").exists()
    return active


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "bilite_device.cli", *map(str, args)],
                          capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=120)


def test_install_rollback_status(tmp_path):
    first = install(OLD, tmp_path)
    assert first.previous is None and load_bundle(tmp_path / "current").predict("hi").label
    second = install(NEW, tmp_path)
    assert second.previous == first.active and _active_id(tmp_path) == second.active
    assert install(NEW, tmp_path).unchanged
    back = rollback(tmp_path)
    assert back.active == first.active and back.previous == second.active
    info = status(tmp_path)
    assert info["current"]["id"] == first.active and info["previous"]["id"] == second.active
    assert info["current"]["complete"] and info["current"]["name"] == "tiny-sms-while"


def test_bad_bundle_changes_nothing(tmp_path):
    install(OLD, tmp_path)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    bad = tmp_path.parent / "bad.tar.gz"
    blob = bytearray(NEW.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    bad.write_bytes(bytes(blob))
    with pytest.raises(BundleError):
        install(bad, tmp_path)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_rollback_without_previous_is_a_clear_error(tmp_path):
    install(OLD, tmp_path)
    with pytest.raises(BundleError, match="nothing to roll back"):
        rollback(tmp_path)
    code = _cli("rollback", "--root", tmp_path)
    assert code.returncode == 1 and "nothing to roll back" in code.stderr


@pytest.mark.parametrize("step", ["writing", "smoked", "renamed", "previous-switched", "current-switched"])
def test_sigkill_at_each_step(tmp_path, step):
    old_id = install(OLD, tmp_path).active
    proc = _cli("install", NEW, "--root", tmp_path, env={"BILITE_INSTALL_CRASH_AT": step})
    assert proc.returncode == -signal.SIGKILL
    active = _assert_active_is_whole(tmp_path, {old_id, _new_id(tmp_path)})
    if step in ("writing", "smoked", "renamed", "previous-switched"):
        assert active == old_id
    again = _cli("install", NEW, "--root", tmp_path)
    assert again.returncode == 0, again.stderr
    assert _active_id(tmp_path) == _new_id(tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".staging-")]


def _new_id(root: Path) -> str:
    from bilite_device.install import _bundle_id

    return _bundle_id(read_bundle_files(NEW))


def test_sigkill_at_random_moments(tmp_path):
    old_id = install(OLD, tmp_path).active
    new_id = _new_id(tmp_path)
    start = time.perf_counter()
    assert _cli("install", NEW, "--root", tmp_path).returncode == 0
    duration = time.perf_counter() - start
    rng = random.Random(1234)
    for k in range(12):
        # Alternate the direction so each kill interrupts a real switch.
        target = OLD if k % 2 == 0 else NEW
        proc = subprocess.Popen([sys.executable, "-m", "bilite_device.cli", "install", str(target),
                                 "--root", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.0, duration * 1.1))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        _assert_active_is_whole(tmp_path, {old_id, new_id})
    assert _cli("install", NEW, "--root", tmp_path).returncode == 0
    assert _active_id(tmp_path) == new_id


def test_status_cli(tmp_path):
    install(OLD, tmp_path)
    proc = _cli("status", "--root", tmp_path, "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["current"]["name"] == "tiny-sms-while"
    proc = _cli("status", "--root", tmp_path)
    assert "current: tiny-sms-while-" in proc.stdout and "previous: none" in proc.stdout


def test_install_never_touches_what_it_did_not_make(tmp_path):
    precious = tmp_path / "root" / "bundles" / "my-important-model"
    precious.mkdir(parents=True)
    (precious / "weights.bin").write_bytes(b"years of work")
    with pytest.raises(BundleError, match="not empty and was not made by bilite-device"):
        install(OLD, tmp_path / "root")
    assert (precious / "weights.bin").read_bytes() == b"years of work"
    (tmp_path / "afile").write_text("x")
    with pytest.raises(BundleError, match="not a directory"):
        install(OLD, tmp_path / "afile")
    with pytest.raises(BundleError, match="must name"):
        install(OLD, "")
    fresh = tmp_path / "fresh"
    install(OLD, fresh)
    stray = fresh / "bundles" / "left-by-someone"
    stray.mkdir()
    install(NEW, fresh)
    install(OLD, fresh)  # cleaning removes only bundles it completed itself
    assert stray.is_dir()
    with pytest.raises(BundleError, match="not an installation directory"):
        status(tmp_path / "nowhere")
