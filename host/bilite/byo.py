"""``bilite bundle --model``: a user's own trained Keras BiRNN -> a verified deployment bundle.

The model is read into a layer spec (keras_spec.py; anything bilite cannot convert exactly is
refused there), its vocabulary and tokenizer rules are read (vocab_files.py) and checked against
the ids of the user's sample texts, every conversion form is produced in a child process
(spec_convert.py), proven against the user's own Keras model on at least 200 inputs of varied
lengths run in sequence through one interpreter, and timed on the target runtime; the fastest
passing form ships, in a bundle that must pass its smoke test on the device runtimes.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from bilite_device.schema import GOLDEN_FILE, SCHEMA_VERSION, VOCAB_FILE
from bilite_device.tflite_file import read_tflite_facts
from bilite_device.tokenizer import Tokenizer

from .build import BuildResult, bundle_files, finish, library_versions
from .compare import label_scores
from .config import ConvertConfig
from .destination import check_output
from .errors import ConfigError, DataError, VocabularyError
from .forms import model_meta, prove_forms
from .golden import EDGE_TEXTS, make_golden
from .keras_spec import ModelSpec, read_spec
from .model_files import load_user_model
from .spec_convert import convert_forms
from .target import TargetRunner, find_device_python
from .user_files import check_sample_labels, parse_labels, read_samples, read_user_text
from .vocab_files import check_sample_ids, read_vocabulary

PARITY_INPUTS = 200
GOLDEN_SAMPLES = 20


def spec_forms(spec: ModelSpec, convert: ConvertConfig) -> tuple[list[str], dict[str, str]]:
    """Forms worth converting for this spec, and why the others are skipped."""
    skipped = {}
    if spec.cells != {"lstm"}:
        skipped["fused"] = "TFLite has a fused op for LSTM only"
    elif spec.masked:
        skipped["fused"] = ("mask_zero: the fused LSTM op ignores masks and would score padding "
                            "(a silent mismatch); the WHILE form honours the mask")
    if spec.masked:
        # Measured: Keras 3's own unroll=True disagrees with its loop on masked inputs (a 2-layer
        # masked BiGRU: 0.048 in Keras itself, before any conversion). The WHILE form is exact.
        skipped["unrolled"] = ("mask_zero: Keras's unrolled masked recurrence differs from its own "
                               "loop (up to 0.05 measured, in Keras itself); the WHILE form is exact")
    if convert.quantization == "int8":
        skipped["while"] = "full-int8 calibration of WHILE loops crashes the TF 2.21 converter"
    forms = [f for f in ("while", "unrolled", "fused") if f not in skipped]
    if not forms:
        raise ConfigError("no conversion form can be exact for this model in int8: a mask_zero model "
                          "converts exactly only as a WHILE loop, whose full-int8 calibration crashes "
                          "the converter. Use --quantize dynamic, float16 or float32.")
    if convert.form != "auto":
        if convert.form in skipped:
            raise ConfigError(f"--form {convert.form} cannot convert this model: {skipped[convert.form]}")
        forms = [convert.form]
    return forms, skipped


def parity_inputs(tokenizer: Tokenizer, texts: list[str], seed: int = 0) -> tuple[np.ndarray, str]:
    """At least PARITY_INPUTS id rows of varied lengths: the sample texts, then prefixes of them
    (1 token up to the full length), so short and long inputs both get proven. Without samples,
    random vocabulary ids (said so in the metadata)."""
    rng = np.random.default_rng(seed)
    rows = [list(tokenizer.rows(t))[: tokenizer.config.max_len] for t in texts]
    rows = [r for r in rows if r]
    if not rows:
        top = max(3, len(tokenizer))
        lengths = rng.integers(1, tokenizer.config.max_len + 1, size=PARITY_INPUTS)
        return np.stack([tokenizer.pad(list(rng.integers(2, top, size=n))) for n in lengths]), "synthetic"
    out = [tokenizer.pad(r) for r in rows]
    while len(out) < PARITY_INPUTS:
        row = rows[int(rng.integers(len(rows)))]
        out.append(tokenizer.pad(row[: int(rng.integers(1, len(row) + 1))]))
    return np.stack(out), "samples" if len(rows) >= PARITY_INPUTS else "samples and their prefixes"


def check_label_count(labels: list[str], spec: ModelSpec, path) -> None:
    """The labels file (already parsed) must name each of the model's outputs."""
    want = 2 if spec.output_kind == "sigmoid" else spec.output_units
    if len(labels) != want:
        raise DataError(f"{path} lists {len(labels)} labels but the model scores {want} "
                        f"({spec.output_kind} head with {spec.output_units} unit(s)); one label per line, "
                        "in the model's output order" + (" (negative first)" if want == 2 else ""))


