"""--strategy on one machine: MirroredStrategy over two logical CPU devices, and
MultiWorkerMirroredStrategy with two worker processes on loopback. Each build runs in its own
process (logical devices and the collective runtime must be set before TensorFlow starts), on the
same small SMS files, through the same conversion, parity and bundle path as a single-device
build; the accuracies are compared on one fixed test file."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from bilite_device import load_bundle
from bilite_device.smoke import run_smoke
from conftest import SMS

# Small enough for seconds per epoch on 2 cores, big enough that a broken training shows.
TINY = ["--units", "8", "--embed-dim", "16", "--epochs", "2", "--max-len", "32", "--form", "while",
        "--seed", "3"]
# A model that learned nothing says "ham" to all: 0.87 on this test file. Trained, these tiny
# models reach 0.97-0.99; 0.93 fails any training that is broken rather than unlucky.
MIN_ACCURACY = 0.93
MAX_GAP = 0.03  # accuracy points between a distributed and the single-device build, as a fraction

DRIVER = """
import sys
logical = int(sys.argv[1])
if logical > 1:  # before TensorFlow initializes: one physical CPU seen as several devices
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * logical)
from bilite.cli import main
main(sys.argv[2:], prog_name="bilite")
"""


def start(args, logical_cpus=1, tf_config=None, log_path=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    out = open(log_path, "w")
    return subprocess.Popen(["nice", sys.executable, "-c", DRIVER, str(logical_cpus), "build", *args],
                            stdout=out, stderr=subprocess.STDOUT, text=True, env=env)


def finish(proc, log_path, timeout=600):
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"timed out; log:\n{log_path.read_text()[-3000:]}")
    log = log_path.read_text()
    assert rc == 0, log[-3000:]
    return log


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Train on every 3rd SMS message, test on a fixed disjoint 5 % (279 messages, 13 % spam)."""
    root = tmp_path_factory.mktemp("strategies")
    lines = SMS.read_text(encoding="utf-8").splitlines()
    (root / "train.txt").write_text("\n".join(l for i, l in enumerate(lines) if i % 10 != 5 and i % 3 == 0) + "\n")
    (root / "test.txt").write_text("\n".join(l for i, l in enumerate(lines) if i % 20 == 5) + "\n")
    return root


def build_args(files, out, *extra):
    return [str(files / "train.txt"), "--test-data", str(files / "test.txt"), "--out", str(out), *TINY, *extra]


@pytest.fixture(scope="module")
def single(files):
    log_path = files / "single.log"
    log = finish(start(build_args(files, files / "single"), log_path=log_path), log_path)
    return files / "single", log


@pytest.fixture(scope="module")
def mirrored(files):
    log_path = files / "mirrored.log"
    log = finish(start(build_args(files, files / "mirrored", "--strategy", "mirrored"), logical_cpus=2,
                       log_path=log_path), log_path)
    return files / "mirrored", log


def start_workers(files, run: str):
    """Two workers on fresh loopback ports, streaming their shards of the same file."""
    cluster = {"worker": [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]}
    procs = []
    for index in (0, 1):
        log_path = files / f"worker{index}{run}.log"
        args = build_args(files, files / f"worker{index}", "--strategy", "multiworker", "--stream",
                          "--backup-dir", str(files / "backup"))
        procs.append((start(args, tf_config={"cluster": cluster, "task": {"type": "worker", "index": index}},
                            log_path=log_path), log_path))
    return procs


@pytest.fixture(scope="module")
def multiworker(files):
    """Both workers are killed (as a crash or a preemption would) once the chief has backed up
    the first epoch, then restarted with the same command: they resume from the backup, finish
    (both with status 0), and worker 0, the chief, writes the bundle."""
    first = start_workers(files, "-killed")
    chief_backup = files / "backup" / "chief" / "checkpoint"  # tf_keras writes this file last
    deadline = time.monotonic() + 600
    while not chief_backup.exists() and time.monotonic() < deadline and first[0][0].poll() is None:
        time.sleep(0.1)
    for proc, _ in first:
        proc.kill()
        proc.wait()
    assert chief_backup.exists(), (files / "worker0-killed.log").read_text()[-3000:]
    killed_log = (files / "worker0-killed.log").read_text()
    logs = [finish(proc, log_path) for proc, log_path in start_workers(files, "")]
    return files, killed_log, logs


