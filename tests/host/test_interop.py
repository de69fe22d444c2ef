"""`bilite build --interop`: the bundle's model.tflite runs as it is in the TFLite Task Library
(NLClassifier) and MediaPipe (TextClassifier), with the scores bilite-device gives.

One small model is trained on the SMS Spam Collection with --interop. Real test messages (some
twice, each runtime in its own order) are then classified by bilite-device on tflite-runtime
2.14 and ai-edge-litert (the device environments), and by the Task Library and MediaPipe in
``.venv/interop`` (made by scripts/setup-envs; tests/host/interop_runner.py runs them there).
Where that environment is missing or cannot import a runtime, those tests skip and say why.
"""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bilite.build import build
from bilite.cli import main
from bilite.config import BuildConfig, ConvertConfig, ModelConfig, TrainConfig
from bilite.data import stratified_split
from bilite.interop import DELIM_REGEX, add_metadata, interop_config, vocab_file
from bilite.target import TargetRunner, find_device_python
from bilite.tflite_metadata import MIN_PARSER_VERSION, read_metadata
from bilite_device import load_bundle
from bilite_device.tflite_file import read_tflite_facts
from bilite_device.tokenizer import TokenizerConfig

ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("interop_runner.py")
MAX_LEN = 32
CONFIG = interop_config(BuildConfig(
    tokenizer=TokenizerConfig(max_len=MAX_LEN, max_vocab=3000, min_count=2),
    model=ModelConfig(units=8, embed_dim=16),
    train=TrainConfig(epochs=3, seed=3),
    convert=ConvertConfig(quantization="float32"),
))
SCORE_TOLERANCE = 1e-5  # float32: every runtime runs the same float graph


@pytest.fixture(scope="module")
def interop_build(tmp_path_factory, sms):
    """The interop bundle, and the converter's output before metadata was added (captured)."""
    import bilite.interop

    plain = []
    real_populate = bilite.interop.populate

    def capture(model, *args, **kwargs):
        plain.append(bytes(model))
        return real_populate(model, *args, **kwargs)

    out = tmp_path_factory.mktemp("interop") / "sms-interop"
    log = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bilite.interop, "populate", capture)
        result = build(sms, CONFIG, out, log=log.append)
    assert len(plain) == 1
    return result, plain[0], log


@pytest.fixture(scope="module")
def texts(sms):
    """50 real test messages (25 spam, 25 ham; many with £, & or accents), 10 of them twice."""
    _, _, test = stratified_split(sms, CONFIG.train.seed)
    spam = [t for t, y in zip(test.texts, test.labels) if y == "spam"][:25]
    ham = [t for t, y in zip(test.texts, test.labels) if y == "ham"][:25]
    distinct = spam + ham
    assert len(set(distinct)) == 50 and not any("\n" in t for t in distinct)
    return distinct + distinct[::5]


def in_order(texts: list[str], seed: str) -> list[int]:
    """A runtime's own order of the texts (indices), so no runtime sees them as another does."""
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    return order


