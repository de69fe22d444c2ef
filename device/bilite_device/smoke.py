"""The on-device smoke test: do the bundle's golden vectors reproduce here, in any order?

Golden vectors were computed on the host with a fresh interpreter per text. Running them here
through *one* loaded model, first in order and then in reverse, catches both a runtime that
computes differently and state leaking from one input to the next.
"""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from .bundle import Bundle
from .errors import SchemaError, SmokeTestError


@dataclass
class SmokeReport:
    bundle: str
    runtime: str
    vectors: int
    passes: int
    max_abs_diff: float
    tolerance: float
    latency_ms_p50: float
    latency_ms_p95: float
    peak_rss_mb: float
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self) -> dict:
        return {**self.__dict__, "ok": self.ok}


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _check_pass(bundle: Bundle, order: list[int], tol: float, label: str,
                failures: list[str], timings: list[float]) -> float:
    worst = 0.0
    for i in order:
        vector = bundle.golden[i]
        ids = golden_ids(bundle, vector)
        if ids.tolist() != vector["ids"]:
            failures.append(f"{label}: vector {i} token ids differ from the host's "
                            f"({_golden_text(vector)[:40]!r}); tokenizer rules or vocabulary differ")
            continue
        start = time.perf_counter()
        scores = bundle.scores_for_ids(ids)
        timings.append(time.perf_counter() - start)
        expected = np.asarray(vector["scores"], dtype=np.float32)
        if expected.shape != scores.shape or not np.isfinite(expected).all():
            failures.append(f"{label}: vector {i} golden scores have shape {list(expected.shape)} or "
                            f"non-finite values; the model gives shape {list(scores.shape)}")
            continue
        diff = float(np.max(np.abs(scores - expected)))
        worst = max(worst, diff)
        if not diff <= tol:  # NaN never passes
            failures.append(f"{label}: vector {i} scores differ by {diff:.3g} > tolerance {tol:g}")
        elif golden_label(bundle, scores) != vector["label"]:
            failures.append(f"{label}: vector {i} label {golden_label(bundle, scores)!r}, "
                            f"expected {vector['label']!r}")
    return worst


def _golden_text(vector: dict) -> str:
    return vector["text"] if "text" in vector else " ".join(vector["words"])


def golden_ids(bundle: Bundle, vector: dict) -> np.ndarray:
    """Golden vectors hold raw text, or pre-tokenized words (tagging bundles)."""
    if "words" in vector:
        return bundle.tokenizer.encode_words(vector["words"])
    return bundle.tokenizer.encode(vector["text"])


def golden_label(bundle: Bundle, scores: np.ndarray):
    """The label a golden vector records: one label, or one tag per position for taggers."""
    if scores.ndim == 2:
        return [bundle.labels[int(k)] for k in scores.argmax(axis=-1)]
    return bundle.labels[int(np.argmax(scores))]


def run_smoke(bundle: Bundle, latency_runs: int = 200) -> SmokeReport:
    """Verify the golden vectors twice (in order, then reversed) and time end-to-end predictions."""
    try:
        return _run_smoke(bundle, latency_runs)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        # A golden file that parses but has the wrong shape: the bundle's fault, not a crash.
        raise SchemaError(f"golden.json or metadata.json of {bundle.source} has a field of the wrong "
                          f"type or shape ({type(exc).__name__}: {exc}); rebuild the bundle.") from None


def _run_smoke(bundle: Bundle, latency_runs: int) -> SmokeReport:
    tol = bundle.metadata.golden_tolerance
    failures: list[str] = []
    timings: list[float] = []
    n = len(bundle.golden)
    if n == 0:
        failures.append("the bundle has no golden vectors to check")
    worst = _check_pass(bundle, list(range(n)), tol, "in order", failures, timings)
    worst = max(worst, _check_pass(bundle, list(reversed(range(n))), tol, "reversed", failures, timings))
    latencies = []
    if n:
        texts = [_golden_text(v) for v in bundle.golden]
        run = bundle.tag if bundle.metadata.task == "tagging" else bundle.predict
        for k in range(max(latency_runs, 1)):
            start = time.perf_counter()
            run(texts[k % n])
            latencies.append(time.perf_counter() - start)
    ms = np.array(latencies or [0.0]) * 1000
    return SmokeReport(
        bundle=bundle.source,
        runtime=f"{bundle.model.runtime.name} {bundle.model.runtime.version}",
        vectors=n,
        passes=2,
        max_abs_diff=worst,
        tolerance=tol,
        latency_ms_p50=float(np.percentile(ms, 50)),
        latency_ms_p95=float(np.percentile(ms, 95)),
        peak_rss_mb=peak_rss_mb(),
        failures=failures,
    )


def require_ok(report: SmokeReport) -> SmokeReport:
    if not report.ok:
        raise SmokeTestError(
            f"smoke test failed for {report.bundle} on {report.runtime}: "
            f"{len(report.failures)} failure(s): " + "; ".join(report.failures[:10])
        )
    return report
