"""Build and train the BiRNN classifier, and rebuild it for each conversion form.

Training uses Keras 3 with a free batch size. Conversion needs a static batch of 1 (a free batch
makes the converter emit Flex ops, which no device runtime has), so the trained weights are
copied into an inference twin built for the chosen form:

* ``while``: Keras 3, static batch -> builtin WHILE loops, no state between invokes;
* ``unrolled``: Keras 3 with ``unroll=True`` -> one flat graph, no state, grows with max_len;
* ``fused``: tf_keras (Keras 2) -> ``UNIDIRECTIONAL_SEQUENCE_LSTM``, whose h/c live in variable
  tensors across invokes, so the device resets them before every run.

LSTM/GRU weight layouts are identical in Keras 3 and tf_keras, so ``set_weights`` carries over.
TensorFlow is imported inside functions so that ``bilite --help`` stays instant.
"""

from __future__ import annotations

import time

import numpy as np

from .config import ModelConfig, TrainConfig


def _layers_module(form: str):
    if form == "fused":
        import tf_keras as keras_mod
    else:
        import keras as keras_mod
    return keras_mod


# Widths of the extra per-token feature embeddings (taggers): small tables, small vectors.
FEATURE_EMBED_DIM = {"case": 8, "suffix2": 24, "suffix3": 32}


def build_model(cfg: ModelConfig, vocab_size: int, num_labels: int, max_len: int,
                form: str = "while", batch_size: int | None = None, tagging: bool = False,
                extra_features: tuple[tuple[str, int], ...] = ()):
    """Embedding -> Bidirectional(cell) x layers -> Dense.

    Classifier: the last layer returns its final state; Dense is sigmoid for 2 labels (unless
    ``cfg.binary_head`` is "softmax": two softmax units, as TFLite Task Library and MediaPipe
    classifiers need), else softmax. Tagger (``tagging``): every layer returns sequences, a
    softmax Dense per token.
    ``extra_features``: (name, table size) of feature columns after the word id; the input is
    then [max_len, 1 + len(extra_features)] and each column gets its own embedding, concatenated.
    """
    k = _layers_module(form)
    layers = k.layers
    cell = {"lstm": layers.LSTM, "gru": layers.GRU}[cfg.cell]
    if extra_features:
        width = 1 + len(extra_features)
        inputs = k.Input(shape=(max_len, width), batch_size=batch_size, dtype="int32", name="token_ids")
        parts = [layers.Embedding(vocab_size, cfg.embed_dim, name="embedding")(inputs[:, :, 0])]
        for col, (name, size) in enumerate(extra_features, start=1):
            parts.append(layers.Embedding(size, FEATURE_EMBED_DIM[name], name=f"embedding_{name}")(inputs[:, :, col]))
        x = layers.Concatenate(name="token_features")(parts)
    else:
        inputs = k.Input(shape=(max_len,), batch_size=batch_size, dtype="int32", name="token_ids")
        x = layers.Embedding(vocab_size, cfg.embed_dim, name="embedding")(inputs)
    for i in range(cfg.layers):
        last = i == cfg.layers - 1 and not tagging
        rnn = cell(cfg.units, return_sequences=not last, unroll=(form == "unrolled"),
                   name=f"{cfg.cell}_{i}")
        x = layers.Bidirectional(rnn, name=f"bidirectional_{i}")(x)
        if cfg.dropout:
            x = layers.Dropout(cfg.dropout, name=f"dropout_{i}")(x)
    binary = sigmoid_head(cfg, num_labels, tagging)
    outputs = layers.Dense(1 if binary else num_labels, activation="sigmoid" if binary else "softmax",
                           name="scores")(x)
    return k.Model(inputs, outputs, name="bilite_tagger" if tagging else "bilite_classifier")


def sigmoid_head(cfg: ModelConfig, num_labels: int, tagging: bool = False) -> bool:
    """True when the model ends in one sigmoid unit: a two-label classifier, by default."""
    return num_labels == 2 and not tagging and cfg.binary_head == "sigmoid"