def bundle_model(model_path, vocab_path, labels_path, out_dir, samples_path=None, max_len: int | None = None,
                 convert: ConvertConfig = ConvertConfig(), rules: str = "auto", vocab_options: dict | None = None,
                 name: str | None = None, device_python: str | None = None, isolate: bool = True,
                 log=print) -> BuildResult:
    t0 = time.perf_counter()
    check_output(out_dir, name)
    # The small files first: their mistakes are found in a moment, not after loading the model.
    labels = parse_labels(labels_path)
    samples = read_samples(samples_path) if samples_path else []
    check_sample_labels(samples, labels, labels_path, samples_path)
    vocab_text = read_user_text(vocab_path, "vocabulary")  # read once, parsed when max_len is known
    user_model, flavour, fmt = load_user_model(model_path)
    spec = read_spec(user_model, flavour)
    if max_len is None:
        if spec.length is None:
            raise ConfigError("the model accepts any length; give the device's static length with --max-len")
        max_len = spec.length
    elif spec.length is not None and spec.length != max_len:
        raise ConfigError(f"--max-len {max_len} contradicts the model's input length {spec.length}")
    config, vocab = read_vocabulary(vocab_path, max_len, rules, **(vocab_options or {}), text=vocab_text)
    if spec.embedding_rows < len(vocab):
        raise VocabularyError(
            f"the model's Embedding has {spec.embedding_rows} rows but the vocabulary has {len(vocab)} "
            f"entries: ids {spec.embedding_rows}..{len(vocab) - 1} would read outside the table. Pass "
            "the vocabulary the model was trained with (a Keras Tokenizer's num_words, a "
            "TextVectorization's max_tokens), or retrain with input_dim >= the vocabulary size.")
    tokenizer = Tokenizer(config, vocab)
    check_label_count(labels, spec, labels_path)
    checked = check_sample_ids(tokenizer, samples)
    saved_as = "a SavedModel folder" if fmt == "savedmodel" else f"a .{fmt} file"
    log(f"model: {flavour} model from {saved_as}, {len(spec.layers)} layers ({', '.join(sorted(spec.cells))}"
        f"{', mask_zero' if spec.masked else ''}), {'tagging' if spec.tagging else 'classification'}, "
        f"{len(labels)} labels; vocabulary {len(vocab)} ({config.profile}); max_len {max_len}"
        + (f"; {checked} sample id rows reproduced" if checked else ""))

    ids, source = parity_inputs(tokenizer, [s["text"] for s in samples])
    from .keras_model import predict_scores

    reference = predict_scores(user_model, ids)
    forms, skipped = spec_forms(spec, convert)
    calibration = ids[:200] if convert.quantization == "int8" else None
    target = TargetRunner(find_device_python(device_python, convert.target))
    log(f"converting ({convert.quantization}, target {convert.target}) forms {forms}"
        + (" in a child process" if isolate else "") + f"; proving on {len(ids)} inputs ({source})")
    tried = [{"form": f, "ok": False, "error": f"skipped: {why}"} for f, why in skipped.items()]
    converted, seconds = [], {}
    for form, result in convert_forms(spec, forms, convert.quantization, convert.target, max_len,
                                      calibration, isolate=isolate, seconds=seconds).items():
        if isinstance(result, str):
            log(f"  form {form}: unavailable: {result}")
            tried.append({"form": form, "ok": False, "error": result})
            continue
        facts = read_tflite_facts(result)
        converted.append((form, result, model_meta(form, facts, convert.quantization, convert.target),
                          seconds[form]))
    sigmoid = spec.output_kind == "sigmoid"
    chosen, tried = prove_forms(converted, tried, ids, reference, target, convert.quantization, sigmoid, log)
    log(f"chosen form: {chosen.form}")
    if spec.masked:
        chosen.meta["masking"] = mask_cost(spec, chosen, convert, max_len)
        log(f"mask_zero honoured exactly by the {chosen.form} form; it costs ops "
            f"{chosen.meta['masking']['extra_ops']}")
    model_section = {**chosen.meta, "selection": {
        "runtime": target.describe(), "threads": 1, "candidates": tried, "parity_inputs": len(ids),
        "parity_input_source": source,
        "rule": "fastest form that matches Keras; within 3 % of the fastest, the smallest file"}}

    golden_texts = list(EDGE_TEXTS) + [s["text"] for s in samples[:: max(1, len(samples) // GOLDEN_SAMPLES)]][:GOLDEN_SAMPLES]
    if len(golden_texts) < 20:  # too few samples: vocabulary words make up the rest
        golden_texts += [" ".join(vocab[2 + k: 5 + k]) for k in range(20 - len(golden_texts))]
    golden_ids = tokenizer.encode_batch(golden_texts)
    golden = make_golden([{"text": t} for t in golden_texts], golden_ids, chosen.model_bytes, model_section,
                         labels, lambda x: predict_scores(user_model, x), convert.quantization,
                         sigmoid=sigmoid, fresh_scores=target.fresh_scores)
    golden["computed_on"] = model_section["selection"]["runtime"]
    metrics = sample_metrics(samples, tokenizer, chosen, model_section, labels, sigmoid)
    if metrics:
        log(f"TFLite accuracy on the {metrics['n']} labelled samples: {metrics['accuracy']:.4f} "
            f"(macro F1 {metrics['macro_f1']:.4f})")
    meta = {
        "schema_version": SCHEMA_VERSION,
        "name": name or Path(out_dir).name,
        "description": f"User-trained bidirectional RNN ({flavour} {fmt}) converted by bilite.",
        "task": "tagging" if spec.tagging else "classification",
        "created": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "labels": labels,
        "output": ({"kind": "softmax", "per_token": True} if spec.tagging else
                   {"kind": spec.output_kind, "positive_label": labels[1] if sigmoid else None}),
        "tokenizer": {**config.to_json(), "vocab_file": VOCAB_FILE, "vocab_size": len(vocab)},
        "model": model_section,
        "metrics": metrics,
        "golden": {"file": GOLDEN_FILE, "count": len(golden["vectors"]),
                   **{k: v for k, v in golden.items() if k != "vectors"}},
        "source": {"model": str(model_path), "flavour": flavour, "format": fmt, "spec": spec.to_json(),
                   "masked": spec.masked, "vocabulary": str(vocab_path), "samples": len(samples),
                   "sample_ids_checked": checked},
        "library_versions": library_versions(),
    }
    files = bundle_files(chosen.model_bytes, vocab, labels, meta, golden,
                         example_text=golden_texts[-1][:80].replace('"', "'"))
    return finish(out_dir, files, meta, target, t0, log)


def sample_metrics(samples, tokenizer, chosen, model_section, labels, sigmoid) -> dict | None:
    """Accuracy of the shipped TFLite model on the samples that carry a label (classifiers)."""
    from bilite_device.model import TfliteModel

    from .metrics import classification_metrics

    labelled = [s for s in samples if s.get("label") in labels]
    if not labelled or model_section["outputs"][0]["shape"].__len__() != 2:
        return None
    model = TfliteModel(chosen.model_bytes, model_section, num_threads=1)
    scores = label_scores([model.run(tokenizer.encode(s["text"])) for s in labelled], sigmoid)
    truth = np.array([labels.index(s["label"]) for s in labelled])
    return {**classification_metrics(truth, scores.argmax(1), labels), "evaluated_on": "tflite",
            "split": "labelled samples"}


def mask_cost(spec: ModelSpec, chosen, convert: ConvertConfig, max_len: int) -> dict:
    """What honouring the mask costs: the chosen form's ops against the same model unmasked."""
    from dataclasses import replace

    from .spec_convert import convert_form

    unmasked = replace(spec, layers=[{**layer, "mask_zero": False} if layer["kind"] == "embedding" else layer
                                     for layer in spec.layers])
    plain = read_tflite_facts(convert_form(unmasked, chosen.form, "float32", convert.target, max_len))
    masked = {op["name"]: op["count"] for op in chosen.meta["ops"]}
    before = {op.name: op.count for op in plain.ops}
    extra = {name: masked.get(name, 0) - before.get(name, 0) for name in sorted(set(masked) | set(before))
             if masked.get(name, 0) != before.get(name, 0)}
    return {"exact": True, "extra_ops": extra,
            "how": "Keras's own masked recurrence (select on the mask per step), converted as is"}
