"""A user's Keras model as a neutral layer spec, and that spec rebuilt for each conversion form.

Why a spec: a model arrives from Keras 3 or tf_keras, with a free batch size and sometimes a free
length. Conversion needs a static ``[1, max_len]`` input (a free batch makes the converter emit
Flex ops), and the three forms need different builds: the WHILE loop and the unrolled graph from
Keras 3 (``unroll=True``), the fused LSTM from tf_keras. Reading the model into a flavour-free
list of layers and their weights lets bilite rebuild any form from either flavour; LSTM, GRU and
SimpleRNN weight layouts are the same in both. Parity with the user's own model (compare.py)
then proves each rebuild, so an unnoticed difference cannot ship.

Only a chain of known layers is accepted; everything else is refused here, with the reason and
the fix, before any conversion starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import (ConversionError, StatefulModelError, StringOpsError, UnsupportedLayerError)

RNN_CELLS = {"LSTM": "lstm", "GRU": "gru", "SimpleRNN": "simple_rnn"}
# Identity at inference: Keras skips them outside training, so the spec drops them.
INFERENCE_IDENTITY = {"Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout", "AlphaDropout",
                      "ActivityRegularization"}
STRING_LAYERS = {"TextVectorization", "StringLookup", "Hashing", "HashedCrossing"}
POOLING = {"GlobalMaxPooling1D": "max", "GlobalAveragePooling1D": "average"}
SUPPORTED = ("Embedding, Bidirectional/LSTM/GRU/SimpleRNN, Dense, TimeDistributed(Dense), "
             "GlobalMaxPooling1D, GlobalAveragePooling1D, Activation, and dropout/noise layers")
MERGE_MODES = ("concat", "sum", "ave", "mul")


@dataclass
class ModelSpec:
    """A chain of layers (dicts with a ``kind``) and each layer's weights, in order."""

    length: int | None  # the model's own input length; None if it accepts any
    layers: list[dict] = field(default_factory=list)
    weights: list[list[np.ndarray]] = field(default_factory=list)
    flavour: str = "keras"  # the Keras that loaded it: "keras" (3) or "tf_keras"

    @property
    def masked(self) -> bool:
        return any(layer.get("mask_zero") for layer in self.layers)

    @property
    def cells(self) -> set[str]:
        return {layer["cell"] for layer in self.layers if layer["kind"] == "rnn"}

    @property
    def embedding_rows(self) -> int:
        return self.layers[0]["input_dim"]

    @property
    def tagging(self) -> bool:
        """One output per token (the last recurrent layer returns sequences, nothing pools)."""
        rank = 3
        for layer in self.layers:
            if layer["kind"] == "rnn" and not layer["return_sequences"] or layer["kind"] == "pool":
                rank = 2
        return rank == 3

    @property
    def output_units(self) -> int:
        return self.layers[-1]["units"]

    @property
    def output_kind(self) -> str:
        return self.layers[-1]["activation"]

    def to_json(self) -> dict:
        return {"length": self.length, "layers": self.layers, "flavour": self.flavour}


def _name(obj) -> str:
    return type(obj).__name__


def _activation(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):  # Keras 3 serializes some activations as {"class_name": ...}
        return str(value.get("config", value.get("class_name")))
    return getattr(value, "__name__", str(value))


