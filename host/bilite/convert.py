"""Keras -> TFLite with builtin ops only, and a check that the graph is the form we asked for.

Converter settings and why:
* ``supported_ops = [TFLITE_BUILTINS]``: Flex (SELECT_TF_OPS) exists in no device runtime, so a
  graph that needs it must fail here, not on the device;
* dynamic range: ``optimizations = [DEFAULT]``. For the ``tflite-runtime-2.14`` target, dense
  layers are quantized per tensor: TF 2.21's per-channel dense layers become FULLY_CONNECTED v12,
  which tflite-runtime 2.14 cannot load. The flag is private; tests pin its effect (op version);
* float16: ``supported_types = [float16]`` (weights stored as fp16, computed in fp32).

After conversion the op list and variable tensors are read back from the flatbuffer and checked
against the form: WHILE for ``while``, no WHILE and one subgraph for ``unrolled``, the fused LSTM
with variable tensors for ``fused``. A surprise is an error, never a silently different model.
"""

from __future__ import annotations

import contextlib
import io

from bilite_device._stderr import captured_fd2
from bilite_device.runtime import parse_version
from bilite_device.tflite_file import TfliteFacts, read_tflite_facts

from .errors import ConversionError

# Highest op versions tflite-runtime 2.14 is known to load, for the ops bilite models use.
# FULLY_CONNECTED v12 (per-channel dynamic range) needs 2.17; see conversion-facts notes.
TFLITE_RUNTIME_214_MAX_VERSIONS = {"FULLY_CONNECTED": 11}
TARGET_RUNTIME_VERSION = {"tflite-runtime-2.14": "2.14.0", "ai-edge-litert": None}


def convert_keras(model, quantization: str, target: str, calibration=None, int8_output: bool = False) -> bytes:
    """``calibration``: int32 token ids from real training text, [n, max_len(, features)],
    required for ``int8`` (weights and activations int8; ids stay int32). ``int8_output``: the
    scores tensor stays int8 (the device dequantizes it with the recorded scale and zero point);
    otherwise it is float32."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if target == "tflite-runtime-2.14":
            converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    elif quantization == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantization in ("int8", "int16x8"):
        ids = check_calibration(calibration, model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([ids[i : i + 1]] for i in range(len(ids)))
        # Without restricting to INT8 builtins the result is a hybrid model the size of dynamic
        # range and ~5x slower on x86 (measured): int8 must mean int8.
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8 if quantization == "int8" else
            # int16 activations, int8 weights: experimental; see bench/int16x8_probe.py for which
            # forms it converts (not offered by `bilite build`).
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        converter.inference_output_type = tf.int8 if int8_output and quantization == "int8" else tf.float32
    elif quantization != "float32":
        raise ConversionError(f"unknown quantization {quantization!r}")
    # The converter prints pages of C++ logs and "Saved artifact" notes: keep them out of the
    # user's way, but quote them when conversion fails.
    with captured_fd2() as native, contextlib.redirect_stdout(io.StringIO()) as printed:
        try:
            return converter.convert()
        except Exception as exc:  # the converter raises ConverterError and friends
            error = exc
    lines = [ln for ln in (str(error) + "\n" + native["text"] + printed.getvalue()).splitlines()
             if "error" in ln.lower()]
    first = (lines or [type(error).__name__])[0].strip()[:500]
    raise ConversionError(
        f"TFLite conversion ({quantization}) failed: {first}. Builtin ops only are allowed "
        "(no Flex); try another --form or --quantize float32."
    )


def check_calibration(calibration, model):
    """Calibration must be real token ids inside the vocabulary, as int32: never cast floats."""
    import numpy as np

    if calibration is None or len(calibration) == 0:
        raise ConversionError("int8 needs calibration data: token ids of real training texts")
    ids = np.asarray(calibration)
    if ids.dtype.kind not in "iu":
        raise ConversionError(f"calibration ids must be integers, got {ids.dtype}; token ids are "
                              "never cast from floats")
    # The word-id embedding: the first Embedding layer (named "embedding" in bilite's own models).
    embeddings = [layer for layer in model.layers if type(layer).__name__ == "Embedding"]
    limit = int(next((e for e in embeddings if e.name == "embedding"), embeddings[0]).input_dim)
    words = ids[..., 0] if ids.ndim == 3 else ids  # taggers: column 0 holds the word ids
    if ids.min() < 0 or words.max() >= limit:
        raise ConversionError(f"calibration ids must lie in [0, {limit}) (the vocabulary), saw "
                              f"[{ids.min()}, {words.max()}]: tokenize with the bundle's vocabulary")
    return ids.astype(np.int32)


def check_graph(facts: TfliteFacts, form: str, max_len: int, target: str, width: tuple = ()) -> None:
    """Fail loudly if the converted graph is not what ``form`` promises, or too new for ``target``."""
    problems = []
    custom = sorted(o.name for o in facts.ops if o.name.startswith("CUSTOM:"))
    if custom:
        problems.append(f"custom/Flex ops {custom} (no device runtime has them)")
    names = facts.op_names
    fused = "UNIDIRECTIONAL_SEQUENCE_LSTM" in names
    if form == "while":
        if "WHILE" not in names or fused:
            problems.append(f"expected a WHILE loop and no fused LSTM, got ops {sorted(names)}")
    elif form == "unrolled":
        if "WHILE" in names or fused or facts.subgraph_count != 1:
            problems.append(f"expected one flat subgraph, got {facts.subgraph_count} subgraphs "
                            f"with ops {sorted(names)}")
    elif form == "fused":
        if not fused:
            problems.append(f"expected UNIDIRECTIONAL_SEQUENCE_LSTM, got ops {sorted(names)}")
    if form != "fused" and facts.variable_tensors:
        problems.append(f"form {form!r} must be stateless, but the graph has variable tensors "
                        f"{list(facts.variable_tensors)[:4]}")
    if form == "fused" and not facts.variable_tensors:
        problems.append("fused form without variable tensors: the reset logic would be wrong")
    expected = (1, max_len) + tuple(width)
    if len(facts.inputs) != 1 or facts.inputs[0].dtype != "int32" or facts.inputs[0].shape != expected:
        problems.append(f"expected one int32 input of shape {expected}, got "
                        f"{[(t.dtype, t.shape) for t in facts.inputs]}")
    if len(facts.outputs) != 1:
        problems.append(f"expected one output, got {len(facts.outputs)}")
    problems += target_problems(facts, target)
    if problems:
        raise ConversionError(f"converted {form!r} graph is not as expected: " + "; ".join(problems))


def target_problems(facts: TfliteFacts, target: str) -> list[str]:
    needed = TARGET_RUNTIME_VERSION.get(target)
    if needed is None:
        return []
    problems = []
    for op in facts.ops:
        limit = TFLITE_RUNTIME_214_MAX_VERSIONS.get(op.name)
        if limit is not None and op.version > limit:
            problems.append(f"{op.name} v{op.version} is newer than {target} supports (v{limit})")
    if facts.min_runtime_version and parse_version(facts.min_runtime_version)[:2] > parse_version(needed)[:2]:
        problems.append(f"the model records minimum runtime {facts.min_runtime_version}, newer "
                        f"than {target}")
    return problems


def convert_checked(model, form: str, quantization: str, target: str, max_len: int) -> tuple[bytes, TfliteFacts]:
    blob = convert_keras(model, quantization, target)
    facts = read_tflite_facts(blob)
    # Taggers take [max_len, features] per text; classifiers [max_len].
    check_graph(facts, form, max_len, target, width=tuple(int(d) for d in model.inputs[0].shape[2:]))
    return blob, facts
