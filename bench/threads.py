"""Throughput with 8 threads: one shared bundle (its interpreter behind a lock) versus one bundle
(interpreter) per thread. Also checks that both give exactly the serial results.

Run in the device environment:  .venv/device/bin/python bench/threads.py bundles/sms-spam.tar.gz
"""

import argparse
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bilite_device import find_runtime, load_bundle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--predictions", type=int, default=4_000)
    args = parser.parse_args()

    shared = load_bundle(args.bundle)
    texts = [v["text"] for v in shared.golden]
    work = [texts[k % len(texts)] for k in range(args.predictions)]
    serial_start = time.perf_counter()
    serial = [shared.predict(t).scores for t in work]
    serial_s = time.perf_counter() - serial_start

    with ThreadPoolExecutor(args.threads) as pool:
        start = time.perf_counter()
        locked = list(pool.map(lambda t: shared.predict(t).scores, work))
        locked_s = time.perf_counter() - start

    local = threading.local()

    def own(text):
        if not hasattr(local, "bundle"):
            local.bundle = load_bundle(args.bundle)
        return local.bundle.predict(text).scores

    with ThreadPoolExecutor(args.threads) as pool:
        list(pool.map(own, work[: args.threads * 4]))  # load the per-thread bundles first
        start = time.perf_counter()
        per_thread = list(pool.map(own, work))
        per_thread_s = time.perf_counter() - start

    runtime = find_runtime()
    result = {"runtime": f"{runtime.name} {runtime.version}", "cpus": os.cpu_count(),
              "threads": args.threads, "predictions": args.predictions,
              "serial_per_s": args.predictions / serial_s,
              "shared_locked_per_s": args.predictions / locked_s,
              "interpreter_per_thread_per_s": args.predictions / per_thread_s,
              "identical_to_serial": locked == serial and per_thread == serial}
    result["per_thread_vs_locked"] = result["interpreter_per_thread_per_s"] / result["shared_locked_per_s"]
    for key in ("serial_per_s", "shared_locked_per_s", "interpreter_per_thread_per_s"):
        print(f"{key:>30}: {result[key]:8.0f} predictions/s")
    print(f"interpreter per thread / shared with lock: {result['per_thread_vs_locked']:.2f}x on "
          f"{result['cpus']} CPUs; identical to serial: {result['identical_to_serial']}")
    Path("build").mkdir(exist_ok=True)
    Path("build/bench-threads.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
