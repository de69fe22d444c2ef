"""Training on several devices or machines: ``--strategy default | mirrored | multiworker``.

* ``mirrored``: ``tf.distribute.MirroredStrategy`` over this machine's GPUs, or, without GPUs,
  over its logical CPU devices (when more than one is configured), with Keras 3.
* ``multiworker``: ``tf.distribute.MultiWorkerMirroredStrategy`` over the machines that the
  standard ``TF_CONFIG`` variable names, trained with **tf_keras**. Keras 3 (3.15, TensorFlow
  backend) fails here before the first step, for two reasons in its TensorFlow trainer:
  ``_maybe_symbolic_build`` reduces the first input batch with ``strategy.reduce("MEAN", (x, y),
  axis=None)``, which under MultiWorkerMirroredStrategy goes through a cross-worker collective
  that cannot take the (x, y) structure of PerReplica values ("Attempt to convert a value
  (PerReplica ...) with an unsupported type"); and ``reduce_per_replica`` averages the per-replica
  metrics with ``strategy.reduce("MEAN", v, axis=0)``, which fails on the scalar loss ("Invalid
  reduction dimension 0 for input with 0 dimensions"). Patching Keras' private trainer would
  work until its next release; tf_keras runs the same model (its layers have Keras 3's weight
  layout, which the fused TFLite form already relies on) with multi-worker support that is
  documented and tested, including a BackupAndRestore that knows the chief from the workers. The
  trained weights are copied into the Keras 3 model that every other build step uses.

Batch size is global: each step processes ``--batch-size`` examples split across all replicas,
so the number of steps and the learning dynamics match single-device training. Workers read
disjoint shards (see streaming.py); they all train, and only the chief goes on to convert and
write the bundle. ``--backup-dir`` checkpoints at the end of every epoch (Keras'
``BackupAndRestore``), so a restarted run resumes from the last finished epoch; across machines
it must be a directory every worker can read (the chief writes it, the workers restore from it).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from .errors import ConfigError

STRATEGIES = ("default", "mirrored", "multiworker")

TF_CONFIG_EXAMPLE = ('TF_CONFIG=\'{"cluster": {"worker": ["10.0.0.1:12345", "10.0.0.2:12345"]}, '
                     '"task": {"type": "worker", "index": 0}}\' (index 1 on the second machine)')


@dataclass(frozen=True)
class WorkerRole:
    """This process's place in the training cluster."""

    task_type: str = "chief"  # "chief" or "worker"
    index: int = 0
    workers: int = 1  # training processes in the cluster, the chief included
    has_chief_task: bool = False  # the cluster names a separate "chief" task
    addresses: tuple[str, ...] = ()  # every member's host:port, chief first (for the waiting log line)
    address: str = ""  # this process's own host:port

    @property
    def rank(self) -> int:
        """0 .. workers-1: which shard of the data this process reads."""
        return self.index + 1 if self.has_chief_task and self.task_type == "worker" else self.index

    @property
    def is_chief(self) -> bool:
        """The chief converts and writes the bundle: the "chief" task, else worker 0."""
        return self.rank == 0

    def describe(self) -> str:
        return f"{self.task_type} {self.index} ({'chief, ' if self.is_chief else ''}{self.workers} workers)"


SINGLE_PROCESS = WorkerRole()


def _check_address(address, where: str) -> str:
    """``address`` if it is "host:port" with a port in 1..65535, else a ConfigError. Checked here
    because TensorFlow does not: a bad port or a missing colon fails deep in gRPC, or the
    worker waits forever for a peer that can never answer."""
    fix = (f"give every member as a string \"host:port\" with a port from 1 to 65535, for example "
           f"{TF_CONFIG_EXAMPLE}")
    if not isinstance(address, str):
        raise ConfigError(f"TF_CONFIG {where} is {address!r} ({type(address).__name__}); expected a "
                          f"string \"host:port\". Fix TF_CONFIG: {fix}")
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port:
        raise ConfigError(f"TF_CONFIG {where} is {address!r}, which has no \"host:port\" form. Fix "
                          f"TF_CONFIG: {fix}")
    if any(c.isspace() for c in address):
        raise ConfigError(f"TF_CONFIG {where} is {address!r}, which holds whitespace. Fix TF_CONFIG: {fix}")
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        raise ConfigError(f"TF_CONFIG {where} is {address!r}: an IPv6 host goes in brackets, as in "
                          "\"[::1]:12345\". Fix TF_CONFIG accordingly")
    if not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
        raise ConfigError(f"TF_CONFIG {where} is {address!r}: port {port!r} is not a whole number from "
                          f"1 to 65535. Fix TF_CONFIG: {fix}")
    return address