def metadata(bundle_dir):
    return json.loads((bundle_dir / "metadata.json").read_text())


def check_shipped_like_single(bundle_dir, single_dir, log):
    """Same files, same conversion record, verified on both device runtimes, smoke passes here."""
    assert sorted(p.name for p in bundle_dir.iterdir()) == sorted(p.name for p in single_dir.iterdir())
    meta, single_meta = metadata(bundle_dir), metadata(single_dir)
    assert meta["model"]["form"] == single_meta["model"]["form"] == "while"
    assert meta["model"]["quantization"] == "dynamic"
    assert [c["form"] for c in meta["model"]["selection"]["candidates"]] == ["while"]
    assert meta["model"]["selection"]["candidates"][0]["parity"]["failures"] == []
    assert "smoke on tflite-runtime 2.14.0" in log
    if os.environ.get("BILITE_DEVICE_LITERT_PYTHON"):
        assert "smoke on ai-edge-litert" in log
    report = run_smoke(load_bundle(bundle_dir))
    assert report.ok, report.failures
    accuracy, single_accuracy = meta["metrics"]["accuracy"], single_meta["metrics"]["accuracy"]
    assert meta["metrics"]["n"] == single_meta["metrics"]["n"] == 279  # the same test file
    assert accuracy >= MIN_ACCURACY and single_accuracy >= MIN_ACCURACY, (accuracy, single_accuracy)
    assert abs(accuracy - single_accuracy) <= MAX_GAP, (accuracy, single_accuracy)
    return meta


def test_mirrored_over_two_logical_cpus_ships_like_single_device(single, mirrored):
    (single_dir, _), (mirrored_dir, log) = single, mirrored
    assert "strategy: MirroredStrategy over 2 device(s): /device:CPU:0, /device:CPU:1" in log
    meta = check_shipped_like_single(mirrored_dir, single_dir, log)
    assert meta["training"]["config"]["scale"]["strategy"] == "mirrored"
    assert meta["training"]["epochs_run"] == 2


def test_two_workers_resume_from_the_backup_and_only_the_chief_writes(single, multiworker):
    (single_dir, _), (root, killed_log, (chief_log, worker_log)) = single, multiworker
    assert "this process is worker 0 (chief, 2 workers), 2 replicas in all" in chief_log
    assert "this process is worker 1 (2 workers), 2 replicas in all" in worker_log
    assert "worker 1 (2 workers): training done; the chief converts and writes the bundle" in worker_log
    assert not (root / "worker1").exists() and not (root / "worker1.tar.gz").exists()
    epochs = lambda log: [l.split("(")[0] for l in log.splitlines() if l.startswith("epoch ")]  # noqa: E731
    assert [e[:10] for e in epochs(killed_log)] == ["epoch 1/2:"]  # killed after epoch 1's backup
    # The restart runs epoch 2 only; synchronous training: both workers log the same globally
    # reduced losses.
    assert [e[:10] for e in epochs(chief_log)] == ["epoch 2/2:"] and epochs(chief_log) == epochs(worker_log)
    meta = check_shipped_like_single(root / "worker0", single_dir, chief_log)
    assert meta["training"]["config"]["scale"] | {"backup_dir": None} == {
        "stream": True, "strategy": "multiworker", "workers": 2, "backup_dir": None, "shuffle_buffer": 10000,
        "vocab_count_cap": 200000}
    assert not list((root / "backup").rglob("checkpoint"))  # a finished training removes its backup


