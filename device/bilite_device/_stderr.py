"""Capture what native code writes to file descriptor 2 while a block runs.

TFLite runtimes print "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." from C++ every
time an interpreter is made, which buries a CLI's real output; TensorFlow's converter prints
pages of C++ log lines. Python's ``sys.stderr`` redirection cannot catch either, so this swaps
the file descriptor itself. The captured text is returned so errors can still quote it.
Process-wide: do not use it around work that other threads are doing at the same time.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile


@contextlib.contextmanager
def captured_fd2():
    sink = {"text": ""}
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real fd 2 (embedded interpreters)
        yield sink
        return
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield sink
        finally:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            sink["text"] = tmp.read().decode("utf-8", "replace")


NOISE = ("INFO: Created TensorFlow Lite XNNPACK delegate", "INFO: Initialized TensorFlow Lite runtime")


def replay_unexpected(text: str, noise: tuple[str, ...] = ()) -> None:
    """Write captured lines back to stderr, except known start-up notices (``NOISE``, and any
    line containing one of ``noise``)."""
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith(NOISE)
             and not any(n in line for n in noise)]
    if lines:
        print("\n".join(lines), file=sys.stderr)
