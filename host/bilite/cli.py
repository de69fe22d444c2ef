"""``bilite``: the host CLI. Each command parses, calls one library function, and prints.

TensorFlow is imported only inside the commands that need it, so ``bilite --help`` is instant.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from bilite_device.errors import BiliteError

# TensorFlow's C++ start-up chatter (CUDA probing on a CPU machine) helps no one here.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class _BiliteGroup(click.Group):
    """Turns any BiliteError into one clear line on stderr and exit status 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BiliteError as exc:
            click.echo(f"bilite: error: {exc}", err=True)
            sys.exit(1)


@click.group(cls=_BiliteGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bilite")
def main():
    """Train bidirectional RNN text models and ship them to Raspberry-Pi-class devices."""


@main.command()
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Bundle directory to write; DIR.tar.gz is written beside it.")
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
@click.option("--quantize", type=click.Choice(["float32", "float16", "dynamic"]), default="dynamic",
              show_default=True, help="Quantization mode.")
@click.option("--target", type=click.Choice(["tflite-runtime-2.14", "ai-edge-litert"]),
              default="tflite-runtime-2.14", show_default=True, help="The TFLite runtime the device has.")
@click.option("--device-python", type=click.Path(dir_okay=False),
              help="Python of a device-only environment (bilite-device + the target runtime) used to "
              "time forms and smoke-test the bundle on the device's runtime. Default: "
              "$BILITE_DEVICE_PYTHON, else the checkout's .venv/device.")
def build(data, out_dir, name, fmt, text_column, label_column, cell, units, layers, embed_dim, dropout,
          epochs, batch_size, learning_rate, seed, max_len, max_vocab, min_count, padding, truncation,
          form, quantize, target, device_python):
    """Train a BiRNN classifier on DATA and write a deployment bundle to --out."""
    from bilite_device.tokenizer import TokenizerConfig

    from .config import BuildConfig, ConvertConfig, ModelConfig, TrainConfig
    from .data import load_dataset

    config = BuildConfig(
        tokenizer=TokenizerConfig(max_len=max_len, max_vocab=max_vocab, min_count=min_count,
                                  padding=padding, truncation=truncation),
        model=ModelConfig(cell=cell, units=units, layers=layers, embed_dim=embed_dim, dropout=dropout),
        train=TrainConfig(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, seed=seed),
        convert=ConvertConfig(form=form, quantization=quantize, target=target),
    )
    dataset = load_dataset(data, fmt, text_column, label_column)
    from .build import build as run_build

    result = run_build(dataset, config, out_dir, name=name, device_python=device_python, log=click.echo)
    m = result.metadata["metrics"]
    click.echo(f"done: {result.bundle_dir} (TFLite test accuracy {m['accuracy']:.4f}, "
               f"form {result.metadata['model']['form']}, {result.metadata['model']['quantization']})")


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
        click.echo(f"bundle {path}: {meta['name']} ({meta['task']}, labels {meta['labels']})")
        click.echo(f"  form {meta['model']['form']}, quantization {meta['model']['quantization']}, "
                   f"target {meta['model']['target']}, schema {meta['schema_version']}")
        click.echo(f"  TFLite test accuracy {meta['metrics']['accuracy']:.4f}, "
                   f"macro F1 {meta['metrics']['macro_f1']:.4f} (n={meta['metrics']['n']})")
    click.echo(f"model: {model['size_bytes']:,} bytes, {model['subgraphs']} subgraph(s), "
               f"minimum runtime {model['min_runtime_version']}")
    click.echo("  ops: " + ", ".join(f"{o['name']} v{o['version']} x{o['count']}" for o in model["ops"]))
    for t in model["inputs"]:
        click.echo(f"  input  {t['name']}: {t['dtype']} {t['shape']}")
    for t in model["outputs"]:
        click.echo(f"  output {t['name']}: {t['dtype']} {t['shape']}")
    if model["variable_tensors"]:
        click.echo(f"  variable tensors (state kept across invokes): {len(model['variable_tensors'])}")


if __name__ == "__main__":
    main()
