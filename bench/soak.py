"""Soak: many predictions in one process; RSS must not grow after warm-up.

Run in the device environment:  .venv/device/bin/python bench/soak.py bundles/sms-spam.tar.gz
Prints RSS after warm-up and at checkpoints, the growth, and writes build/bench-soak.json.
"""

import argparse
import json
import platform
import time
from pathlib import Path

from bilite_device import find_runtime, load_bundle


def rss_kb() -> int:
    with open("/proc/self/status") as handle:
        return int(next(line for line in handle if line.startswith("VmRSS")).split()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("--predictions", type=int, default=100_000)
    parser.add_argument("--warmup", type=int, default=2_000)
    args = parser.parse_args()

    bundle = load_bundle(args.bundle)
    texts = [v["text"] for v in bundle.golden]
    for k in range(args.warmup):
        bundle.predict(texts[k % len(texts)])
    start_rss = rss_kb()
    checkpoints = []
    start = time.perf_counter()
    step = max(args.predictions // 10, 1)
    for k in range(args.predictions):
        bundle.predict(texts[k % len(texts)])
        if (k + 1) % step == 0:
            checkpoints.append({"predictions": k + 1, "rss_kb": rss_kb()})
            print(f"{k + 1:>8} predictions: RSS {checkpoints[-1]['rss_kb'] / 1024:.2f} MB", flush=True)
    elapsed = time.perf_counter() - start
    growth = checkpoints[-1]["rss_kb"] - start_rss
    runtime = find_runtime()
    result = {"bundle": args.bundle, "runtime": f"{runtime.name} {runtime.version}",
              "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
              "predictions": args.predictions, "warmup": args.warmup, "rss_after_warmup_kb": start_rss,
              "rss_growth_kb": growth, "seconds": elapsed, "predictions_per_s": args.predictions / elapsed,
              "checkpoints": checkpoints, "goal": "growth < 1024 KB", "met": growth < 1024}
    print(f"RSS after warm-up {start_rss / 1024:.2f} MB; growth over {args.predictions} predictions: "
          f"{growth} KB (goal < 1024 KB: {'met' if result['met'] else 'MISSED'}); "
          f"{result['predictions_per_s']:.0f} predictions/s on {result['runtime']}")
    Path("build").mkdir(exist_ok=True)
    Path("build/bench-soak.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
