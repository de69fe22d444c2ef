"""Host-side typed errors. They extend the device package's hierarchy, so one
``except BiliteError`` catches everything bilite raises on purpose."""

from bilite_device.errors import BiliteError


class ConfigError(BiliteError):
    """Build options that contradict each other or cannot work."""


class DataError(BiliteError):
    """A dataset file that cannot be read as labelled text."""


class ConversionError(BiliteError):
    """The converter failed, or produced a graph that differs from the form bilite asked for."""


class ParityError(BiliteError):
    """The converted model's scores differ from the Keras model's beyond the stated tolerance."""
