"""Users' own models for the bring-your-own tests: built with Keras 3 or tf_keras, saved in each
format that Keras supports, with weights drawn wide enough that scores spread over (0, 1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

VOCAB = 300


def build_user_model(flavour="keras", cell="lstm", layers=1, merge="concat", mask=False, head="softmax",
                     length=12, units=6, embed=8, labels=3, seed=0, vocab=VOCAB, extra=None, sequential=False):
    """head: "sigmoid" (binary, one unit), "softmax" (``labels`` classes) or "tagging".
    ``sequential``: a ``Sequential`` model instead of a functional one (the same weights)."""
    if flavour == "keras":
        import keras as k
    else:
        import tf_keras as k
    L = k.layers
    rnn = {"lstm": L.LSTM, "gru": L.GRU, "simple_rnn": L.SimpleRNN}[cell]
    chain = [L.Embedding(vocab, embed, mask_zero=mask)]
    for i in range(layers):
        sequences = head == "tagging" or i < layers - 1
        chain += [L.Bidirectional(rnn(units, return_sequences=sequences), merge_mode=merge), L.Dropout(0.1)]
    if extra is not None:
        chain.append(extra(L))
    if head == "sigmoid":
        chain.append(L.Dense(1, activation="sigmoid"))
    elif head == "tagging":
        chain.append(L.TimeDistributed(L.Dense(labels, activation="softmax")))
    else:
        chain.append(L.Dense(labels, activation="softmax"))
    inputs = k.Input(shape=(length,), dtype="int32")
    if sequential:
        model = k.Sequential([inputs, *chain])
    else:
        x = inputs
        for layer in chain:
            x = layer(x)
        model = k.Model(inputs, x)
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    return model


def save_user_model(model, folder: Path, fmt: str, flavour: str) -> Path:
    """fmt: "keras", "h5" or "savedmodel" (tf_keras only: Keras 3 exports no layers)."""
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "savedmodel":
        path = folder / "savedmodel"
        model.save(str(path), save_format="tf")
    else:
        path = folder / f"model.{fmt}"
        model.save(str(path))
    return path
