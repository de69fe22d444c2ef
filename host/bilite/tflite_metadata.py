"""Standard TFLite Metadata for a text classifier, written without tflite-support.

The TFLite Task Library (``NLClassifier``) and MediaPipe Tasks (``TextClassifier``) find their
tokenizer, vocabulary and labels in the metadata of the ``.tflite`` file itself: a flatbuffer of
the published, append-only schema ``metadata_schema.fbs`` (file identifier ``M001``) stored in a
model buffer named ``TFLITE_METADATA``, plus the files it names, appended to the model as a zip.

Why this module writes the flatbuffer itself instead of calling tflite-support's metadata
writers: tflite-support 0.4.4 pins ``protobuf<4`` (TensorFlow 2.21 needs a far newer one), has
wheels only up to Python 3.11, and its native modules do not import without the system library
libusb-1.0. In ``.venv/host`` it would break TensorFlow; in a side environment it would make
every ``bilite build --interop`` depend on that environment. An NL classifier needs a dozen
tables of the schema, and the host already has the ``flatbuffers`` package (a TensorFlow
dependency) and TensorFlow's own model schema bindings, so nothing is added to the host install.
tests/host/test_interop.py proves the result against tflite-support's own writer and displayer,
and against the Task Library and MediaPipe runtimes, in their own environments.

``populate`` does what tflite-support's ``MetadataPopulator`` does: adds the metadata buffer and
its ``metadata`` entry, re-serializes the model with TensorFlow's schema bindings, and appends
the associated files as an uncompressed zip (a zip is read from its end, a flatbuffer from its
start, so one file serves both). Two differences, both on purpose: every buffer's data starts on
a 16-byte boundary, as the model schema asks (``force_align: 16``; the generated Python ignores
it, and TF 2.21's converter output was only 4-byte aligned), and the zip entries carry a fixed
date so that rebuilt bundles are byte-identical. Neither changes a score: the build proves that
(interop.py).
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from bilite_device.tflite_file import _Table

METADATA_NAME = "TFLITE_METADATA"  # the model's metadata entry the runtimes look for
METADATA_IDENTIFIER = b"M001"
MODEL_IDENTIFIER = b"TFL3"
# Newest schema feature used here: RegexTokenizerOptions, added in metadata schema 1.2.1.
# tflite-support computes the same value (tests/host/test_interop.py compares).
MIN_PARSER_VERSION = "1.2.1"

# Enum values from metadata_schema.fbs.
TENSOR_AXIS_LABELS = 2  # AssociatedFileType
VOCABULARY = 5  # AssociatedFileType
FEATURE_PROPERTIES = 1  # ContentProperties union tag
REGEX_TOKENIZER_OPTIONS = 6  # ProcessUnitOptions union tag

# The descriptions tflite-support's nl_classifier writer uses, so both writers' output reads alike.
VOCAB_DESCRIPTION = "Vocabulary file to convert natural language words to embedding vectors."
LABELS_DESCRIPTION = "Labels for categories that the model can recognize."
INPUT_DESCRIPTION = "Embedding vectors representing the input text to be classified."
OUTPUT_DESCRIPTION = "Probabilities of the labels respectively."


@dataclass(frozen=True)
class NLClassifierMetadata:
    """What an NL classifier's metadata says; files are named as they are packed in the zip."""

    name: str
    description: str
    version: str
    author: str
    delim_regex: str
    vocab_file: str
    labels_file: str
    input_name: str = "input_text"
    output_name: str = "probability"


def _offsets_vector(b, offsets: list[int]) -> int:
    b.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()


def _floats_vector(b, values: list[float]) -> int:
    b.StartVector(4, len(values), 4)
    for value in reversed(values):
        b.PrependFloat32(value)
    return b.EndVector()


def _table(b, slots: int, offsets: dict[int, int] = None, bytes_: dict[int, int] = None) -> int:
    """A table from already-written children (``offsets``) and one-byte scalars (``bytes_``)."""
    b.StartObject(slots)
    for slot, off in (offsets or {}).items():
        b.PrependUOffsetTRelativeSlot(slot, off, 0)
    for slot, value in (bytes_ or {}).items():
        b.PrependUint8Slot(slot, value, 0)
    return b.EndObject()


def _associated_file(b, name: str, description: str, kind: int) -> int:
    # AssociatedFile: name 0, description 1, type 2, locale 3, version 4
    return _table(b, 5, {0: b.CreateString(name), 1: b.CreateString(description)}, {2: kind})


def _tensor(b, name: str, description: str, stats: int, process_units: list[int] = (),
            files: list[int] = ()) -> int:
    content = _table(b, 3, {1: _table(b, 0)}, {0: FEATURE_PROPERTIES})  # Content{FeatureProperties}
    fields = {0: b.CreateString(name), 1: b.CreateString(description), 3: content, 5: stats}
    if process_units:
        fields[4] = _offsets_vector(b, list(process_units))
    if files:
        fields[6] = _offsets_vector(b, list(files))
    # TensorMetadata: name 0, description 1, dimension_names 2, content 3, process_units 4,
    # stats 5, associated_files 6
    return _table(b, 7, fields)


