"""``bilite``: the host CLI. Each command parses, calls one library function, and prints.

TensorFlow is imported only inside the commands that need it, so ``bilite --help`` is instant.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import click

from bilite_device.errors import BiliteError

# TensorFlow's C++ start-up chatter (CUDA probing on a CPU machine prints an "E0000 ... cuInit"
# line that looks like a failure) helps no one here; conversion errors are captured separately.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


# What TensorFlow prints on import on a machine without a GPU: true, and no one's problem.
_TF_IMPORT_NOISE = ("cudart_stub", "cuda_platform", "cuda_dnn", "cuda_fft", "cuda_blas",
                    "absl::InitializeLog", "cuInit", "oneDNN custom operations", "computation_placer")


def _import_tensorflow_quietly() -> None:
    from bilite_device._stderr import captured_fd2, replay_unexpected

    with captured_fd2() as native:
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
    replay_unexpected(native["text"], noise=_TF_IMPORT_NOISE)


class _BiliteGroup(click.Group):
    """Turns any BiliteError into one clear line on stderr and exit status 1."""

    def invoke(self, ctx):
        # SIGTERM (kill, timeout, systemd) would end the process on the spot, orphaning a converter
        # child and leaving its temporary files; as SystemExit it unwinds like Ctrl-C: subprocess.run
        # kills its child, temporary and staging folders are removed, no bundle is half-written.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        try:
            return super().invoke(ctx)
        except BiliteError as exc:
            click.echo(f"bilite: error: {exc}", err=True)
            sys.exit(1)


def _exit_on_sigterm(signum, frame):
    click.echo("bilite: terminated (SIGTERM); cleaned up, nothing was written", err=True)
    sys.exit(128 + signum)


@click.group(cls=_BiliteGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bilite")
def main():
    """Train bidirectional RNN text models and ship them to Raspberry-Pi-class devices."""


@main.command()
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Bundle directory to write; DIR.tar.gz is written beside it.")
@click.option("--task", type=click.Choice(["classify", "tag"]), default="classify", show_default=True,
              help="classify: one label per text. tag: one tag per word (DATA is CoNLL-U, .xz/.gz ok).")
@click.option("--test-data", type=click.Path(dir_okay=False, path_type=Path),
              help="Official test split (same format and columns as DATA); DATA then gives train/validation "
              "only. Required with --task tag.")
@click.option("--validation-data", type=click.Path(dir_okay=False, path_type=Path),
              help="With --task tag: the validation split (default: every 10th training sentence).")
@click.option("--tag-column", type=click.IntRange(0, 9), default=3, show_default=True,
              help="With --task tag: 0-based CoNLL-U column of the tag (3 UPOS, 4 XPOS).")
@click.option("--name", help="Bundle name in metadata and the model card (default: the --out folder name).")
@click.option("--format", "fmt", type=click.Choice(["auto", "sms", "csv", "tsv", "jsonl"]), default="auto",
              show_default=True, help="Input format; auto: .csv/.tsv/.jsonl by suffix, else SMS 'label<TAB>text'.")
@click.option("--text-column", default="text", show_default=True, help="Text column (CSV/TSV) or key (JSONL).")
@click.option("--label-column", default="label", show_default=True, help="Label column (CSV/TSV) or key (JSONL).")
@click.option("--cell", type=click.Choice(["lstm", "gru"]), default="lstm", show_default=True, help="Recurrent cell.")
@click.option("--units", type=click.IntRange(min=1), default=64, show_default=True, help="Units per direction.")
@click.option("--layers", type=click.IntRange(min=1), default=1, show_default=True, help="Stacked bidirectional layers.")
@click.option("--embed-dim", type=click.IntRange(min=1), default=64, show_default=True, help="Embedding width.")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.2, show_default=True,
              help="Dropout after each recurrent layer.")
@click.option("--epochs", type=click.IntRange(min=1), default=8, show_default=True,
              help="Maximum epochs (training stops early when validation loss stops improving).")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True, help="Training batch size.")
@click.option("--learning-rate", type=float, default=2e-3, show_default=True, help="Adam learning rate.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the split, initialization and shuffling.")
@click.option("--max-len", type=click.IntRange(min=1), default=64, show_default=True,
              help="Token ids per text (the model's static input length).")
@click.option("--max-vocab", type=click.IntRange(min=3), default=20000, show_default=True,
              help="Vocabulary cap, including <pad> and <unk>.")
@click.option("--min-count", type=click.IntRange(min=1), default=2, show_default=True,
              help="Minimum training-set count for a token to enter the vocabulary.")
@click.option("--padding", type=click.Choice(["post", "pre"]), default="post", show_default=True,
              help="Pad at the end (post) or the start (pre).")
@click.option("--truncation", type=click.Choice(["post", "pre"]), default="post", show_default=True,
              help="Drop tokens past max_len at the end (post) or the start (pre).")
@click.option("--form", type=click.Choice(["auto", "while", "unrolled", "fused"]), default="auto", show_default=True,
              help="TFLite graph form; auto measures every form and keeps the fastest that matches Keras.")
@click.option("--quantize", type=click.Choice(["float32", "float16", "dynamic", "int8", "all"]),
              default="dynamic", show_default=True,
              help="Quantization mode (int8: weights and activations, calibrated on training text; token "
              "ids stay int32, scores stay float). all: convert and measure every mode, keep the smallest "
              "within --max-accuracy-drop; the table goes into metadata and the model cards.")
@click.option("--int8-output", is_flag=True,
              help="With --quantize int8: keep the scores tensor int8 (the device dequantizes it); "
              "default float32 scores.")
@click.option("--max-accuracy-drop", type=click.FloatRange(0, 100), default=0.5, show_default=True,
              help="With --quantize all: accuracy points a mode may lose against float32.")
@click.option("--target", type=click.Choice(["tflite-runtime-2.14", "ai-edge-litert"]),
              default="tflite-runtime-2.14", show_default=True, help="The TFLite runtime the device has.")
@click.option("--device-python", type=click.Path(dir_okay=False),
              help="Python of a device-only environment (bilite-device + the target runtime) used to "
              "time forms and smoke-test the bundle on the device's runtime. Default: "
              "$BILITE_DEVICE_PYTHON, else the checkout's .venv/device.")
@click.option("--interop", is_flag=True,
              help="Make model.tflite readable as it is by the TFLite Task Library (NLClassifier) and "
              "MediaPipe (TextClassifier): their regex tokenizer (case kept, [^\\w']+ splits), the "
              "unrolled form, a softmax head, and TFLite Metadata in the file. Classifiers only.")
@click.option("--prune", type=float, default=0.0, show_default=True,
              help="Magnitude pruning: after training, fine-tune while zeroing this fraction of each "
              "embedding, recurrent and dense kernel (0-0.95). Shrinks the compressed bundle, not "
              "model.tflite; metadata and the model card report both models side by side.")
@click.option("--prune-schedule", type=click.Choice(["polynomial", "constant"]),
              help="With --prune: ramp the sparsity up (polynomial, default) or prune to it at once.")
@click.option("--prune-epochs", type=int, help="With --prune: fine-tuning epochs while pruning (default 2).")
@click.option("--stream", is_flag=True,
              help="Read DATA (a file, or a quoted glob of shards) through tf.data instead of into memory: "
              "the split is by a hash of each line, the vocabulary is counted in bounded memory, and "
              "memory stays flat as the data grows. Classifiers only.")
@click.option("--strategy", type=click.Choice(["default", "mirrored", "multiworker"]), default="default",
              show_default=True, help="mirrored: every local GPU (or logical CPU device); multiworker: the "
              "machines in the TF_CONFIG environment variable (the chief writes the bundle).")
@click.option("--backup-dir", type=click.Path(file_okay=False),
              help="Back up training at every epoch's end here; a rerun resumes from the last backup "
              "(multiworker: a directory every worker can read).")
@click.option("--shuffle-buffer", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="With --stream: examples held in the shuffle buffer.")
@click.option("--vocab-count-cap", type=click.IntRange(min=2),
              help="With --stream: distinct tokens counted at once while building the vocabulary "
              "(default 200000; past it, rare counts are pruned, Misra-Gries style).")
def build(data, out_dir, task, test_data, validation_data, tag_column, name, fmt, text_column, label_column, cell, units, layers, embed_dim, dropout,
          epochs, batch_size, learning_rate, seed, max_len, max_vocab, min_count, padding, truncation,
          form, quantize, int8_output, max_accuracy_drop, target, device_python, interop, prune,
          prune_schedule, prune_epochs, stream, strategy, backup_dir, shuffle_buffer, vocab_count_cap):
    """Train a BiRNN classifier (or with --task tag, a tagger) on DATA and write a deployment
    bundle to --out."""
    from bilite_device.tokenizer import TokenizerConfig

    from .config import BuildConfig, ConvertConfig, ModelConfig, PruneConfig, ScaleConfig, TrainConfig
    from .data import load_dataset

    config = BuildConfig(
        scale=ScaleConfig(stream=stream, strategy=strategy, backup_dir=backup_dir, shuffle_buffer=shuffle_buffer,
                          vocab_count_cap=vocab_count_cap,
                          tf_config=os.environ.get("TF_CONFIG") if strategy == "multiworker" else None),
        prune=PruneConfig(sparsity=prune, schedule=prune_schedule, epochs=prune_epochs),
        tokenizer=TokenizerConfig(max_len=max_len, max_vocab=max_vocab, min_count=min_count,
                                  padding=padding, truncation=truncation),
        model=ModelConfig(cell=cell, units=units, layers=layers, embed_dim=embed_dim, dropout=dropout),
        train=TrainConfig(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, seed=seed),
        convert=ConvertConfig(form=form, quantization=quantize, target=target,
                              max_accuracy_drop=max_accuracy_drop, int8_output=int8_output),
    )
    if interop:
        config = _interop_config(config, task)
    if task == "tag":
        _build_tagger(data, test_data, validation_data, tag_column, config, out_dir, name, device_python)
        return
    if stream:
        result = _build_streaming(data, test_data, fmt, text_column, label_column, config, out_dir, name,
                                  device_python)
    else:
        dataset = load_dataset(data, fmt, text_column, label_column)
        test_set = load_dataset(test_data, fmt, text_column, label_column) if test_data else None
        from .build import build as run_build

        _import_tensorflow_quietly()
        result = run_build(dataset, config, out_dir, name=name, device_python=device_python,
                           test_set=test_set, log=click.echo)
    if result is None:  # a multi-worker worker: it trained, the chief writes the bundle
        return
    m = result.metadata["metrics"]
    click.echo(f"done: {result.bundle_dir} (TFLite test accuracy {m['accuracy']:.4f}, "
               f"form {result.metadata['model']['form']}, {result.metadata['model']['quantization']})")


def _build_streaming(data, test_data, fmt, text_column, label_column, config, out_dir, name, device_python):
    from .stream_build import build_streaming
    from .streaming import open_source

    source = open_source(data, fmt, text_column, label_column)
    test_source = open_source(test_data, fmt, text_column, label_column) if test_data else None
    _import_tensorflow_quietly()
    return build_streaming(source, config, out_dir, name=name, device_python=device_python,
                           test_source=test_source, log=click.echo)


def _interop_config(config, task):
    from .errors import ConfigError
    from .interop import interop_config

    if task == "tag":
        raise ConfigError("--interop makes classifiers for the Task Library's NLClassifier and "
                          "MediaPipe's TextClassifier; neither runs a tagger. Drop --interop or --task tag")
    return interop_config(config)


def _build_tagger(data, test_data, validation_data, tag_column, config, out_dir, name, device_python):
    from .build_tagger import build_tagger
    from .conllu import TaggedCorpus, load_conllu
    from .errors import ConfigError

    if config.scale != type(config.scale)():
        raise ConfigError("--stream, --strategy, --backup-dir, --shuffle-buffer and --vocab-count-cap apply to "
                          "classifiers; --task tag trains in memory on one device. Drop them or --task tag")
    if test_data is None:
        raise ConfigError("--task tag needs --test-data (a CoNLL-U test split, such as "
                          "data/ud_english_ewt/en_ewt-ud-test.conllu.xz)")
    train = load_conllu(data, tag_column)
    if validation_data is not None:
        val = load_conllu(validation_data, tag_column)
    else:
        held = set(range(0, len(train), 10))
        pick = lambda keep: [i for i in range(len(train)) if (i in held) == keep]  # noqa: E731
        val = TaggedCorpus([train.sentences[i] for i in pick(True)], [train.tags[i] for i in pick(True)],
                           f"{train.source} (every 10th sentence)")
        train = TaggedCorpus([train.sentences[i] for i in pick(False)], [train.tags[i] for i in pick(False)],
                             train.source)
    test = load_conllu(test_data, tag_column)
    _import_tensorflow_quietly()
    result = build_tagger(train, val, test, config, out_dir, name=name,
                          device_python=device_python, log=click.echo)
    click.echo(f"done: {result.bundle_dir} (TFLite test token accuracy "
               f"{result.metadata['metrics']['accuracy']:.4f}, form {result.metadata['model']['form']})")


@main.command()
@click.option("--model", "model_path", required=True, type=click.Path(exists=True, path_type=Path),
              help="Your trained Keras model: a .keras or .h5 file (Keras 3 or tf_keras) or a SavedModel folder.")
@click.option("--vocab", "vocab_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Its vocabulary: a Keras Tokenizer JSON (tokenizer.to_json()), a TextVectorization "
              "vocabulary (get_vocabulary(), one per line), or a plain file (one token per line, line = id).")
@click.option("--labels", "labels_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Label names, one per line, in the model's output order.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Bundle directory to write; DIR.tar.gz is written beside it.")
@click.option("--samples", "samples_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Sample texts (one per line, or JSON lines {\"text\", \"ids\", \"label\"}): they prove the "
              "conversion; with \"ids\" they prove the tokenizer rules; with \"label\" they give an accuracy.")
@click.option("--max-len", type=click.IntRange(min=1),
              help="Static input length (required when the model accepts any length).")
@click.option("--rules", type=click.Choice(["auto", "bilite", "tflite-regex", "keras-tokenizer", "textvectorization"]),
              default="auto", show_default=True,
              help="Tokenizer rules the model was trained with; auto: from the vocabulary's format (plain: bilite).")
@click.option("--standardize", type=click.Choice(["lower_and_strip_punctuation", "lower", "strip_punctuation", "none"]),
              help="A TextVectorization vocabulary's standardize setting (default lower_and_strip_punctuation).")
@click.option("--lowercase/--no-lowercase", default=None, help="Override lowercasing (bilite and Keras Tokenizer rules).")
@click.option("--unk-token", help="A plain vocabulary's unknown-word entry (default: the rules' own).")
@click.option("--padding", type=click.Choice(["post", "pre"]), help="Where padding goes (default: the rules' own; "
              "a Keras Tokenizer's pad_sequences default is pre).")
@click.option("--truncation", type=click.Choice(["post", "pre"]), help="Which end long texts lose.")
@click.option("--form", type=click.Choice(["auto", "while", "unrolled", "fused"]), default="auto", show_default=True,
              help="TFLite graph form; auto converts and measures every form that can be exact.")
@click.option("--quantize", type=click.Choice(["float32", "float16", "dynamic", "int8"]), default="dynamic",
              show_default=True, help="Quantization mode (int8 is calibrated on the sample texts).")
@click.option("--target", type=click.Choice(["tflite-runtime-2.14", "ai-edge-litert"]),
              default="tflite-runtime-2.14", show_default=True, help="The TFLite runtime the device has.")
@click.option("--device-python", type=click.Path(dir_okay=False),
              help="Python of a device-only environment (see `bilite build --help`).")
@click.option("--name", help="Bundle name (default: the --out folder name).")
def bundle(model_path, vocab_path, labels_path, out_dir, samples_path, max_len, rules, standardize, lowercase,
           unk_token, padding, truncation, form, quantize, target, device_python, name):
    """Bundle your own trained Keras BiRNN (with its vocabulary) for the device, exactly or not at all."""
    from .byo import bundle_model
    from .config import ConvertConfig

    _import_tensorflow_quietly()
    options = {k: v for k, v in dict(standardize=standardize, lowercase=lowercase, unk_token=unk_token,
                                     padding=padding, truncation=truncation).items() if v is not None}
    result = bundle_model(model_path, vocab_path, labels_path, out_dir, samples_path=samples_path,
                          max_len=max_len, convert=ConvertConfig(form=form, quantization=quantize, target=target),
                          rules=rules, vocab_options=options, name=name, device_python=device_python,
                          log=click.echo)
    click.echo(f"done: {result.bundle_dir} (form {result.metadata['model']['form']}, "
               f"{result.metadata['model']['quantization']})")


@main.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def inspect(path, as_json):
    """Show a bundle's or a .tflite file's ops (with versions), tensors, size and metrics."""
    from .inspect import inspect_path

    info = inspect_path(path)
    if as_json:
        click.echo(json.dumps(info, indent=2, ensure_ascii=False))
        return
    model = info["model"]
    if "metadata" in info:
        meta = info["metadata"]
        labels = meta["labels"]
        click.echo(f"bundle {path}: {meta.get('name', '?')} ({meta['task']}, {len(labels)} labels: "
                   f"{', '.join(labels[:10])}{' …' if len(labels) > 10 else ''})")
        click.echo(f"  form {meta['model']['form']}, quantization {meta['model']['quantization']}, "
                   f"target {meta['model'].get('target', '?')}, schema {meta['schema_version']}")
        metrics = meta.get("metrics")
        if isinstance(metrics, dict) and isinstance(metrics.get("accuracy"), (int, float)):
            click.echo(f"  TFLite accuracy {metrics['accuracy']:.4f}, "
                       f"macro F1 {metrics.get('macro_f1', float('nan')):.4f} "
                       f"(n={metrics.get('n')}, {metrics.get('split', 'test')})")
    click.echo(f"model: {model['size_bytes']:,} bytes, {model['subgraphs']} subgraph(s), "
               f"op versions need TFLite runtime >= {model['min_runtime_version']} (min_runtime_version)")
    click.echo("  ops: " + ", ".join(f"{o['name']} v{o['version']} x{o['count']}" for o in model["ops"]))
    for t in model["inputs"]:
        click.echo(f"  input  {t['name']}: {t['dtype']} {t['shape']}")
    for t in model["outputs"]:
        click.echo(f"  output {t['name']}: {t['dtype']} {t['shape']}")
    if model["variable_tensors"]:
        click.echo(f"  variable tensors (state kept across invokes): {len(model['variable_tensors'])}")


if __name__ == "__main__":
    main()
