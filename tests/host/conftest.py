from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[2]
SMS = ROOT / "data" / "sms_spam_collection" / "SMSSpamCollection"
FIXTURES = ROOT / "tests" / "fixtures"


def pytest_configure(config):
    """Tests marked slow (the full 720-cell conversion matrix, about an hour on 2 cores) are left
    out unless a -m expression asks for them: `scripts/test -m slow -k matrix`."""
    if not config.option.markexpr:
        config.option.markexpr = "not slow"


@pytest.fixture(scope="session")
def sms():
    from bilite.data import load_dataset

    return load_dataset(SMS)


@pytest.fixture(scope="session")
def small_sms(sms):
    """900 real messages (every 6th), both labels present: enough to train a tiny model in seconds."""
    return sms.subset(list(range(0, len(sms), 6)))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """The third-party runtimes test_interop.py measured, with their versions, in every run's
    output; or why it skipped them (pytest -q alone would only count the skips)."""
    lines = list(getattr(config, "bilite_interop_report", []))
    for report in terminalreporter.stats.get("skipped", []):
        if "test_interop.py" in report.nodeid and isinstance(report.longrepr, tuple):
            lines.append(f"SKIPPED {report.nodeid.split('::')[-1]}: {report.longrepr[2].removeprefix('Skipped: ')}")
    if lines:
        terminalreporter.section("other runtimes and the --interop bundle (test_interop.py)")
        for line in lines:
            terminalreporter.write_line(line)