def test_multiworker_without_tf_config_is_a_config_error(files):
    log_path = files / "no-tf-config.log"
    proc = start(build_args(files, files / "none", "--strategy", "multiworker"), log_path=log_path)
    proc.wait(timeout=120)
    log = log_path.read_text()
    assert proc.returncode == 1 and not (files / "none").exists()
    assert log.startswith("bilite: error: --strategy multiworker needs the TF_CONFIG environment variable")
    assert '"task": {"type": "worker", "index": 0}' in log


def test_backup_and_restore_resumes_a_single_device_training(tmp_path):
    """Keras 3's BackupAndRestore (default and mirrored strategies): a run that crashes at the start
    of epoch 3 resumes there, and a finished run removes its backup."""
    import keras
    import numpy as np

    from bilite.config import ModelConfig, ScaleConfig, TrainConfig
    from bilite.distributed import train_arrays

    class Crash(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise RuntimeError("simulated crash")

    x = np.random.default_rng(0).integers(2, 50, size=(256, 12)).astype("int32")
    y = (x[:, 0] > 25).astype("int64")
    backup = tmp_path / "backup"
    args = (ModelConfig(units=4, embed_dim=4), TrainConfig(epochs=4, batch_size=64),
            ScaleConfig(backup_dir=str(backup)), 50, 2, 12, x[:200], y[:200], x[200:], y[200:])
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_arrays(*args, log=lambda line: None, extra_callbacks=[Crash()])
    assert json.loads((backup / "training_metadata.json").read_text()) == {"epoch": 2, "batch": 0}
    lines = []
    model, history = train_arrays(*args, log=lines.append)
    assert [line[:10] for line in lines] == ["epoch 3/4:", "epoch 4/4:"]
    assert len(history["loss"]) == 2 and model.count_params() > 0 and not backup.exists()


@pytest.mark.parametrize("tf_config, message", [
    ("{not json", "TF_CONFIG is not valid JSON"),
    ('{"cluster": {"worker": ["a:1"]}}', "TF_CONFIG must hold a cluster with a list of workers and this process's task"),
    ('{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "worker", "index": 0}}',
     "names task types ['ps']"),
    ('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 2}}',
     "does not name a member of the cluster (workers 2, chiefs 0"),
])
def test_bad_tf_config_is_a_config_error_saying_what_was_seen(tf_config, message):
    from bilite.config import ScaleConfig
    from bilite.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        ScaleConfig(strategy="multiworker", tf_config=tf_config)
    assert message in str(caught.value)


def test_worker_roles_from_tf_config():
    from bilite.distributed import parse_tf_config

    with_chief = {"cluster": {"chief": ["c:1"], "worker": ["a:1", "b:1"]}}
    roles = [parse_tf_config(json.dumps({**with_chief, "task": task})) for task in
             ({"type": "chief", "index": 0}, {"type": "worker", "index": 0}, {"type": "worker", "index": 1})]
    assert [(r.rank, r.is_chief, r.workers) for r in roles] == [(0, True, 3), (1, False, 3), (2, False, 3)]
    plain = parse_tf_config('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}')
    assert (plain.rank, plain.is_chief, plain.describe()) == (1, False, "worker 1 (2 workers)")


def _tf_config(workers, task=None, chiefs=None):
    cluster = {"worker": workers, **({"chief": chiefs} if chiefs is not None else {})}
    return json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0} if task is None else task})


