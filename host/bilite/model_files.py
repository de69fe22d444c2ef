"""Load a user's saved Keras model with the Keras that wrote it.

A ``.keras`` zip records the Keras version that saved it (metadata.json), an ``.h5`` file
records it as an attribute: Keras 3 files load with ``keras``, Keras 2 files with ``tf_keras``
(Keras 3 reads neither Keras 2's ``.keras`` layout nor its SavedModels reliably). A SavedModel
folder loads with tf_keras; one exported by Keras 3's ``model.export()`` holds only a serving
function, no layers, and is refused with the fix.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from bilite_device._stderr import captured_fd2

from .errors import ModelLoadError


def saved_keras_version(path: Path) -> str:
    """The Keras version recorded in a .keras or .h5 file ("" if none is recorded)."""
    if path.suffix == ".keras":
        try:
            with zipfile.ZipFile(path) as archive:
                meta = json.loads(archive.read("metadata.json"))
        except (zipfile.BadZipFile, KeyError, ValueError) as exc:
            raise ModelLoadError(f"{path} is not a Keras .keras archive ({exc}); save the model with "
                                 "model.save('model.keras')") from None
        if not isinstance(meta, dict):  # Keras writes an object; anything else was not saved by it
            raise ModelLoadError(f"{path} is not a Keras .keras archive (its metadata.json is a JSON "
                                 f"{type(meta).__name__}, not an object); save the model with "
                                 "model.save('model.keras')")
        return str(meta.get("keras_version", ""))
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            value = h5.attrs.get("keras_version", "")
    except OSError as exc:
        raise ModelLoadError(f"{path} is not an HDF5 model file ({exc})") from None
    return value.decode() if isinstance(value, bytes) else str(value)


def load_user_model(path) -> tuple[object, str, str]:
    """(model, flavour "keras" or "tf_keras", format) for a .keras/.h5 file or SavedModel folder."""
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"model {path} does not exist")
    if path.is_dir():
        if not (path / "saved_model.pb").is_file():
            raise ModelLoadError(f"{path} is a folder without saved_model.pb; pass a .keras or .h5 file "
                                 "or a SavedModel folder")
        if not (path / "keras_metadata.pb").is_file():
            raise ModelLoadError(
                f"{path} is a SavedModel without Keras layers (Keras 3's model.export() writes only a "
                "serving function, which bilite cannot rebuild into a static, builtin-only graph). "
                "Save the Keras model instead: model.save('model.keras').")
        return _load(path, "tf_keras", savedmodel=True), "tf_keras", "savedmodel"
    if not path.is_file():  # opening a FIFO or a device would block or never end
        raise ModelLoadError(f"model {path} is not a regular file (a FIFO or device); pass the saved "
                             ".keras or .h5 file itself, or a SavedModel folder")
    if path.suffix not in (".keras", ".h5", ".hdf5"):
        raise ModelLoadError(f"{path}: expected a .keras or .h5 file or a SavedModel folder, "
                             f"got suffix {path.suffix or '(none)'!r}")
    version = saved_keras_version(path)
    flavour = "keras" if version.startswith("3") else "tf_keras"
    return _load(path, flavour), flavour, path.suffix.lstrip(".")


def _load(path: Path, flavour: str, savedmodel: bool = False):
    if flavour == "keras":
        import keras as k
    else:
        import tf_keras as k
    try:
        with captured_fd2():
            return k.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for unreadable or custom-object files
        message = str(exc).strip().splitlines()[0][:400] if str(exc).strip() else type(exc).__name__
        if "NotEqual" in message and flavour == "keras":
            # Keras 3 writes a masked model's mask computation into .h5 as a layer it cannot read.
            hint = (" Keras 3 cannot reload a mask_zero model from .h5 (it saves the mask as a "
                    "'NotEqual' op it does not know): save the model as .keras instead.")
        elif "custom" in message.lower() or "unknown" in message.lower():
            hint = " The model uses a custom layer or object: bilite converts built-in layers only."
        elif savedmodel:
            # Measured: garbage saved_model.pb/keras_metadata.pb files fail deep in the loader with
            # "list index out of range", "Wire format was corrupt" and the like.
            raise ModelLoadError(f"{path} is not a readable SavedModel (tf_keras failed with {message!r}): "
                                 "its saved_model.pb or keras_metadata.pb is damaged or not written by "
                                 "model.save(); save the model again, preferably as model.save('model.keras')"
                                 ) from None
        else:
            hint = ""
        raise ModelLoadError(f"{flavour} could not load {path}: {message}.{hint}") from None