def device_scores(python: str, bundle_dir: Path, texts: list[str], seed: str) -> np.ndarray:
    """[text, label] scores from `bilite-device predict --json` in a device environment."""
    order = in_order(texts, seed)
    proc = subprocess.run([python, "-m", "bilite_device.cli", "predict", str(bundle_dir), "--json"],
                          input="".join(texts[i] + "\n" for i in order), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    scores = np.zeros((len(texts), 2))
    for i, row in zip(order, rows):
        assert row["text"] == texts[i]
        scores[i] = [row["scores"]["ham"], row["scores"]["spam"]]
    return scores


def interop_python() -> str:
    explicit = os.environ.get("BILITE_INTEROP_PYTHON")
    if explicit:
        return explicit
    python = ROOT / ".venv" / "interop" / "bin" / "python"
    if not python.is_file():
        pytest.skip("no .venv/interop (the TFLite Task Library and MediaPipe): scripts/setup-envs "
                    "makes it; if it failed, .venv/interop.log says why")
    if not (ROOT / ".venv" / "interop" / ".stamp").is_file():
        pytest.skip(".venv/interop is incomplete (pip install failed there): see .venv/interop.log")
    return str(python)


def third_party(runtime: str, texts: list[str], models: dict, seed: str, **extra) -> tuple[dict, dict]:
    """Run ``runtime`` in .venv/interop: ({model key: [text, label] scores}, the whole answer)."""
    order = in_order(texts, seed)
    request = {"runtime": runtime, "texts": [texts[i] for i in order],
               "models": {k: str(v) for k, v in models.items()}, **extra}
    proc = subprocess.run([interop_python(), str(RUNNER)], input=json.dumps(request),
                          capture_output=True, text=True, timeout=900)
    answers = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and answers, f"{runtime} runner failed: {proc.stderr[-3000:]}"
    answer = json.loads(answers[-1])
    if "unavailable" in answer:
        pytest.skip(answer["unavailable"])
    scores = {}
    for key, rows in answer["results"].items():
        table = np.zeros((len(texts), 2))
        for i, row in zip(order, rows):
            table[i] = [row["ham"], row["spam"]]
        scores[key] = table
    return scores, answer


@pytest.fixture(scope="module")
def reference(interop_build, texts):
    """bilite-device on tflite-runtime 2.14 (the build's target): what every runtime must give."""
    python = find_device_python(None, "tflite-runtime-2.14")
    if python is None:
        pytest.skip("no device environment with tflite-runtime 2.14: run through scripts/test")
    return device_scores(python, interop_build[0].bundle_dir, texts, "bilite-device")


def assert_same_labels_and_scores(got: np.ndarray, want: np.ndarray, texts: list[str]) -> float:
    assert got.shape == want.shape == (len(texts), 2)
    assert (got.argmax(1) == want.argmax(1)).all()
    diff = float(np.abs(got - want).max())
    assert diff <= SCORE_TOLERANCE, diff
    # A text given twice scores the same both times: nothing carries over between calls.
    for k in range(50, len(texts)):
        first = texts.index(texts[k])
        assert np.array_equal(got[k], got[first]), (k, first)
    return diff


def report(request, line: str) -> None:
    """A line for the end of the pytest run (tests/host/conftest.py prints them)."""
    request.config.bilite_interop_report = [*getattr(request.config, "bilite_interop_report", []), line]


def test_interop_refuses_what_those_runtimes_cannot_read():
    runner = CliRunner()
    data = str(ROOT / "data" / "sms_spam_collection" / "SMSSpamCollection")
    cases = {
        ("--form", "fused"): "--form fused: they need one subgraph and no state between calls",
        ("--form", "while"): "--form while: they need one subgraph",
        ("--task", "tag"): "neither runs a tagger. Drop --interop or --task tag",
        ("--padding", "pre"): "pad at the end; drop --padding pre",
        ("--truncation", "pre"): "truncate at the end; drop --truncation pre",
        ("--quantize", "int8", "--int8-output"): "--int8-output: they read float32 scores",
    }
    for args, message in cases.items():
        result = runner.invoke(main, ["build", data, "--out", "/nonexistent/x", "--interop", *args])
        assert result.exit_code == 1 and message in result.output, (args, result.output)


def test_interop_config_is_checked_before_any_training():
    from bilite.config import PruneConfig
    from bilite.errors import ConfigError
    from bilite.keras_model import build_model

    with pytest.raises(ConfigError, match="binary_head must be one of .'sigmoid', 'softmax'., got 'tanh'"):
        ModelConfig(binary_head="tanh")
    with pytest.raises(ConfigError, match="the tokenizer must be profile tflite-regex-v1 with unk_token "
                                          "'<UNKNOWN>' .got bilite-words-v1, '<unk>'."):
        BuildConfig(interop=True, convert=ConvertConfig(form="unrolled"), model=ModelConfig(binary_head="softmax"))
    with pytest.raises(ConfigError, match="a two-label model needs two softmax units"):
        BuildConfig(interop=True, tokenizer=CONFIG.tokenizer, convert=ConvertConfig(form="unrolled"))
    pruned = interop_config(BuildConfig(prune=PruneConfig(sparsity=0.5)))  # prune follows the head
    assert (pruned.prune.sparsity, pruned.model.binary_head) == (0.5, "softmax")
    assert (CONFIG.convert.form, CONFIG.model.binary_head, CONFIG.interop) == ("unrolled", "softmax", True)
    heads = {}
    for head in ("sigmoid", "softmax"):
        dense = build_model(ModelConfig(units=2, embed_dim=2, binary_head=head), 10, 2, 4).layers[-1]
        heads[head] = (dense.units, dense.activation.__name__)
    assert heads == {"sigmoid": (1, "sigmoid"), "softmax": (2, "softmax")}


def test_the_model_meets_their_contract(interop_build):
    result, _, _ = interop_build
    bundle_dir, meta = result.bundle_dir, result.metadata
    facts = read_tflite_facts((bundle_dir / "model.tflite").read_bytes())
    assert [(t.dtype, t.shape) for t in facts.inputs] == [("int32", (1, MAX_LEN))]
    assert [(t.dtype, t.shape) for t in facts.outputs] == [("float32", (1, 2))]
    assert facts.subgraph_count == 1 and not facts.variable_tensors
    assert "WHILE" not in facts.op_names and "SOFTMAX" in facts.op_names
    assert "TFLITE_METADATA" in facts.metadata_names and "min_runtime_version" in facts.metadata_names
    assert meta["model"]["form"] == "unrolled" and meta["output"]["kind"] == "softmax"
    assert meta["model"]["size_bytes"] == facts.size_bytes
    assert meta["tokenizer"]["profile"] == "tflite-regex-v1" and meta["tokenizer"]["lowercase"] is False
    assert meta["interop"]["task_library"] is True and meta["interop"]["mediapipe"] is True
    assert meta["training"]["config"]["interop"] is True

    embedded = read_metadata((bundle_dir / "model.tflite").read_bytes())
    vocab = (bundle_dir / "vocab.txt").read_text().splitlines()
    assert vocab[:2] == ["<PAD>", "<UNKNOWN>"] and "<START>" not in vocab
    assert embedded["min_parser_version"] == MIN_PARSER_VERSION == "1.2.1"
    [text_in], [scores_out] = embedded["inputs"], embedded["outputs"]
    assert text_in["process_units"] == [{"options_type": 6, "delim_regex": r"[^\w\']+",
                                         "vocab_files": [{"name": "vocab.txt", "type": 5}]}]
    assert scores_out["associated_files"] == [{"name": "labels.txt", "type": 2}]
    assert embedded["files"] == {"vocab.txt": vocab_file(vocab), "labels.txt": b"ham\nspam\n"}
    assert embedded["files"]["vocab.txt"].decode().splitlines()[:2] == ["<PAD> 0", "<UNKNOWN> 1"]
    assert embedded["compressed_files"] == []  # the Task Library reads stored files only


def test_metadata_leaves_scores_unchanged_on_both_device_runtimes(interop_build, sms):
    """Same outputs with and without metadata, bit for bit, on real inputs run in sequence."""
    result, plain, log = interop_build
    with_metadata = (result.bundle_dir / "model.tflite").read_bytes()
    assert len(with_metadata) > len(plain) and read_metadata(plain) == {}
    # The file is the converter's output plus metadata, reproducibly (fixed zip dates).
    vocab = (result.bundle_dir / "vocab.txt").read_text().splitlines()
    meta = result.metadata
    assert add_metadata(plain, vocab, meta["labels"], meta["name"], meta["description"],
                        read_metadata(with_metadata)["version"]) == with_metadata
    tokenizer = load_bundle(result.bundle_dir).tokenizer
    ids = tokenizer.encode_batch(sms.texts[:300])
    runtimes = []
    for target in ("tflite-runtime-2.14", "ai-edge-litert"):
        python = find_device_python(None, target)
        if python is None:
            pytest.skip(f"no device environment for {target}: run through scripts/test")
        before, after = TargetRunner(python).measure([(plain, result.metadata["model"]),
                                                      (with_metadata, result.metadata["model"])], ids, runs=5)
        assert np.array_equal(np.asarray(before["scores"]), np.asarray(after["scores"])), target
        assert np.array_equal(np.asarray(before["repeat_scores"]), np.asarray(after["repeat_scores"]))
        runtimes.append(TargetRunner(python).describe())
    # ... and the build proved the same on its own, before measuring anything on the new file.
    proofs = result.metadata["interop"]["metadata_leaves_scores_unchanged"]
    assert [p["runtime"] for p in proofs] == runtimes and all(p["max_abs_diff"] == 0.0 for p in proofs)
    assert sum("score identically with and without TFLite Metadata" in line for line in log) == 2


def test_bilite_device_reads_the_bundle_as_any_other(interop_build, reference, texts, request):
    result, _, _ = interop_build
    bundle = load_bundle(result.archive)  # checksums, schema, shapes, as for every bundle
    here = np.array([[p.scores["ham"], p.scores["spam"]] for p in bundle.predict_batch(texts)])
    assert_same_labels_and_scores(here, reference, texts)
    litert = find_device_python(None, "ai-edge-litert")
    if litert is None:
        pytest.skip("no ai-edge-litert device environment: run through scripts/test")
    diff = assert_same_labels_and_scores(device_scores(litert, result.bundle_dir, texts, "litert"),
                                         reference, texts)
    report(request, f"bilite-device on {TargetRunner(litert).describe()}: {len(texts)} texts, same labels as "
                    f"on tflite-runtime 2.14, max |score diff| {diff:.2g}")
    for python in (find_device_python(None, "tflite-runtime-2.14"), litert):
        smoke = subprocess.run([python, "-m", "bilite_device.cli", "smoke", str(result.archive), "--json"],
                               capture_output=True, text=True, timeout=600)
        assert smoke.returncode == 0 and json.loads(smoke.stdout)["ok"], smoke.stderr[-1000:]
    assert len({y for y in reference.argmax(1)}) == 2  # the model tells spam from ham here


def test_task_library_nlclassifier_gives_bilite_device_scores(interop_build, reference, texts, request):
    result, _, _ = interop_build
    scores, answer = third_party("task_library", texts, {"bundle": result.bundle_dir / "model.tflite"},
                                 "task_library")
    diff = assert_same_labels_and_scores(scores["bundle"], reference, texts)
    version = answer["versions"]["tflite-support"]
    assert version == "0.4.4"
    report(request, f"TFLite Task Library NLClassifier (tflite-support {version}, Python "
                    f"{answer['versions']['python']}): {len(texts)} texts, same labels as bilite-device, "
                    f"max |score diff| {diff:.2g}")


def test_mediapipe_textclassifier_gives_bilite_device_scores(interop_build, reference, texts, request):
    result, _, _ = interop_build
    scores, answer = third_party("mediapipe", texts, {"bundle": result.bundle_dir / "model.tflite"},
                                 "mediapipe")
    diff = assert_same_labels_and_scores(scores["bundle"], reference, texts)
    version = answer["versions"]["mediapipe"]
    report(request, f"MediaPipe TextClassifier (mediapipe {version}): {len(texts)} texts, same labels "
                    f"as bilite-device, max |score diff| {diff:.2g}")


def test_tflite_supports_own_writer_writes_the_same_metadata(interop_build, texts, tmp_path):
    """bilite writes the metadata itself (no tflite-support in the host): it must be what
    tflite-support's NL classifier writer makes of the same model, and classify the same."""
    result, plain, _ = interop_build
    (tmp_path / "plain.tflite").write_bytes(plain)
    meta = result.metadata
    vocab = (result.bundle_dir / "vocab.txt").read_text().splitlines()
    embedded = read_metadata((result.bundle_dir / "model.tflite").read_bytes())
    official = {"plain": str(tmp_path / "plain.tflite"), "out": str(tmp_path / "official.tflite"),
                "bilite": str(result.bundle_dir / "model.tflite"), "vocab": vocab, "labels": meta["labels"],
                "name": meta["name"], "description": meta["description"], "version": embedded["version"],
                "author": "bilite", "delim_regex": DELIM_REGEX}
    scores, answer = third_party("task_library", texts, {"bilite": result.bundle_dir / "model.tflite",
                                                         "official": tmp_path / "official.tflite"},
                                 "official", official_writer=official)
    shown = answer["official_writer"]
    assert shown["bilite"] == shown["official"]
    assert shown["bilite"]["files"] == ["labels.txt", "vocab.txt"]
    assert shown["bilite"]["json"]["min_parser_version"] == "1.2.1"
    assert np.array_equal(scores["bilite"], scores["official"])


def test_model_card_says_which_runtimes_read_the_bundle(interop_build):
    result, _, _ = interop_build
    card = (result.bundle_dir / "README.md").read_text()
    assert "| readable by | bilite-device; TFLite Task Library `NLClassifier`; MediaPipe `TextClassifier` |" in card
    assert "## Other runtimes" in card and "text.NLClassifier.create_from_file(\"model.tflite\")" in card
    assert "Readable by: bilite-device, the TFLite Task Library" in (result.bundle_dir / "card.html").read_text()


def test_a_bundle_without_interop_says_it_is_for_bilite_device_only(tmp_path):
    from bilite.interop import interop_section

    section = interop_section()
    assert section == {"task_library": False, "mediapipe": False, "bilite_device": True,
                       "note": "built without --interop: bilite's own tokenizer and no TFLite Metadata"}
    assert sys.modules.get("tflite_support") is None  # nothing of tflite-support in the host
