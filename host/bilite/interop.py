"""``bilite build --interop``: bundles whose model.tflite other runtimes read as it is.

The TFLite Task Library (``NLClassifier``) and MediaPipe Tasks (``TextClassifier``) classify text
with a model alone, if the model meets their contract (measured; README "Other runtimes"):

* text -> ids: their RegexTokenizer splits on ``[^\\w']+`` (RE2, ASCII ``\\w``), keeps case, maps
  unknown words to ``<UNKNOWN>``, pads with ``<PAD>`` (id 0) at the end. bilite trains with the
  tokenizer profile ``tflite-regex-v1`` (bilite_device/profiles.py), which reproduces it, so the
  model learns the very ids those runtimes will feed it;
* one int32 ``[1, L]`` input and one float32 ``[1, C]`` output, C = the number of label lines:
  two labels get a two-unit softmax head (one sigmoid unit gives MediaPipe one score for two
  labels);
* one subgraph, and no state between calls: the ``unrolled`` form (WHILE loops add subgraphs;
  the fused LSTM keeps h/c in variable tensors that these runtimes never reset);
* standard TFLite Metadata in the file naming the tokenizer, its vocabulary and the labels
  (tflite_metadata.py).

Adding metadata re-serializes the model, so before anything is measured on it the build proves,
on the target runtime and on ai-edge-litert, that the model with metadata gives bit-identical
scores to the converter's output on real validation texts.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from bilite_device.profiles import PROFILES, REGEX
from bilite_device.schema import LABELS_FILE, VOCAB_FILE
from bilite_device.tokenizer import START

from .errors import ConfigError, ParityError
from .tflite_metadata import MIN_PARSER_VERSION, NLClassifierMetadata, nl_classifier_metadata, populate

# The pattern as tflite-support's NL classifier examples spell it (RE2 reads \' as ').
DELIM_REGEX = r"[^\w\']+"
# The releases this bundle format was proven with (tests/host/test_interop.py).
TESTED_WITH = {"tflite_support": "0.4.4", "mediapipe": "1.2.3"}
PROOF_TEXTS = 200  # validation texts run with and without metadata on each runtime


def interop_tokenizer(cfg):
    """``cfg`` (a TokenizerConfig) with the Task Library's RegexTokenizer rules."""
    profile = PROFILES[REGEX]
    return replace(cfg, profile=REGEX, lowercase=False, fold_digits=False, normalization="none",
                   unk_token=profile.unk_token)


def interop_config(config):
    """``config`` (a BuildConfig) as --interop needs it: the regex tokenizer, the unrolled form
    (``--form auto`` becomes ``unrolled``) and a softmax head for two labels. Options that
    contradict the contract are left as given, so that BuildConfig refuses them by name."""
    convert = config.convert
    if convert.form == "auto":
        convert = replace(convert, form="unrolled")
    return replace(config, tokenizer=interop_tokenizer(config.tokenizer), convert=convert,
                   model=replace(config.model, binary_head="softmax"), interop=True)


def interop_problems(config) -> list[str]:
    """Why ``config`` (a BuildConfig with interop set) cannot give an interop bundle, with fixes."""
    problems = []
    tok = config.tokenizer
    if tok.profile != REGEX or tok.unk_token != PROFILES[REGEX].unk_token:
        problems.append(f"the tokenizer must be profile {REGEX} with unk_token "
                        f"{PROFILES[REGEX].unk_token!r} (got {tok.profile}, {tok.unk_token!r}); "
                        "build the config with bilite.interop.interop_config")
    for option, verb in (("padding", "pad"), ("truncation", "truncate")):
        value = getattr(tok, option)
        if value != "post":
            problems.append(f"--{option} {value}: the Task Library and MediaPipe {verb} at the end; "
                            f"drop --{option} {value}")
    if config.convert.form != "unrolled":
        problems.append(f"--form {config.convert.form}: they need one subgraph and no state between "
                        "calls, which only the unrolled form gives; use --form unrolled or auto")
    if config.model.binary_head != "softmax":
        problems.append("a two-label model needs two softmax units (binary_head 'softmax'): one "
                        "sigmoid unit gives these runtimes one score for two labels")
    if config.convert.int8_output:
        problems.append("--int8-output: they read float32 scores; drop --int8-output")
    return problems


