"""One loaded bundle shared by threads gives exactly the serial answers; loading does not leak."""

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from bilite_device import load_bundle

from conftest import FIXTURES


def test_eight_threads_match_serial_results(bundle_dir):
    bundle = load_bundle(bundle_dir)
    texts = [v["text"] for v in bundle.golden] * 25  # 600 predictions
    serial = [bundle.predict(t).scores for t in texts]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(2):
            parallel = list(pool.map(lambda t: bundle.predict(t).scores, texts))
            assert parallel == serial


def test_loading_many_bundles_does_not_leak():
    # In a child process, so this test's RSS is not mixed with the rest of the suite's.
    code = f"""
import gc, resource
from bilite_device import load_bundle
def rss_kb():
    with open('/proc/self/status') as f:
        return int(next(l for l in f if l.startswith('VmRSS')).split()[1])
paths = [{str(FIXTURES / 'tiny-sms-while.tar.gz')!r}, {str(FIXTURES / 'tiny-sms-fused')!r}]
for i in range(40):
    load_bundle(paths[i % 2]).predict('warm up')
gc.collect()
before = rss_kb()
for i in range(400):
    load_bundle(paths[i % 2]).predict('hello there')
gc.collect()
print(rss_kb() - before)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    growth_kb = int(out.stdout.strip().splitlines()[-1])
    # 400 loads of a ~40 KB bundle: a leak of even one model per load would be > 10 MB.
    assert growth_kb < 4096, f"RSS grew by {growth_kb} KB over 400 loads"