def parse_tf_config(text: str | None) -> WorkerRole:
    """This process's role from TF_CONFIG, or a ConfigError saying what is wrong and how to fix it.

    Everything TensorFlow would otherwise find out late (an InvalidArgumentError from gRPC, a
    ValueError from the cluster resolver) or never (a duplicate address or an unusable port: the
    worker waits for a peer that cannot exist) is checked here, before TensorFlow starts."""
    if not text:
        raise ConfigError("--strategy multiworker needs the TF_CONFIG environment variable (JSON naming the "
                          f"cluster's workers and this process's task); it is unset or empty. Set it on "
                          f"every machine, for example {TF_CONFIG_EXAMPLE}")
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"TF_CONFIG is not valid JSON ({exc.msg} at character {exc.pos}); expected "
                          f"for example {TF_CONFIG_EXAMPLE}") from None
    cluster = spec.get("cluster") if isinstance(spec, dict) else None
    task = spec.get("task") if isinstance(spec, dict) else None
    workers = cluster.get("worker", []) if isinstance(cluster, dict) else None
    chiefs = cluster.get("chief", []) if isinstance(cluster, dict) else None
    if not isinstance(workers, list) or not isinstance(chiefs, list) or not isinstance(task, dict) \
            or not workers + chiefs:
        raise ConfigError(f"TF_CONFIG must hold a cluster with a list of workers and this process's task; "
                          f"saw {text[:200]}. Expected for example {TF_CONFIG_EXAMPLE}")
    if set(cluster) - {"worker", "chief"}:
        raise ConfigError(f"TF_CONFIG names task types {sorted(set(cluster) - {'worker', 'chief'})}; "
                          "MultiWorkerMirroredStrategy uses only 'worker' (and optionally one 'chief')")
    if len(chiefs) > 1:
        raise ConfigError(f"TF_CONFIG's cluster names {len(chiefs)} chiefs {chiefs}; expected at most one "
                          "(or none: worker 0 is then the chief). Fix TF_CONFIG")
    seen: dict[str, str] = {}
    for kind, members in (("chief", chiefs), ("worker", workers)):
        for i, address in enumerate(members):
            where = f"cluster.{kind}[{i}]"
            _check_address(address, where)
            if address in seen:
                raise ConfigError(f"TF_CONFIG {where} is {address!r}, the same address as {seen[address]}; "
                                  "every worker needs its own host:port (on one machine, another port). "
                                  "Fix TF_CONFIG")
            seen[address] = where
    task_type, index = task.get("type"), task.get("index")
    members = {"worker": workers, "chief": chiefs}.get(task_type)
    if members is None or not members:
        raise ConfigError(f"TF_CONFIG's task {task} has type {task_type!r}, which does not name a member of "
                          f"the cluster (workers {len(workers)}, chiefs {len(chiefs)}); expected type "
                          "'worker'" + (" or 'chief'" if chiefs else "") + f", for example {TF_CONFIG_EXAMPLE}")
    if "index" not in task:
        raise ConfigError(f"TF_CONFIG's task {task} has no \"index\"; expected the position of this "
                          f"process in cluster.{task_type} (0 to {len(members) - 1}), for example "
                          f"{TF_CONFIG_EXAMPLE}")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(members):
        raise ConfigError(f"TF_CONFIG's task {task} does not name a member of the cluster (workers "
                          f"{len(workers)}, chiefs {len(chiefs)}): index {index!r} must be a whole number "
                          f"from 0 to {len(members) - 1}, this process's position in cluster.{task_type}")
    return WorkerRole(task_type, index, len(workers) + len(chiefs), bool(chiefs),
                      tuple(chiefs) + tuple(workers), (chiefs if task_type == "chief" else workers)[index])


def _create_multiworker_strategy(tf, role: WorkerRole, log):
    """MultiWorkerMirroredStrategy(), announced, and stoppable with Ctrl-C while it waits.

    Its constructor blocks in a C++ collective until every worker in TF_CONFIG has started; Python's
    SIGINT handler only runs between bytecodes, so Ctrl-C did nothing for as long as a peer was
    absent. Nothing has been written yet at this point, so the default action (end the process)
    is safe; Python's handler is restored once the cluster is up."""
    import signal
    import threading

    peers = [a for a in role.addresses if a != role.address]
    if peers:
        log(f"waiting for worker(s) {', '.join(peers)} (TF_CONFIG) to start; this process listens on "
            f"{role.address}. It waits until they all run: start them, or press Ctrl-C to stop")
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_DFL) if in_main else None
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)