def vocab_file(vocab: list[str]) -> bytes:
    """The vocabulary as their RegexTokenizer reads it: ``token id`` per line."""
    return "".join(f"{token} {i}\n" for i, token in enumerate(vocab)).encode("utf-8")


def labels_file(labels: list[str]) -> bytes:
    return ("\n".join(labels) + "\n").encode("utf-8")


def add_metadata(model_bytes: bytes, vocab: list[str], labels: list[str], name: str,
                 description: str, version: str) -> bytes:
    """``model_bytes`` with NL classifier metadata and its vocabulary and labels files inside."""
    profile = PROFILES[REGEX]
    if not vocab or vocab[0] != profile.pad_token or profile.unk_token not in vocab:
        raise ConfigError(f"the vocabulary starts {vocab[:3]}; the Task Library needs "
                          f"{profile.pad_token!r} as id 0 and an {profile.unk_token!r} entry. "
                          "Build with --interop so that bilite makes the vocabulary")
    metadata = nl_classifier_metadata(NLClassifierMetadata(
        name=name, description=description, version=version, author="bilite",
        delim_regex=DELIM_REGEX, vocab_file=VOCAB_FILE, labels_file=LABELS_FILE))
    return populate(model_bytes, metadata, {VOCAB_FILE: vocab_file(vocab), LABELS_FILE: labels_file(labels)})


def prove_unchanged(plain: bytes, with_metadata: bytes, model_meta: dict, ids: np.ndarray,
                    runners, log=print) -> list[dict]:
    """Run both models on ``ids`` on each runner (TargetRunner); any difference is an error."""
    proofs = []
    for runner in runners:
        before, after = runner.measure([(plain, model_meta), (with_metadata, model_meta)], ids, runs=20)
        failed = [r["error"] for r in (before, after) if "error" in r]
        if failed:
            raise ParityError(f"the model with TFLite Metadata does not run on {runner.describe()}: "
                              f"{failed[0]}. Nothing was written; build without --interop")
        diff = float(np.abs(np.asarray(before["scores"]) - np.asarray(after["scores"])).max())
        runtime = runner.describe()
        if diff != 0.0:
            raise ParityError(f"adding TFLite Metadata changed the scores on {runtime} (max |diff| "
                              f"{diff:.3g} over {len(ids)} texts); nothing was written. Build without "
                              "--interop and report the model")
        log(f"interop: {runtime}: {len(ids)} texts score identically with and without TFLite Metadata")
        proofs.append({"runtime": runtime, "texts": len(ids), "max_abs_diff": diff})
    return proofs


def interop_section(vocab: list[str] | None = None, proofs: list[dict] | None = None) -> dict:
    """What metadata.json says about which runtimes read the bundle's model.tflite. Without
    ``proofs`` (a build without --interop): bilite-device only."""
    if proofs is None:
        return {"task_library": False, "mediapipe": False, "bilite_device": True,
                "note": "built without --interop: bilite's own tokenizer and no TFLite Metadata"}
    return {
        "task_library": True, "mediapipe": True, "bilite_device": True,
        "tflite_metadata": {"tokenizer": "RegexTokenizer", "delim_regex": DELIM_REGEX,
                            "vocab_file": VOCAB_FILE, "labels_file": LABELS_FILE,
                            "start_token": START in (vocab or []),
                            "min_parser_version": MIN_PARSER_VERSION},
        "tested_with": TESTED_WITH,
        "metadata_leaves_scores_unchanged": proofs,
    }


def interop_model(chosen, model_meta: dict, vocab: list[str], labels: list[str], name: str,
                  description: str, x_val: np.ndarray, runners, log=print):
    """The chosen candidate with metadata added and proven harmless: (candidate, model section,
    interop section)."""
    from . import __version__

    blob = add_metadata(chosen.model_bytes, vocab, labels, name, description, __version__)
    proofs = prove_unchanged(chosen.model_bytes, blob, model_meta, x_val[:PROOF_TEXTS], runners, log)
    log(f"interop: TFLite Metadata added ({len(blob) - len(chosen.model_bytes):,} bytes): readable by "
        "the TFLite Task Library (NLClassifier) and MediaPipe (TextClassifier)")
    return (replace(chosen, model_bytes=blob), {**model_meta, "size_bytes": len(blob)},
            interop_section(vocab, proofs))
