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


def parse_tf_config(text: str | None) -> WorkerRole:
    """This process's role from TF_CONFIG, or a ConfigError saying what is wrong and how to fix it."""
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
    task_type, index = task.get("type"), task.get("index", 0)
    members = {"worker": workers, "chief": chiefs}.get(task_type)
    if members is None or not isinstance(index, int) or not 0 <= index < len(members) or len(chiefs) > 1:
        raise ConfigError(f"TF_CONFIG's task {task} does not name a member of the cluster (workers "
                          f"{len(workers)}, chiefs {len(chiefs)}, at most one chief); expected a type "
                          "'worker' with an index below the number of workers")
    return WorkerRole(task_type, index, len(workers) + len(chiefs), bool(chiefs))


def start_strategy(strategy_name: str, role: WorkerRole, log=print):
    """(tf.distribute strategy, Keras module to train with). Call before any other TensorFlow
    operation: MultiWorkerMirroredStrategy configures the runtime's collectives when created."""
    import tensorflow as tf

    if strategy_name == "multiworker":
        import tf_keras

        strategy = tf.distribute.MultiWorkerMirroredStrategy()
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