def _rnn(layer, where: str) -> dict:
    cls = _name(layer)
    if cls not in RNN_CELLS:
        raise UnsupportedLayerError(f"{where}: Bidirectional wraps {cls}; bilite converts LSTM, GRU and "
                                    "SimpleRNN. Rebuild the model with one of them.")
    cfg = layer.get_config()
    if cfg.get("stateful") or getattr(layer, "stateful", False):
        raise StatefulModelError(
            f"{where} ({cls}) is stateful: it carries state from one batch to the next, which a "
            "deployed text model must not (and TFLite cannot convert). Rebuild the layer with "
            "stateful=False, copy the weights (model.set_weights), and bundle that model.")
    if cfg.get("return_state"):
        raise UnsupportedLayerError(f"{where} ({cls}) has return_state=True; bilite bundles one "
                                    "output tensor. Rebuild it with return_state=False.")
    if cfg.get("time_major"):
        raise UnsupportedLayerError(f"{where} ({cls}) is time_major; rebuild it batch-major.")
    spec = {"kind": "rnn", "cell": RNN_CELLS[cls], "units": int(cfg["units"]),
            "activation": _activation(cfg.get("activation", "tanh")),
            "use_bias": bool(cfg.get("use_bias", True)),
            "return_sequences": bool(cfg.get("return_sequences", False)),
            "go_backwards": bool(cfg.get("go_backwards", False))}
    if cls != "SimpleRNN":
        spec["recurrent_activation"] = _activation(cfg.get("recurrent_activation", "sigmoid"))
    if cls == "GRU":
        spec["reset_after"] = bool(cfg.get("reset_after", True))
    return spec


def _layer_spec(layer, where: str) -> dict | None:
    cls = _name(layer)
    cfg = layer.get_config()
    if cls in STRING_LAYERS:
        raise StringOpsError(
            f"{where} is a {cls}: string ops have no TFLite builtin and a device runtime cannot run "
            "them. Strip it: bundle the model from its Embedding on (keras.Model(embedding.input, "
            "model.output) or a new Input), export the vocabulary (layer.get_vocabulary()) and pass "
            "it with --vocab: bilite tokenizes on the device with the same rules.")
    if cls in INFERENCE_IDENTITY:
        return None
    if cls == "Embedding":
        return {"kind": "embedding", "input_dim": int(cfg["input_dim"]), "output_dim": int(cfg["output_dim"]),
                "mask_zero": bool(cfg.get("mask_zero", False))}
    if cls == "Bidirectional":
        merge = cfg.get("merge_mode")
        if merge not in MERGE_MODES:
            raise UnsupportedLayerError(f"{where}: Bidirectional merge_mode={merge!r} returns two "
                                        f"outputs; use one of {MERGE_MODES}.")
        forward, backward = _rnn(layer.forward_layer, where), _rnn(layer.backward_layer, where)
        same = {k: v for k, v in forward.items() if k != "go_backwards"} == \
            {k: v for k, v in backward.items() if k != "go_backwards"}
        if not same:
            raise UnsupportedLayerError(f"{where}: the backward layer differs from the forward one; "
                                        "bilite converts Bidirectional layers with one cell configuration.")
        return {**forward, "bidirectional": True, "merge_mode": merge}
    if cls in RNN_CELLS:
        return {**_rnn(layer, where), "bidirectional": False}
    if cls == "TimeDistributed" and _name(layer.layer) == "Dense":
        return {**_layer_spec(layer.layer, where), "time_distributed": True}
    if cls == "Dense":
        return {"kind": "dense", "units": int(cfg["units"]), "activation": _activation(cfg.get("activation")),
                "use_bias": bool(cfg.get("use_bias", True))}
    if cls in POOLING:
        return {"kind": "pool", "pool": POOLING[cls]}
    if cls == "Activation":
        return {"kind": "activation", "activation": _activation(cfg["activation"])}
    raise UnsupportedLayerError(
        f"{where} is a {cls}, which bilite cannot rebuild for a builtin-only TFLite graph. Supported: "
        f"{SUPPORTED}. Remove or replace the layer (or convert the model yourself and bundle the "
        ".tflite file).")


