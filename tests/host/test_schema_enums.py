"""The device's frozen copy of the TFLite schema enums must match TensorFlow's."""

from bilite_device._schema_enums import BUILTIN_OPERATORS, TENSOR_TYPES


def test_builtin_operators_match_tensorflow():
    from tensorflow.lite.python import schema_py_generated as schema

    theirs = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    # New ops may be appended in newer TF; every code we know must mean the same op.
    assert {k: theirs[k] for k in BUILTIN_OPERATORS} == BUILTIN_OPERATORS
    assert {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")} == TENSOR_TYPES