def nl_classifier_metadata(md: NLClassifierMetadata) -> bytes:
    """The metadata flatbuffer for one int32 token-id input and one float32 score output."""
    import flatbuffers

    b = flatbuffers.Builder(1024)
    vocab = _associated_file(b, md.vocab_file, VOCAB_DESCRIPTION, VOCABULARY)
    regex = _table(b, 2, {0: b.CreateString(md.delim_regex), 1: _offsets_vector(b, [vocab])})
    tokenizer = _table(b, 2, {1: regex}, {0: REGEX_TOKENIZER_OPTIONS})  # ProcessUnit
    # Stats: max 0, min 1. The input's are empty; scores lie in [0, 1] (as tflite-support writes).
    text_in = _tensor(b, md.input_name, INPUT_DESCRIPTION, _table(b, 2), process_units=[tokenizer])
    labels = _associated_file(b, md.labels_file, LABELS_DESCRIPTION, TENSOR_AXIS_LABELS)
    score_stats = _table(b, 2, {0: _floats_vector(b, [1.0]), 1: _floats_vector(b, [0.0])})
    scores_out = _tensor(b, md.output_name, OUTPUT_DESCRIPTION, score_stats, files=[labels])
    # SubGraphMetadata: input_tensor_metadata 2, output_tensor_metadata 3 (of 10 fields)
    subgraph = _table(b, 10, {2: _offsets_vector(b, [text_in]), 3: _offsets_vector(b, [scores_out])})
    strings = {slot: b.CreateString(text) for slot, text in
               ((0, md.name), (1, md.description), (2, md.version), (4, md.author),
                (7, MIN_PARSER_VERSION))}
    # ModelMetadata: name 0, description 1, version 2, subgraph_metadata 3, author 4, license 5,
    # associated_files 6, min_parser_version 7
    root = _table(b, 8, {**strings, 3: _offsets_vector(b, [subgraph])})
    b.Finish(root, file_identifier=METADATA_IDENTIFIER)
    return bytes(b.Output())


def _aligned_buffer_type(schema):
    class AlignedBufferT(schema.BufferT):
        """A model buffer whose data starts on a 16-byte boundary, as schema.fbs asks."""

        def Pack(self, builder):
            data = None
            if self.data is not None:
                raw = bytes(self.data)
                builder.StartVector(1, len(raw), 16)
                builder.head -= len(raw)
                builder.Bytes[builder.head : builder.head + len(raw)] = raw
                data = builder.EndVector()
            schema.BufferStart(builder)
            if data is not None:
                schema.BufferAddData(builder, data)
            schema.BufferAddOffset(builder, self.offset)
            schema.BufferAddSize(builder, self.size)
            return schema.BufferEnd(builder)

    return AlignedBufferT


def populate(model: bytes, metadata: bytes, files: dict[str, bytes]) -> bytes:
    """``model`` with ``metadata`` as its TFLITE_METADATA buffer and ``files`` appended as a zip."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as schema

    parsed = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model, 0))
    if any(entry.name in (METADATA_NAME, METADATA_NAME.encode()) for entry in parsed.metadata or []):
        raise ValueError("the model already carries TFLite Metadata; populate a converter output")
    if any(buf.offset or buf.size for buf in parsed.buffers or []):
        raise ValueError("the model keeps buffers outside the flatbuffer (a > 2 GB model): unsupported")
    aligned = _aligned_buffer_type(schema)
    parsed.buffers = [_copy_buffer(aligned, buf.data) for buf in parsed.buffers or []]
    parsed.buffers.append(_copy_buffer(aligned, metadata))
    entry = schema.MetadataT()
    entry.name, entry.buffer = METADATA_NAME, len(parsed.buffers) - 1
    parsed.metadata = [*(parsed.metadata or []), entry]
    builder = flatbuffers.Builder(len(model) + len(metadata) + 4096)
    builder.Finish(parsed.Pack(builder), file_identifier=MODEL_IDENTIFIER)
    out = io.BytesIO(bytes(builder.Output()))
    out.seek(0, io.SEEK_END)
    # Mode "a" on bytes that are not a zip appends a new archive after them. Stored, not
    # deflated: the Task Library reads only uncompressed associated files.
    with zipfile.ZipFile(out, mode="a", compression=zipfile.ZIP_STORED) as archive:
        for name in sorted(files):
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), files[name])
    return out.getvalue()


def _copy_buffer(aligned_type, data):
    buf = aligned_type()
    buf.data, buf.offset, buf.size = data, 0, 0
    return buf


def read_metadata(model: bytes) -> dict:
    """The NL classifier metadata and associated files of ``model``, as plain values (checks and
    tests read it back with this rather than trusting the writer)."""
    root = _Table(model, int.from_bytes(model[0:4], "little"))
    buffers, found = root.tables(4), None
    for entry in root.tables(6):
        if entry.string(0) == METADATA_NAME:
            found = buffers[entry.scalar(1, "I", 0)].bytes_(0)
    if found is None:
        return {}
    if found[4:8] != METADATA_IDENTIFIER:
        raise ValueError(f"TFLITE_METADATA buffer has identifier {found[4:8]!r}, expected M001")
    meta = _Table(found, int.from_bytes(found[0:4], "little"))
    subgraph = meta.tables(3)[0]

    def tensor(t):
        files = [{"name": f.string(0), "type": f.scalar(2, "b", 0)} for f in t.tables(6)]
        units = []
        for unit in t.tables(4):
            options = unit.table(1)
            units.append({"options_type": unit.scalar(0, "B", 0), "delim_regex": options.string(0),
                          "vocab_files": [{"name": f.string(0), "type": f.scalar(2, "b", 0)}
                                          for f in options.tables(1)]})
        return {"name": t.string(0), "process_units": units, "associated_files": files}

    with zipfile.ZipFile(io.BytesIO(model)) as archive:
        files = {info.filename: archive.read(info) for info in archive.infolist()}
        compressed = [i.filename for i in archive.infolist() if i.compress_type != zipfile.ZIP_STORED]
    return {"name": meta.string(0), "version": meta.string(2), "author": meta.string(4),
            "min_parser_version": meta.string(7),
            "inputs": [tensor(t) for t in subgraph.tables(2)],
            "outputs": [tensor(t) for t in subgraph.tables(3)],
            "files": files, "compressed_files": compressed}
