"""Tokenizer profiles: the splitting and normalizing rules of each tokenizer bilite reproduces.

A bundle records its profile; the device applies exactly that profile's rules, so a model is fed
the ids it was trained with, whoever tokenized its training data:

* ``bilite-words-v1``: bilite's own (see tokenizer.py): Unicode words with inner apostrophes,
  one token per other visible character, NFKC, lowercase, digits folded to 0.
* ``tflite-regex-v1``: the TFLite Task Library / MediaPipe ``RegexTokenizer`` with the pattern
  ``[^\\w']+`` (RE2, ASCII ``\\w``): tokens are runs of ``[A-Za-z0-9_']``, so "Café" gives "Caf";
  no lowercasing; ``<PAD>`` = 0, unknown words -> ``<UNKNOWN>``; a ``<START>`` id is prepended
  when the vocabulary has one. Bundles with it drop into those runtimes (issue 8).
* ``keras-tokenizer-v1``: ``keras.preprocessing.text.Tokenizer`` (tf_keras / Keras 2):
  optional Python ``str.lower()``, every character of ``filters`` and the ``split`` character
  separate tokens (nothing else does: "\\r" does not), words past ``num_words`` are unknown,
  unknown words map to ``oov_token`` or, without one, are dropped.
* ``keras-textvectorization-v1``: ``keras.layers.TextVectorization`` with ``split="whitespace"``:
  tokens are runs of non-ASCII-whitespace (TensorFlow splits on space, \\t \\n \\r \\v \\f only),
  ``lower`` lowercases ASCII letters only (``tf.strings.lower``: "ÉCOLE" -> "École"), and
  ``strip_punctuation`` deletes ASCII punctuation inside tokens ("don't" -> "dont").

Each profile's facts were measured against the real Keras layers (tests/host/test_profiles.py
compares every profile with its origin on real texts).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# keras.layers.TextVectorization's DEFAULT_STRIP_REGEX, as a set of characters.
TEXTVECTORIZATION_PUNCTUATION = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~'"
KERAS_TOKENIZER_FILTERS = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n"
_ASCII_UPPER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


@dataclass(frozen=True)
class Profile:
    name: str
    pad_token: str
    unk_token: str        # the default; keras-tokenizer takes the user's oov token (or none)
    description: str
    fixed: tuple = ()      # (field, value) pairs every config of this profile must have


BILITE = "bilite-words-v1"
REGEX = "tflite-regex-v1"
KERAS_TOKENIZER = "keras-tokenizer-v1"
TEXTVECTORIZATION = "keras-textvectorization-v1"
_PLAIN = (("normalization", "none"), ("fold_digits", False), ("clitics", "none"), ("features", ("word",)))

PROFILES = {
    BILITE: Profile(BILITE, "<pad>", "<unk>",
                    "words, inner apostrophes, one token per other visible character",
                    (("separators", ""), ("strip", ""))),
    REGEX: Profile(REGEX, "<PAD>", "<UNKNOWN>",
                   "RegexTokenizer: split on [^\\w']+ with ASCII \\w; <START> prepended if in the vocabulary",
                   _PLAIN + (("lowercase", False), ("separators", ""), ("strip", ""))),
    KERAS_TOKENIZER: Profile(KERAS_TOKENIZER, "<pad>", "",
                             "keras Tokenizer: characters in `separators` split; str.lower()",
                             _PLAIN + (("strip", ""),)),
    TEXTVECTORIZATION: Profile(TEXTVECTORIZATION, "<pad>", "[UNK]",
                               "TextVectorization: split on ASCII whitespace; ASCII lowercase; "
                               "characters in `strip` deleted",
                               _PLAIN + (("separators", ""),)),
}

_REGEX_TOKEN = re.compile(r"[A-Za-z0-9_']+")
_TV_TOKEN = re.compile(r"[^ \t\n\r\x0b\x0c]+")
_separator_res: dict[str, re.Pattern] = {}


def profile_problems(config) -> list[str]:
    """Contradictions between a config and its profile's fixed rules."""
    profile = PROFILES.get(config.profile)
    if profile is None:
        return [f"tokenizer profile {config.profile!r} is unknown to this bilite-device "
                f"(knows {sorted(PROFILES)}); upgrade bilite-device"]
    problems = [f"profile {profile.name} requires {name}={value!r}, got {getattr(config, name)!r}"
                for name, value in profile.fixed if getattr(config, name) != value]
    if config.profile == BILITE and config.unk_token != profile.unk_token:
        problems.append(f"profile {BILITE} uses unk_token {profile.unk_token!r}, got {config.unk_token!r}")
    if config.profile == KERAS_TOKENIZER and not config.separators:
        problems.append("profile keras-tokenizer-v1 needs separators (the split character and filters)")
    return problems


def spans(text: str, config, bilite_spans):
    """(surface, start, end) per token of ``text`` under ``config``'s profile."""
    if config.profile == BILITE:
        return bilite_spans(text, config)
    if config.profile == REGEX:
        pattern = _REGEX_TOKEN
    elif config.profile == TEXTVECTORIZATION:
        pattern = _TV_TOKEN
    else:
        pattern = _separator_res.get(config.separators)
        if pattern is None:
            pattern = _separator_res[config.separators] = re.compile(
                "[^" + "".join(re.escape(c) for c in config.separators) + "]+")
    return ((m.group(), m.start(), m.end()) for m in pattern.finditer(text))


def normalize(token: str, config) -> str:
    """A non-bilite profile's token normalization (bilite's own is in tokenizer.py)."""
    if config.lowercase:
        # TextVectorization lowercases with tf.strings.lower, ASCII only; Keras's Tokenizer
        # with Python's str.lower(), which knows all of Unicode.
        token = token.translate(_ASCII_UPPER) if config.profile == TEXTVECTORIZATION else token.lower()
    if config.strip:
        token = token.translate({ord(c): None for c in config.strip})
    return token