def _chain(model) -> list:
    """The model's layers in order, refusing anything but a single chain from one int input."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UnsupportedLayerError(f"the model has {len(model.inputs)} inputs and {len(model.outputs)} "
                                    "outputs; bilite bundles one token-id input and one score output.")
    layers = [layer for layer in model.layers if _name(layer) != "InputLayer"]
    for layer in layers:
        if _name(layer) in ("Functional", "Sequential", "Model"):
            raise UnsupportedLayerError(f"layer {layer.name!r} is a nested model; flatten it into one "
                                        "chain of layers.")
    # Walk the model's own graph, not layer.input / layer.output: those are a layer's *first* call,
    # and a Keras 3 Sequential reloaded from .keras has layers called several times while it is
    # rebuilt (measured: 3, 2 and 1 inbound nodes), so comparing them refuses a plain chain.
    graph = getattr(model, "_functional", None) or model  # Keras 3 keeps a Sequential's graph here
    by_depth = getattr(graph, "_nodes_by_depth", None)
    if not by_depth:
        raise UnsupportedLayerError(f"bilite cannot read the layer graph of this {_name(model)} model; "
                                    "rebuild it as keras.Model(inputs, outputs) or keras.Sequential.")
    masked = any(getattr(layer, "mask_zero", False) for layer in layers)
    order, previous, mask_ops = [], None, set()
    for depth in sorted(by_depth, reverse=True):  # the input is the deepest node, the output depth 0
        nodes = []
        for node in by_depth[depth]:
            op = _node_layer(node)
            # Keras 3 draws mask_zero's mask as its own NotEqual(ids, 0) node beside the Embedding.
            if masked and _name(op) == "NotEqual" and [_name(_node_layer(p)) for p in node.parent_nodes] == ["InputLayer"]:
                mask_ops.add(id(op))
            else:
                nodes.append(node)
        parents = {id(_node_layer(parent)) for node in nodes for parent in node.parent_nodes} - mask_ops
        if len(nodes) != 1 or (previous is not None and parents != {id(previous)}):
            names = ", ".join(repr(_node_layer(node).name) for node in nodes)
            raise UnsupportedLayerError(f"layer(s) {names} do not simply take the previous layer's output: "
                                        "bilite converts a chain of layers (no branches, skips or shared "
                                        "layers). Rebuild the model as one chain.")
        previous = _node_layer(nodes[0])
        if _name(previous) != "InputLayer":
            order.append(previous)
    if [id(layer) for layer in order] != [id(layer) for layer in layers]:
        raise UnsupportedLayerError("the model's layer list and its graph disagree (a layer that is "
                                    "not on the path from input to output?); rebuild it as one chain.")
    return layers


def _node_layer(node):
    return getattr(node, "operation", None) or node.layer  # Keras 3 / tf_keras


def read_spec(model, flavour: str) -> ModelSpec:
    """The spec of a loaded Keras model, or a typed error naming what cannot be converted."""
    try:
        inputs = model.inputs
    except AttributeError:  # Keras 3: a Sequential saved without an Input has no inputs to read
        inputs = None
    if not inputs:
        raise UnsupportedLayerError(
            f"the model {getattr(model, 'name', '')!r} has no defined inputs (a Sequential saved without an "
            "input shape): its input length and dtype are unknown. Start it with keras.Input(shape=(max_len,), "
            "dtype=\"int32\"), copy the weights (model.set_weights) and save it again.")
    inp = inputs[0]
    dtype = str(getattr(inp, "dtype", "")).replace("<dtype: '", "").rstrip("'>")
    layers = _chain(model)
    for layer in layers:  # string ops first: their message matters more than the input's dtype
        if _name(layer) in STRING_LAYERS:
            _layer_spec(layer, f"layer {layer.name!r}")
    if "string" in dtype:
        raise StringOpsError("the model takes strings as input: string ops have no TFLite builtin. "
                             "Bundle the model from its Embedding on and pass its vocabulary with --vocab.")
    shape = tuple(inp.shape)
    if len(shape) != 2:
        raise UnsupportedLayerError(f"the model input has shape {shape}; bilite bundles models that "
                                    "take token ids of shape (batch, length).")
    spec = ModelSpec(length=int(shape[1]) if shape[1] is not None else None, flavour=flavour)
    for index, layer in enumerate(layers):
        entry = _layer_spec(layer, f"layer {layer.name!r}")
        if entry is None:
            continue
        spec.layers.append(entry)
        spec.weights.append([np.asarray(w) for w in layer.get_weights()])
    _check_shape(spec)
    return spec


def _check_shape(spec: ModelSpec) -> None:
    kinds = [layer["kind"] for layer in spec.layers]
    if not kinds or kinds[0] != "embedding":
        raise UnsupportedLayerError("the model must start with an Embedding over token ids "
                                    f"(saw {kinds[:1] or 'no layers'}).")
    if "rnn" not in kinds:
        raise UnsupportedLayerError("the model has no recurrent layer; bilite converts BiRNN models.")
    # A trailing softmax/sigmoid Activation after a linear Dense is the same as an activated Dense.
    if kinds[-1] == "activation" and len(kinds) > 1 and kinds[-2] == "dense" and \
            spec.layers[-2]["activation"] == "linear":
        spec.layers[-2] = {**spec.layers[-2], "activation": spec.layers[-1]["activation"], "merged": True}
        spec.layers.pop()
        spec.weights.pop()
    last = spec.layers[-1]
    if last["kind"] != "dense" or last["activation"] not in ("softmax", "sigmoid"):
        raise UnsupportedLayerError(
            "the model must end in a Dense layer with softmax (or, for two labels, one sigmoid unit): "
            f"it ends in {last['kind']} with activation {last.get('activation')!r}. Scores must be "
            "probabilities; add keras.layers.Activation('softmax') after a logits layer.")
    if last["activation"] == "sigmoid" and last["units"] != 1:
        raise UnsupportedLayerError(f"a sigmoid head must have one unit (two labels); it has "
                                    f"{last['units']}: multi-label heads are not supported.")


def rebuild(spec: ModelSpec, form: str, max_len: int):
    """``spec`` as a model with a static ``[1, max_len]`` int32 input, in the flavour ``form``
    needs (tf_keras for the fused LSTM, Keras 3 otherwise), with the weights copied."""
    if form == "fused":
        import tf_keras as k
    else:
        import keras as k
    L = k.layers
    cells = {"lstm": L.LSTM, "gru": L.GRU, "simple_rnn": L.SimpleRNN}
    inputs = k.Input(shape=(max_len,), batch_size=1, dtype="int32", name="token_ids")
    x, built = inputs, []
    for index, entry in enumerate(spec.layers):
        kind = entry["kind"]
        if kind == "embedding":
            layer = L.Embedding(entry["input_dim"], entry["output_dim"], mask_zero=entry["mask_zero"])
        elif kind == "rnn":
            kwargs = {key: entry[key] for key in ("units", "activation", "use_bias", "return_sequences",
                                                    "go_backwards", "recurrent_activation", "reset_after")
                      if key in entry}
            layer = cells[entry["cell"]](**kwargs, unroll=form == "unrolled")
            if entry["bidirectional"]:
                layer = L.Bidirectional(layer, merge_mode=entry["merge_mode"])
        elif kind == "dense":
            layer = L.Dense(entry["units"], activation=entry["activation"], use_bias=entry["use_bias"],
                            name="scores" if index == len(spec.layers) - 1 else None)
            if entry.get("time_distributed"):
                layer = L.TimeDistributed(layer)
        elif kind == "pool":
            layer = L.GlobalMaxPooling1D() if entry["pool"] == "max" else L.GlobalAveragePooling1D()
        else:
            layer = L.Activation(entry["activation"])
        x = layer(x)
        built.append(layer)
    model = k.Model(inputs, x)
    for layer, weights in zip(built, spec.weights):
        try:
            layer.set_weights(weights)
        except ValueError as exc:
            raise ConversionError(f"rebuilding {layer.name} for the {form!r} form: the weights do not "
                                  f"fit ({exc})") from None
    return model
