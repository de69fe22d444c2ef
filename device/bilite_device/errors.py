"""Typed errors for everything a user (or a damaged bundle) can cause.

Every message says what was seen, what was expected and how to fix it, so the CLI can print it
as is and exit non-zero. Catch :class:`BiliteError` to handle them all.
"""


class BiliteError(Exception):
    """Base class of every error bilite raises on purpose."""


class BundleError(BiliteError):
    """The bundle is missing, unreadable, incomplete or inconsistent."""


class ChecksumError(BundleError):
    """A file's SHA-256 differs from the one recorded when the bundle was written."""


class SchemaError(BundleError):
    """metadata.json is not valid JSON, lacks a field, or has an unknown schema major version."""


class ArchiveError(BundleError):
    """A bundle archive holds something unsafe (paths outside, links, devices), is too big, or is
    corrupt or truncated (a damaged gzip/tar stream)."""


class RuntimeMissingError(BiliteError):
    """No TFLite runtime (tflite-runtime or ai-edge-litert) can be imported."""


class IncompatibleRuntimeError(BiliteError):
    """The installed runtime is older than the model needs, or lacks one of its ops."""


class ModelError(BiliteError):
    """The interpreter rejected the model, or its tensors differ from what metadata declares."""


class InputError(BiliteError):
    """Input that cannot be turned into text (for example bytes that are not UTF-8)."""


class SmokeTestError(BiliteError):
    """The bundle's golden vectors did not reproduce on this device."""
