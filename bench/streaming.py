"""Does memory stay flat as the data grows? Streamed training on 100,000 and on 1,000,000 lines.

    .venv/host/bin/python bench/streaming.py            # about 5 minutes on 2 cores
    .venv/host/bin/python bench/streaming.py --lines 20000 200000   # a quicker look

Generates, in a temporary directory (deleted afterwards, never committed), a synthetic file in
the SMS Spam Collection layout from data/sms_spam_collection/SMSSpamCollection: line i is message
i mod 5,574 with its label, and, with probability 0.3, one made-up word of its own appended (as
names, typos and codes do), so the distinct tokens grow with the data (about 30,000 at 100k
lines, 300,000 at 1M: past the 200,000 the vocabulary counter holds). The smaller file is the
first lines of the larger.

For each size, a **child process** runs what ``bilite build --stream`` runs before conversion:
the scan (parse, hash split, bounded vocabulary count), then one epoch of training and the
validation pass through the tf.data pipeline, with a tiny model (the input pipeline is the
point). The parent reads the child's peak RSS (``ru_maxrss`` from ``os.wait4``) and prints it with
lines/s per phase and the ratio of the peaks. Goal: peak RSS grows <= 20 % from 100k to 1M lines.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SMS = ROOT / "data" / "sms_spam_collection" / "SMSSpamCollection"
GOAL_RATIO = 1.20


def letters(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 26)
        out += chr(97 + r)
        if not n:
            return out


def generate(path: Path, lines: int) -> None:
    messages = SMS.read_text(encoding="utf-8").splitlines()
    rng = random.Random(0)
    with open(path, "w", encoding="utf-8") as out:
        for i in range(lines):
            line = messages[i % len(messages)]
            if rng.random() < 0.3:
                line += " zq" + letters(rng.getrandbits(40))
            out.write(line + "\n")


def child(path: str) -> None:
    """One streamed scan + epoch; prints a JSON line of timings (the parent measures memory)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from bilite.cli import _import_tensorflow_quietly
    from bilite.config import BuildConfig, ModelConfig, ScaleConfig, TrainConfig
    from bilite.distributed import train_on_datasets
    from bilite.stream_build import scan, streamed_datasets
    from bilite.streaming import TRAIN, VALIDATION, HashSplit, open_source
    from bilite_device.tokenizer import Tokenizer, TokenizerConfig

    _import_tensorflow_quietly()
    config = BuildConfig(tokenizer=TokenizerConfig(max_len=32, min_count=2),
                         model=ModelConfig(units=8, embed_dim=8, dropout=0.0),
                         train=TrainConfig(epochs=1, batch_size=256), scale=ScaleConfig(stream=True))
    source = open_source(path)
    split = HashSplit(0, config.train.validation_fraction, config.train.test_fraction)
    t0 = time.perf_counter()
    found = scan(source, split, config)
    t1 = time.perf_counter()
    sizes = [found.size(p) for p in range(3)]
    tokenizer = Tokenizer(config.tokenizer, found.vocab)
    make = streamed_datasets(source, tokenizer, {y: i for i, y in enumerate(found.labels)}, split, config, True,
                             sizes)
    train_on_datasets(config.model, config.train, config.scale, len(tokenizer), len(found.labels),
                      config.tokenizer.max_len, make, log=lambda line: None)
    t2 = time.perf_counter()
    print(json.dumps({"lines": sum(sizes), "train": sizes[TRAIN], "validation": sizes[VALIDATION],
                      "scan_s": t1 - t0, "epoch_s": t2 - t1, "vocab": len(tokenizer),
                      "counts": found.vocab_stats.to_json()}))


def measure(path: Path) -> dict:
    proc = subprocess.Popen(["nice", sys.executable, __file__, "--child", str(path)], stdout=subprocess.PIPE,
                            text=True)
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"child for {path} failed with status {proc.returncode}")
    result = json.loads(output.strip().splitlines()[-1])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux reports KiB
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, nargs=2, default=(100_000, 1_000_000), metavar=("SMALL", "LARGE"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    small, large = args.lines
    with tempfile.TemporaryDirectory(prefix="bilite-stream-bench-") as tmp:
        big = Path(tmp) / "synthetic.txt"
        generate(big, large)
        little = Path(tmp) / "synthetic-small.txt"
        with open(big, "rb") as src, open(little, "wb") as dst:
            for _, line in zip(range(small), src):
                dst.write(line)
        print(f"synthetic data: {big.stat().st_size / 1e6:.0f} MB for {large:,} lines "
              f"(and its first {small:,} lines); one child process per size\n")
        rows = [(n, measure(path)) for n, path in ((small, little), (large, big))]
    print("| lines | peak RSS | scan (parse, split, count) | one epoch (train + validation) | vocabulary counts |")
    print("| --- | --- | --- | --- | --- |")
    for n, r in rows:
        c = r["counts"]
        count_note = ("exact" if c["exact"] else f"{c['prunings']} prunings at {c['cap']:,}, low by <= "
                      f"{c['max_undercount']}") + f", {c['distinct_kept']:,} held"
        print(f"| {n:,} | {r['peak_rss_mb']:.0f} MB | {r['lines'] / r['scan_s']:,.0f} lines/s "
              f"({r['scan_s']:.1f} s) | {(r['train'] + r['validation']) / r['epoch_s']:,.0f} lines/s "
              f"({r['epoch_s']:.1f} s) | {count_note} |")
    ratio = rows[1][1]["peak_rss_mb"] / rows[0][1]["peak_rss_mb"]
    verdict = "met" if ratio <= GOAL_RATIO else "MISSED"
    print(f"\npeak RSS {large:,} / {small:,} lines: {ratio:.3f} (goal <= {GOAL_RATIO:.2f}: {verdict})")


if __name__ == "__main__":
    main()
