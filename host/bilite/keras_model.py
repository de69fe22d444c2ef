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


def build_model(cfg: ModelConfig, vocab_size: int, num_labels: int, max_len: int,
                form: str = "while", batch_size: int | None = None):
    """Embedding -> Bidirectional(cell) x layers -> Dense (sigmoid for 2 labels, else softmax)."""
    k = _layers_module(form)
    layers = k.layers
    cell = {"lstm": layers.LSTM, "gru": layers.GRU}[cfg.cell]
    inputs = k.Input(shape=(max_len,), batch_size=batch_size, dtype="int32", name="token_ids")
    x = layers.Embedding(vocab_size, cfg.embed_dim, name="embedding")(inputs)
    for i in range(cfg.layers):
        last = i == cfg.layers - 1
        rnn = cell(cfg.units, return_sequences=not last, unroll=(form == "unrolled"),
                   name=f"{cfg.cell}_{i}")
        x = layers.Bidirectional(rnn, name=f"bidirectional_{i}")(x)
        if cfg.dropout:
            x = layers.Dropout(cfg.dropout, name=f"dropout_{i}")(x)
    binary = num_labels == 2
    outputs = layers.Dense(1 if binary else num_labels, activation="sigmoid" if binary else "softmax",
                           name="scores")(x)
    return k.Model(inputs, outputs, name="bilite_classifier")


def inference_twin(trained, cfg: ModelConfig, vocab_size: int, num_labels: int, max_len: int,
                   form: str):
    """The trained model rebuilt with a static batch of 1 in ``form``, weights copied."""
    twin = build_model(cfg, vocab_size, num_labels, max_len, form=form, batch_size=1)
    twin.set_weights(trained.get_weights())
    return twin


def predict_scores(model, ids: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Per-label scores [n, num_labels] (a sigmoid head gives [1 - p, p])."""
    raw = np.asarray(model.predict(ids, batch_size=batch_size, verbose=0), dtype=np.float32)
    return np.concatenate([1.0 - raw, raw], axis=1) if raw.shape[1] == 1 else raw


def train_model(cfg: ModelConfig, train_cfg: TrainConfig, vocab_size: int, num_labels: int,
                max_len: int, x_train, y_train, x_val, y_val, log=print):
    import keras

    keras.utils.set_random_seed(train_cfg.seed)
    model = build_model(cfg, vocab_size, num_labels, max_len)
    binary = num_labels == 2
    model.compile(
        optimizer=keras.optimizers.Adam(train_cfg.learning_rate),
        loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )

    class EpochLog(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            log(f"epoch {epoch + 1}/{train_cfg.epochs}: loss {logs.get('loss', 0):.4f} "
                f"acc {logs.get('accuracy', 0):.4f}  val_loss {logs.get('val_loss', 0):.4f} "
                f"val_acc {logs.get('val_accuracy', 0):.4f}  ({time.perf_counter() - self.start:.1f} s)")

    history = model.fit(
        x_train, y_train.astype("float32") if binary else y_train,
        validation_data=(x_val, y_val.astype("float32") if binary else y_val),
        epochs=train_cfg.epochs, batch_size=train_cfg.batch_size, verbose=0, shuffle=True,
        callbacks=[
            EpochLog(),
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=train_cfg.patience,
                                          restore_best_weights=True),
        ],
    )
    return model, {k: [float(v) for v in vals] for k, vals in history.history.items()}
