"""Tagging: one entry per word with exact offsets, windows for long texts, no word dropped."""

import json
import subprocess
import sys

import pytest

from bilite_device import InputError, load_bundle
from bilite_device.features import case_id
from bilite_device.tagging import best_window, windows
from bilite_device.tokenizer import TokenizerConfig, split

from conftest import FIXTURES, WHILE_BUNDLE

TAGGER = FIXTURES / "tiny-ewt-tag"


@pytest.fixture(scope="module")
def tagger():
    return load_bundle(TAGGER)


def test_offsets_slice_the_original_text(tagger):
    text = "  Café\u0301  naïve   café's ＦＵＬＬ the the  the\tdidn't 👍🏽 "
    words = tagger.tag(text)
    assert [text[w.start:w.end] for w in words] == [w.word for w in words]
    assert [w.word for w in words][:4] == ["Café\u0301", "naïve", "café", "'s"]
    assert [w.word for w in words].count("the") == 3  # repeated words each get their own offsets
    starts = [w.start for w in words]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    assert all(w.tag in tagger.labels and 0 < w.score <= 1 for w in words)


def test_long_text_is_windowed_and_no_word_is_dropped(tagger):
    max_len = tagger.tokenizer.config.max_len
    words = [f"word{i}" if i % 7 else "the" for i in range(5 * max_len + 3)]
    text = " ".join(words)
    tagged = tagger.tag(text)
    assert [w.word for w in tagged] == words
    assert all(text[w.start:w.end] == w.word for w in tagged)
    pre = tagger.tag_tokens(words)
    assert [w.tag for w in pre] == [w.tag for w in tagged]


def test_window_choice_gives_every_word_central_context():
    spans = windows(40, 16)
    assert spans[0] == (0, 16) and spans[-1] == (24, 40)
    assert all(b - a == 16 for a, b in spans)
    covered = {i for a, b in spans for i in range(a, b)}
    assert covered == set(range(40))
    # word 20 sits most centrally in the window starting at 8 or 16, not at an edge
    k = best_window(20, spans)
    assert spans[k][0] < 20 < spans[k][1] - 1
    assert windows(5, 16) == [(0, 5)]


def test_short_window_matches_a_direct_run(tagger):
    words = ["The", "dog", "barked", "."]
    scores = tagger.scores_for_ids(tagger.tokenizer.encode_words(words))
    assert [w.tag for w in tagger.tag_tokens(words)] == [tagger.labels[i] for i in scores.argmax(-1)[:4]]


def test_empty_and_odd_text(tagger):
    assert tagger.tag("") == [] and tagger.tag("   \n") == []
    assert len(tagger.tag("😀 !!! ＡＢＣ")) == 5
    assert tagger.tag_tokens([]) == []


def test_english_clitics_split_like_ud():
    cfg = TokenizerConfig(clitics="english")
    assert split("I didn't know it's John's", cfg) == ["i", "did", "n't", "know", "it", "'s", "john", "'s"]
    assert split("don't", TokenizerConfig()) == ["don't"]


@pytest.mark.parametrize("surface, case", [("dog", 1), ("Dog", 2), ("DOG", 3), ("iPhone", 4),
                                           ("42", 5), ("I", 2), ("ÉCOLE", 3), ("!", 5)])
def test_case_classes(surface, case):
    assert case_id(surface) == case


def test_wrong_call_for_the_task(tagger):
    with pytest.raises(InputError, match="use tag"):
        tagger.predict("hello")
    with pytest.raises(InputError, match="use predict"):
        load_bundle(WHILE_BUNDLE).tag("hello")


def test_tag_cli():
    proc = subprocess.run([sys.executable, "-m", "bilite_device.cli", "tag", str(TAGGER), "--json",
                           "The cat sat.", "Dogs bark"], capture_output=True, text=True, timeout=120)
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 0 and [len(r["words"]) for r in rows] == [4, 2]
    assert rows[0]["words"][1] | {"tag": None, "score": None} == \
        {"word": "cat", "start": 4, "end": 7, "tag": None, "score": None}
    plain = subprocess.run([sys.executable, "-m", "bilite_device.cli", "tag", str(TAGGER), "--words",
                            "New York"], capture_output=True, text=True, timeout=120)
    assert plain.returncode == 0 and plain.stdout.startswith("New/") and " York/" in plain.stdout


def test_best_window_matches_the_exhaustive_choice():
    for n, size in [(40, 16), (101, 16), (1000, 64), (33, 8), (17, 16)]:
        spans = windows(n, size)
        for i in range(n):
            exhaustive = min(range(len(spans)), key=lambda k: abs(i - (spans[k][0] + spans[k][1] - 1) / 2))
            assert best_window(i, spans) == exhaustive, (n, size, i)


def test_a_long_text_is_tagged_in_linear_time(tagger):
    # 20,000 words: the old quadratic window choice took ~25 s here; now well under that.
    words = tagger.tag("the cat sat " * 6667)
    assert len(words) == 20001 and words[-1].word == "sat"