def start_strategy(strategy_name: str, role: WorkerRole, log=print):
    """(tf.distribute strategy, Keras module to train with). Call before any other TensorFlow
    operation: MultiWorkerMirroredStrategy configures the runtime's collectives when created."""
    import tensorflow as tf

    if strategy_name == "multiworker":
        import tf_keras

        strategy = _create_multiworker_strategy(tf, role, log)
        log(f"strategy: MultiWorkerMirroredStrategy, this process is {role.describe()}, "
            f"{strategy.num_replicas_in_sync} replicas in all (trained with tf_keras)")
        return strategy, tf_keras
    import keras

    if strategy_name == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] \
            or [d.name for d in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices)
        log(f"strategy: MirroredStrategy over {len(devices)} device(s): {', '.join(devices)}")
        return strategy, keras
    return tf.distribute.get_strategy(), keras


def train_on_datasets(model_cfg, train_cfg, scale, vocab_size: int, num_labels: int, max_len: int,
                      make_datasets, log=print, extra_callbacks=()):
    """Build and compile inside the strategy's scope, fit, and return (Keras 3 model, history);
    the model is None on a worker that is not the chief (it trains, the chief ships).

    ``make_datasets(role)`` -> (train, validation, steps_per_epoch, validation_steps): called after
    the strategy exists, since building a tf.data pipeline starts the TensorFlow runtime."""
    from .keras_model import build_model, compile_for_training, training_callbacks

    role = parse_tf_config(scale.tf_config) if scale.strategy == "multiworker" else SINGLE_PROCESS
    strategy, k = start_strategy(scale.strategy, role, log)
    k.utils.set_random_seed(train_cfg.seed)
    train_ds, val_ds, steps, val_steps = make_datasets(role)
    # build_model's "fused" form is the tf_keras one: the same layers, another Keras.
    form = "fused" if k.__name__ == "tf_keras" else "while"
    with strategy.scope():
        model = build_model(model_cfg, vocab_size, num_labels, max_len, form=form)
        compile_for_training(model, k, model_cfg, train_cfg, num_labels)
    callbacks = training_callbacks(k, train_cfg, log, backup_dir=scale.backup_dir) + list(extra_callbacks)
    result = model.fit(train_ds, validation_data=val_ds, epochs=train_cfg.epochs, steps_per_epoch=steps,
                       validation_steps=val_steps, verbose=0, callbacks=callbacks,
                       shuffle=False)  # the datasets shuffle themselves
    history = {key: [float(v) for v in values] for key, values in result.history.items()}
    if not role.is_chief:
        log(f"{role.describe()}: training done; the chief converts and writes the bundle")
        return None, history
    if form == "fused":
        keras3_model = build_model(model_cfg, vocab_size, num_labels, max_len, form="while")
        keras3_model.set_weights(model.get_weights())
        model = keras3_model
    return model, history


def global_steps(examples: int, batch_size: int, role: WorkerRole) -> int | None:
    """Steps per epoch when several workers must agree on it (each repeats its shard so none runs
    dry first, which would stall the others' collectives); None: one pass, as Keras counts it."""
    return max(1, math.ceil(examples / batch_size)) if role.workers > 1 else None


def train_arrays(model_cfg, train_cfg, scale, vocab_size: int, num_labels: int, max_len: int,
                 x_train, y_train, x_val, y_val, log=print, extra_callbacks=()):
    """``train_model`` for in-memory arrays under a strategy or with a backup directory."""
    from .keras_model import sigmoid_head

    float_labels = sigmoid_head(model_cfg, num_labels)

    def make_datasets(role: WorkerRole):
        import tensorflow as tf

        def dataset(x, y, shuffle: bool):
            ds = tf.data.Dataset.from_tensor_slices((x, y.astype("float32") if float_labels else y))
            ds = ds.shard(role.workers, role.rank)
            if shuffle:
                ds = ds.shuffle(len(x), seed=train_cfg.seed, reshuffle_each_iteration=True)
            if role.workers > 1:
                ds = ds.repeat()
            options = tf.data.Options()
            options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
            return ds.batch(train_cfg.batch_size).prefetch(tf.data.AUTOTUNE).with_options(options)

        return (dataset(x_train, y_train, True), dataset(x_val, y_val, False),
                global_steps(len(x_train), train_cfg.batch_size, role),
                global_steps(len(x_val), train_cfg.batch_size, role))

    return train_on_datasets(model_cfg, train_cfg, scale, vocab_size, num_labels, max_len, make_datasets,
                             log=log, extra_callbacks=extra_callbacks)