def inference_twin(trained, cfg: ModelConfig, vocab_size: int, num_labels: int, max_len: int,
                   form: str, **model_kwargs):
    """The trained model rebuilt with a static batch of 1 in ``form``, weights copied."""
    twin = build_model(cfg, vocab_size, num_labels, max_len, form=form, batch_size=1, **model_kwargs)
    twin.set_weights(trained.get_weights())
    return twin


def predict_scores(model, ids: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Per-label scores [n, num_labels] (a sigmoid head gives [1 - p, p]); taggers [n, T, C]."""
    raw = np.asarray(model.predict(ids, batch_size=batch_size, verbose=0), dtype=np.float32)
    return np.concatenate([1.0 - raw, raw], axis=1) if raw.ndim == 2 and raw.shape[1] == 1 else raw


def compile_for_training(model, k, cfg: ModelConfig, train_cfg: TrainConfig, num_labels: int,
                         tagging: bool = False) -> None:
    """Adam, and the loss the head needs; ``k`` is the Keras module that built ``model``."""
    binary = sigmoid_head(cfg, num_labels, tagging)
    model.compile(
        optimizer=k.optimizers.Adam(train_cfg.learning_rate),
        loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy",
        weighted_metrics=["accuracy"] if tagging else None,
        metrics=None if tagging else ["accuracy"],
    )


def training_callbacks(k, train_cfg: TrainConfig, log, backup_dir: str | None = None) -> list:
    """Per-epoch log line, early stopping on validation loss, and with ``backup_dir`` Keras'
    BackupAndRestore (a backup per finished epoch; a rerun resumes from it)."""

    class EpochLog(k.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            log(f"epoch {epoch + 1}/{train_cfg.epochs}: loss {logs.get('loss', 0):.4f} "
                f"acc {logs.get('accuracy', 0):.4f}  val_loss {logs.get('val_loss', 0):.4f} "
                f"val_acc {logs.get('val_accuracy', 0):.4f}  ({time.perf_counter() - self.start:.1f} s)")

    callbacks = [EpochLog(), k.callbacks.EarlyStopping(monitor="val_loss", patience=train_cfg.patience,
                                                       restore_best_weights=True)]
    if backup_dir:
        callbacks.append(k.callbacks.BackupAndRestore(backup_dir=str(backup_dir)))
    return callbacks


def train_model(cfg: ModelConfig, train_cfg: TrainConfig, vocab_size: int, num_labels: int,
                max_len: int, x_train, y_train, x_val, y_val, log=print, tagging: bool = False,
                extra_features: tuple[tuple[str, int], ...] = (), scale=None):
    """Train with early stopping on validation loss. Taggers: ``y`` is [n, T] tag ids with -1 at
    padding, which gets zero weight in the loss and the accuracy.

    ``scale`` (config.ScaleConfig, classifiers): with a strategy or a backup directory, training
    goes through distributed.py; the model returned is then None on a worker that is not the chief."""
    if scale is not None and (scale.strategy != "default" or scale.backup_dir):
        from .distributed import train_arrays

        return train_arrays(cfg, train_cfg, scale, vocab_size, num_labels, max_len, x_train, y_train,
                            x_val, y_val, log=log)
    import keras

    keras.utils.set_random_seed(train_cfg.seed)
    model = build_model(cfg, vocab_size, num_labels, max_len, tagging=tagging,
                        extra_features=extra_features)
    binary = sigmoid_head(cfg, num_labels, tagging)
    compile_for_training(model, keras, cfg, train_cfg, num_labels, tagging)
    if tagging:
        weights = lambda y: (y >= 0).astype("float32")  # noqa: E731
        fit_data = (x_train, np.maximum(y_train, 0), weights(y_train))
        val_data = (x_val, np.maximum(y_val, 0), weights(y_val))
    else:
        fit_data = (x_train, y_train.astype("float32") if binary else y_train, None)
        val_data = (x_val, y_val.astype("float32") if binary else y_val)
    history = model.fit(
        fit_data[0], fit_data[1], sample_weight=fit_data[2],
        validation_data=val_data,
        epochs=train_cfg.epochs, batch_size=train_cfg.batch_size, verbose=0, shuffle=True,
        callbacks=training_callbacks(keras, train_cfg, log),
    )
    return model, {k: [float(v) for v in vals] for k, vals in history.history.items()}
