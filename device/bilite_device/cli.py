"""``bilite-device``: smoke tests, predictions and model facts on the device.

Each command parses its arguments, calls one library function and prints. Every failure a user
can cause is a :class:`BiliteError`: printed as one line on stderr, exit status 1 (2 for usage).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__
from .bundle import ClassifierOptions, load_bundle
from .bundle_files import is_bare_tflite
from .errors import BiliteError, InputError
from .install import install, rollback, status
from .smoke import require_ok, run_smoke
from .tflite_file import read_tflite_file


def _positive(name: str, most: int | None = None):
    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number, got {value!r}") from None
        if n < 1 or (most is not None and n > most):
            raise argparse.ArgumentTypeError(f"{name} must be from 1 to {most}" if most else
                                             f"{name} must be at least 1, got {n}")
        return n
    return parse


_threads = _positive("--threads", 64)


def _threshold(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        x = float("nan")
    if not 0 <= x <= 1:  # also refuses nan
        raise argparse.ArgumentTypeError(f"--score-threshold must be a number from 0 to 1, got {value!r}")
    return x


def cmd_smoke(args) -> int:
    bundle = load_bundle(args.bundle, num_threads=args.threads)
    report = run_smoke(bundle, latency_runs=args.runs)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        status = "PASS" if report.ok else "FAIL"
        print(f"{status} {report.bundle} on {report.runtime}")
        print(f"  golden vectors: {report.vectors} x {report.passes} passes (in order, reversed), "
              f"max |diff| {report.max_abs_diff:.3g} (tolerance {report.tolerance:g})")
        print(f"  latency per predict(text): p50 {report.latency_ms_p50:.3f} ms, "
              f"p95 {report.latency_ms_p95:.3f} ms ({args.threads} thread(s))")
        print(f"  peak RSS: {report.peak_rss_mb:.1f} MB")
    require_ok(report)
    return 0


def _texts(args):
    if args.texts and args.texts != ["-"]:
        for text in args.texts:
            try:
                text.encode("utf-8")  # argv bytes that are not UTF-8 arrive as lone surrogates
            except UnicodeEncodeError:
                raise InputError(f"argument {text.encode('utf-8', 'replace')[:40]!r} is not valid UTF-8; "
                                 "pass UTF-8 text") from None
            yield text
        return
    # Read bytes: a line that is not UTF-8 is a clear error naming the line, not a traceback.
    for number, raw in enumerate(sys.stdin.buffer, 1):
        try:
            yield raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            raise InputError(f"stdin line {number} is not valid UTF-8 ({exc.reason} at byte "
                             f"{exc.start}); convert the input to UTF-8 (e.g. with iconv)") from None


def _labels(value: str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    labels = tuple(x.strip() for x in value.split(",") if x.strip())
    if not labels:
        raise InputError(f"--allow/--deny need at least one label name, got {value!r}")
    return labels


def cmd_predict(args) -> int:
    bundle = load_bundle(args.bundle, num_threads=args.threads)
    options = ClassifierOptions(top_k=args.top_k, score_threshold=args.score_threshold,
                                allow=_labels(args.allow), deny=_labels(args.deny))
    filtered = options != ClassifierOptions()
    for text in _texts(args):
        if not filtered:
            prediction = bundle.predict(text)
            if args.json:
                print(json.dumps({"text": text, **prediction.to_json()}, ensure_ascii=False))
            else:
                print(f"{prediction.label}\t{prediction.score:.4f}\t{text}")
            continue
        categories = bundle.classify(text, options)
        if args.json:
            print(json.dumps({"text": text, "categories": [c.__dict__ for c in categories]},
                             ensure_ascii=False))
        else:
            shown = " ".join(f"{c.label}:{c.score:.4f}" for c in categories) or "-"
            print(f"{shown}\t{text}")
    return 0


def cmd_tag(args) -> int:
    bundle = load_bundle(args.bundle, num_threads=args.threads)
    for text in _texts(args):
        words = bundle.tag_tokens(text.split()) if args.words else bundle.tag(text)
        if args.json:
            print(json.dumps({"text": text, "words": [w.to_json() for w in words]}, ensure_ascii=False))
        else:
            print(" ".join(f"{w.word}/{w.tag}" for w in words))
    return 0


def cmd_info(args) -> int:
    path = Path(args.path)
    if is_bare_tflite(path):
        info = {"model": read_tflite_file(path).to_json()}
    else:
        bundle = load_bundle(path)
        meta = bundle.metadata.raw
        info = {"bundle": str(path), "task": meta["task"], "labels": bundle.labels,
                "schema_version": meta["schema_version"], "model": bundle.model.facts.to_json(),
                "conversion": {k: meta["model"][k] for k in ("form", "quantization", "reset_variables")},
                "metrics": meta.get("metrics", {}), "runtime": f"{bundle.model.runtime.name} "
                f"{bundle.model.runtime.version}"}
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
    else:
        model = info["model"]
        if "bundle" in info:
            labels = info["labels"]
            print(f"bundle: {info['bundle']} ({info['task']}, schema {info['schema_version']})")
            print(f"labels ({len(labels)}): {', '.join(labels[:12])}{' …' if len(labels) > 12 else ''}")
            conv = info["conversion"]
            print(f"conversion: form {conv['form']}, quantization {conv['quantization']}"
                  + (", variables reset before every run" if conv["reset_variables"] else ", stateless"))
            metrics = info["metrics"]
            if metrics:
                print(f"metrics ({metrics.get('evaluated_on', '?')} model, {metrics.get('split', '?')} split, "
                      f"n={metrics.get('n')}): accuracy {metrics.get('accuracy', 0):.4f}, "
                      f"macro F1 {metrics.get('macro_f1', 0):.4f}")
            print(f"runtime here: {info['runtime']}")
        print(f"size: {model['size_bytes']} bytes, subgraphs: {model['subgraphs']}, "
              f"op versions need TFLite runtime >= {model['min_runtime_version']} (min_runtime_version)")
        print("ops: " + ", ".join(f"{o['name']} v{o['version']} x{o['count']}" for o in model["ops"]))
        for t in model["inputs"]:
            print(f"input  {t['name']}: {t['dtype']} {t['shape']}")
        for t in model["outputs"]:
            print(f"output {t['name']}: {t['dtype']} {t['shape']}")
    return 0


def cmd_install(args) -> int:
    result = install(args.bundle, args.root)
    if result.unchanged:
        print(f"already active: {result.active} (under {args.root})")
    else:
        print(f"active: {result.active}; previous: {result.previous or 'none'} (under {args.root})")
    return 0


def cmd_rollback(args) -> int:
    result = rollback(args.root)
    print(f"rolled back: active {result.active}; previous {result.previous}")
    return 0


def cmd_status(args) -> int:
    info = status(args.root)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for link in ("current", "previous"):
        entry = info[link]
        if entry is None:
            print(f"{link}: none")
            continue
        acc = entry.get("accuracy")
        print(f"{link}: {entry['id']} ({entry.get('name')}, built {entry.get('created')}"
              + (f", accuracy {acc:.4f}" if isinstance(acc, float) else "")
              + ("" if entry["complete"] else ", INCOMPLETE") + ")")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bilite-device",
        description="Run bilite bundles on a device: verify them, predict, and time them.",
    )
    parser.add_argument("--version", action="version", version=f"bilite-device {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("smoke", help="verify a bundle and re-run its golden vectors here",
                       description="Verify checksums and schema, load the model, re-run the golden "
                       "vectors in order and reversed through one interpreter, print latency and "
                       "peak RSS. Exits 1 on any failure.")
    p.add_argument("bundle", help="bundle directory or .tar.gz")
    p.add_argument("--threads", type=_threads, default=1, help="interpreter threads (default 1)")
    p.add_argument("--runs", type=_positive("--runs"), default=200, help="timed predictions (default 200)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_smoke)

    p = sub.add_parser("predict", help="classify texts (arguments, or one per line on stdin)",
                       description="Classify each TEXT; with no TEXT (or '-'), read one text per "
                       "line from stdin. Prints label, score and text, tab-separated.")
    p.add_argument("bundle", help="bundle directory or .tar.gz")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to classify")
    p.add_argument("--threads", type=_threads, default=1, help="interpreter threads (default 1)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--top-k", type=_positive("--top-k"), help="show the K best labels (with their scores)")
    p.add_argument("--score-threshold", type=_threshold, help="show only labels scoring at least this (0-1)")
    p.add_argument("--allow", metavar="L1,L2", help="consider only these labels (comma-separated)")
    p.add_argument("--deny", metavar="L1,L2", help="never return these labels (comma-separated)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("tag", help="tag each word of texts (arguments, or one per line on stdin)",
                       description="Tag every word of each TEXT with a tagging bundle; prints word/TAG "
                       "pairs, or with --json each word with its character offsets, tag and score.")
    p.add_argument("bundle", help="tagging bundle directory or .tar.gz")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to tag")
    p.add_argument("--words", action="store_true",
                   help="the texts are pre-tokenized: split on whitespace only, one tag per piece")
    p.add_argument("--threads", type=_threads, default=1, help="interpreter threads (default 1)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_tag)

    p = sub.add_parser("info", help="show a bundle's or a .tflite file's ops, tensors and metrics",
                       description="Show ops with versions, inputs/outputs, the minimum runtime "
                       "version, and for a bundle its conversion form and metrics.")
    p.add_argument("path", help="bundle directory, .tar.gz, or .tflite file")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("install", help="verify, smoke-test and atomically activate a bundle",
                       description="Verify BUNDLE, unpack it into a staging directory under --root, "
                       "smoke-test it there, then switch the active bundle (ROOT/current) atomically, "
                       "keeping the previous one (ROOT/previous) for rollback.")
    p.add_argument("bundle", help="bundle .tar.gz or directory")
    p.add_argument("--root", required=True, help="installation directory")
    p.set_defaults(func=cmd_install)

    p = sub.add_parser("rollback", help="switch back to the previously active bundle",
                       description="Make ROOT/previous the active bundle again (atomically).")
    p.add_argument("--root", required=True, help="installation directory")
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("status", help="show the active and previous bundles under --root",
                       description="Show which bundle is active under ROOT and which is kept for rollback.")
    p.add_argument("--root", required=True, help="installation directory")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(func=cmd_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        # argparse stops filling TEXT... at the first option: `predict B --json "a text"` leaves
        # "a text" over. Texts after options are still texts; unknown options are errors.
        if getattr(args, "texts", None) is not None and not any(e.startswith("-") and e != "-" for e in extra):
            args.texts += extra
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args)
    except BiliteError as exc:
        print(f"bilite-device {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `bilite-device predict ... | head` is not an error
        return 0


if __name__ == "__main__":
    sys.exit(main())
