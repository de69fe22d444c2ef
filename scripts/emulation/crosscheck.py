#!/usr/bin/env python3
"""Cross-check helper for scripts/emulate-device (standard library only; runs on the host).

  crosscheck.py texts BUNDLE OUT.txt
      Write the bundle's golden inputs to OUT.txt, one per line, and print the bilite-device
      command that reads them from stdin: `predict --json` for a classification bundle (golden
      "text"), `tag --words --json` for a tagging bundle (golden "words", joined by spaces).
      Inputs that cannot travel one per line (line breaks; whitespace inside a word) are left out,
      with a note on stderr.

  crosscheck.py compare BUNDLE REFERENCE.jsonl OTHER.jsonl
      Compare two outputs of that command (REFERENCE: x86, OTHER: the emulated device) within the
      bundle's golden tolerance (metadata.json -> golden.tolerance): every label's score for a
      classifier, each word's tag and score for a tagger. Prints one line with the largest score
      difference; exits 1 on a mismatch.
"""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path

LINE_BREAKS = ("\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")


def read_member(bundle: Path, name: str) -> bytes:
    if bundle.is_dir():
        return (bundle / name).read_bytes()
    with tarfile.open(bundle, mode="r:*") as tar:
        for member in tar:
            if member.isfile() and member.name.rstrip("/").split("/")[-1] == name:
                return tar.extractfile(member).read()
    raise SystemExit(f"crosscheck: {bundle}: no {name} in the bundle")


def golden_vectors(bundle: Path) -> list[dict]:
    return json.loads(read_member(bundle, "golden.json"))["vectors"]


def tolerance(bundle: Path) -> float:
    meta = json.loads(read_member(bundle, "metadata.json"))
    return float(meta["golden"]["tolerance"])


def cmd_texts(bundle: Path, out: Path) -> int:
    vectors = golden_vectors(bundle)
    if all("text" in v for v in vectors):
        command, lines = "predict --json", [v["text"] for v in vectors]
    elif all("words" in v for v in vectors):
        command = "tag --words --json"
        lines = [" ".join(v["words"]) if not any(w.split() != [w] for w in v["words"]) else "\n"
                 for v in vectors]
    else:
        print(f"crosscheck: {bundle.name}: golden vectors have neither 'text' nor 'words'; "
              "teach scripts/emulation/crosscheck.py this bundle's task", file=sys.stderr)
        return 1
    kept = [t for t in lines if not any(b in t for b in LINE_BREAKS)]
    out.write_text("".join(t + "\n" for t in kept), encoding="utf-8")
    if len(kept) < len(lines):
        print(f"crosscheck: {bundle.name}: {len(lines) - len(kept)} golden input(s) that cannot be "
              "given one per line left out of the cross-check", file=sys.stderr)
    if not kept:
        print(f"crosscheck: {bundle.name}: no golden inputs to cross-check", file=sys.stderr)
        return 1
    print(command)
    return 0


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def pairs(a: dict, b: dict) -> list[tuple[str, str, str, float, float]]:
    """(what, label a, label b, score a, score b) for every score to compare in one record."""
    if "words" in a:
        if [w["word"] for w in a["words"]] != [w["word"] for w in b.get("words", [])]:
            raise ValueError(f"words differ for {a['text'][:40]!r}")
        return [(w["word"], w["tag"], v["tag"], w["score"], v["score"])
                for w, v in zip(a["words"], b["words"])]
    if set(a["scores"]) != set(b.get("scores", {})):
        raise ValueError(f"labels differ: {sorted(a['scores'])} vs {sorted(b.get('scores', {}))}")
    return [(k, a["label"], b["label"], a["scores"][k], b["scores"][k]) for k in a["scores"]]


def cmd_compare(bundle: Path, ref_path: Path, other_path: Path) -> int:
    tol = tolerance(bundle)
    ref, other = read_jsonl(ref_path), read_jsonl(other_path)
    problems = []
    if len(ref) != len(other) or not ref:
        problems.append(f"{len(ref)} reference outputs, {len(other)} emulated")
    worst, worst_where = 0.0, ""
    n_scores = 0
    flips = set()
    for a, b in zip(ref, other):
        if a["text"] != b["text"]:
            problems.append(f"input order differs: {a['text'][:40]!r} vs {b['text'][:40]!r}")
            break
        try:
            compared = pairs(a, b)
        except ValueError as exc:
            problems.append(str(exc))
            break
        for what, label_a, label_b, score_a, score_b in compared:
            n_scores += 1
            diff = abs(score_a - score_b)
            if diff > worst:
                worst, worst_where = diff, f"{what!r} in {a['text'][:50]!r}"
            if label_a != label_b:
                flips.add((a["text"], what))
                if diff > tol:
                    problems.append(f"{label_a} vs {label_b} for {what!r} in {a['text'][:40]!r}")
                else:  # a near-tie may flip within tolerance: said, but not a failure
                    print(f"crosscheck: note: {label_a} vs {label_b} on a near-tie for {what!r} in "
                          f"{a['text'][:40]!r} (|diff| {diff:.3g})", file=sys.stderr)
    if worst > tol:
        problems.append(f"max |diff| {worst:.3g} > tolerance {tol:g} at {worst_where}")
    summary = (f"{len(other)} inputs, {n_scores} scores, max |diff| {worst:.3g} "
               f"(tolerance {tol:g}), {len(flips)} label change(s)")
    if problems:
        print(summary + "; " + "; ".join(problems[:5]))
        return 1
    print(summary)
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "texts":
        return cmd_texts(Path(argv[1]), Path(argv[2]))
    if len(argv) == 4 and argv[0] == "compare":
        return cmd_compare(Path(argv[1]), Path(argv[2]), Path(argv[3]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