# Each of these used to reach TensorFlow: "nocolon" an InvalidArgumentError from gRPC, a task
# without an index a ValueError, an integer address a TypeError; duplicates and port 99999 made
# the worker wait forever. Now each is a ConfigError naming TF_CONFIG and the bad value.
@pytest.mark.parametrize("tf_config, message", [
    (_tf_config(["nocolon", "b:2"]), "cluster.worker[0] is 'nocolon', which has no \"host:port\" form"),
    (_tf_config([12345, "b:2"]), "cluster.worker[0] is 12345 (int); expected a string \"host:port\""),
    (_tf_config(["a:1", None]), "cluster.worker[1] is None (NoneType)"),
    (_tf_config(["a:99999", "b:2"]), "port '99999' is not a whole number from 1 to 65535"),
    (_tf_config(["a:0", "b:2"]), "port '0' is not a whole number from 1 to 65535"),
    (_tf_config(["a:http", "b:2"]), "port 'http' is not a whole number"),
    (_tf_config(["a:", "b:2"]), "has no \"host:port\" form"),
    (_tf_config([":5", "b:2"]), "has no \"host:port\" form"),
    (_tf_config(["a :5", "b:2"]), "holds whitespace"),
    (_tf_config(["::1:5", "b:2"]), "an IPv6 host goes in brackets"),
    (_tf_config(["a:1", "a:1"]), "cluster.worker[1] is 'a:1', the same address as cluster.worker[0]"),
    (_tf_config(["a:1"], chiefs=["a:1"]), "cluster.worker[0] is 'a:1', the same address as cluster.chief[0]"),
    (_tf_config(["a:1", "b:2"], task={"type": "worker"}), "has no \"index\""),
    (_tf_config(["a:1", "b:2"], task={"type": "worker", "index": "0"}), "index '0' must be a whole number from 0 to 1"),
    (_tf_config(["a:1", "b:2"], task={"type": "worker", "index": True}), "index True must be a whole number"),
    (_tf_config(["a:1", "b:2"], task={"type": "worker", "index": -1}), "index -1 must be a whole number from 0 to 1"),
    (_tf_config(["a:1", "b:2"], task={"type": "ps", "index": 0}), "has type 'ps', which does not name a member"),
    (_tf_config(["a:1", "b:2"], task={"index": 0}), "has type None"),
    (_tf_config(["a:1", "b:2"], task={"type": "chief", "index": 0}), "has type 'chief', which does not name"),
    (_tf_config(["a:1"], task={"type": "chief", "index": 1}, chiefs=["c:1"]), "index 1 must be a whole number from 0 to 0"),
    (_tf_config(["a:1"], chiefs=["c:1", "d:1"]), "names 2 chiefs"),
])
def test_tf_config_addresses_and_task_are_checked_before_tensorflow(tf_config, message):
    from bilite.distributed import parse_tf_config
    from bilite.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        parse_tf_config(tf_config)
    assert message in str(caught.value) and "TF_CONFIG" in str(caught.value)


@pytest.mark.parametrize("address", ["localhost:1", "10.0.0.2:65535", "[::1]:12345", "worker-1.example.org:2222"])
def test_good_tf_config_addresses_are_accepted(address):
    from bilite.distributed import parse_tf_config

    role = parse_tf_config(_tf_config(["a:1", address], task={"type": "worker", "index": 1}))
    assert (role.rank, role.address, role.addresses) == (1, address, ("a:1", address))


def test_waiting_for_workers_is_announced_and_ctrl_c_can_stop_it():
    """The strategy's constructor blocks in C++ until every peer runs: the log names the peers, and
    SIGINT has its default action (end the process) for exactly that long."""
    import signal

    from bilite.distributed import _create_multiworker_strategy, parse_tf_config

    role = parse_tf_config(_tf_config(["a:1", "b:2"], chiefs=["c:3"], task={"type": "worker", "index": 0}))
    seen = {}

    class FakeTf:
        class distribute:
            @staticmethod
            def MultiWorkerMirroredStrategy():
                seen["handler"] = signal.getsignal(signal.SIGINT)
                return "strategy"

    lines = []
    before = signal.getsignal(signal.SIGINT)
    assert _create_multiworker_strategy(FakeTf, role, lines.append) == "strategy"
    assert seen["handler"] is signal.SIG_DFL and signal.getsignal(signal.SIGINT) is before
    assert lines == ["waiting for worker(s) c:3, b:2 (TF_CONFIG) to start; this process listens on a:1. "
                     "It waits until they all run: start them, or press Ctrl-C to stop"]
