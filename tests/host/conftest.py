from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[2]
SMS = ROOT / "data" / "sms_spam_collection" / "SMSSpamCollection"
FIXTURES = ROOT / "tests" / "fixtures"


@pytest.fixture(scope="session")
def sms():
    from bilite.data import load_dataset

    return load_dataset(SMS)


@pytest.fixture(scope="session")
def small_sms(sms):
    """900 real messages (every 6th), both labels present: enough to train a tiny model in seconds."""
    return sms.subset(list(range(0, len(sms), 6)))
