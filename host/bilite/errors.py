"""Host-side typed errors. They extend the device package's hierarchy, so one
``except BiliteError`` catches everything bilite raises on purpose."""

from bilite_device.errors import BiliteError


class ConfigError(BiliteError):
    """Build options that contradict each other or cannot work."""


class DestinationError(ConfigError):
    """An --out (or --name) that bilite may not write, or whose contents it would destroy."""


class DataError(BiliteError):
    """A dataset file that cannot be read as labelled text."""


class ConversionError(BiliteError):
    """The converter failed, or produced a graph that differs from the form bilite asked for."""


class ParityError(BiliteError):
    """The converted model's scores differ from the Keras model's beyond the stated tolerance."""


class UnsupportedModelError(ConversionError):
    """A user's model that bilite refuses to convert; the message names the cause and the fix."""


class StatefulModelError(UnsupportedModelError):
    """A stateful RNN: state carried between batches cannot ship as a text model."""


class StringOpsError(UnsupportedModelError):
    """TextVectorization or other string ops inside the model: no TFLite builtin runs them."""


class UnsupportedLayerError(UnsupportedModelError):
    """A layer or topology with no builtin-only conversion in bilite."""


class ModelLoadError(UnsupportedModelError):
    """The model file cannot be read by the Keras that saved it."""


class VocabularyError(BiliteError):
    """A vocabulary that does not fit the model, or cannot be read."""


class TokenizerMismatchError(VocabularyError):
    """The tokenizer rules do not reproduce the ids the model was trained with."""
