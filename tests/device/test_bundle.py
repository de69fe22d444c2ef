import json

import numpy as np
import pytest

from bilite_device import load_bundle, read_tflite_facts
from bilite_device.smoke import run_smoke

from conftest import FUSED_BUNDLE, WHILE_BUNDLE


def test_directory_and_archive_give_the_same_scores(bundle_dir):
    from_dir = load_bundle(bundle_dir)
    from_tar = load_bundle(bundle_dir.with_name(bundle_dir.name + ".tar.gz"))
    for vector in from_dir.golden:
        assert from_dir.predict(vector["text"]) == from_tar.predict(vector["text"])


def test_golden_vectors_reproduce(bundle_dir):
    report = run_smoke(load_bundle(bundle_dir), latency_runs=5)
    assert report.ok, report.failures
    assert report.vectors >= 20
    assert report.latency_ms_p50 > 0 and report.peak_rss_mb > 0


def test_same_text_scores_identically_before_and_after_other_texts(bundle_dir):
    bundle = load_bundle(bundle_dir)
    probe = "URGENT! You have won a 1 week FREE membership in our £100,000 prize Jackpot!"
    first = bundle.predict(probe).scores
    for vector in bundle.golden:
        bundle.predict(vector["text"])
    assert bundle.predict(probe).scores == first


def test_fused_form_really_keeps_state_without_the_reset():
    """The reason for reset_variables: without it, the fused LSTM answers differently."""
    bundle = load_bundle(FUSED_BUNDLE)
    assert bundle.model.reset_variables and bundle.model.facts.variable_tensors
    ids = bundle.tokenizer.encode("URGENT! You have won a FREE prize, call now")
    interp = bundle.model.interpreter
    inp = interp.get_input_details()[0]["index"]
    out = interp.get_output_details()[0]["index"]
    interp.reset_all_variables()
    seen = []
    for _ in range(3):
        interp.set_tensor(inp, ids.reshape(1, -1))
        interp.invoke()
        seen.append(float(interp.get_tensor(out).reshape(-1)[0]))
    assert len(set(seen)) > 1, "the fused op no longer keeps state: reset logic may be dropped"
    assert float(bundle.scores_for_ids(ids)[1]) == pytest.approx(seen[0], abs=0)


def test_prediction_shape_and_labels():
    bundle = load_bundle(WHILE_BUNDLE)
    prediction = bundle.predict("Are we still meeting for lunch today?")
    assert set(prediction.scores) == {"ham", "spam"}
    assert prediction.label == max(prediction.scores, key=prediction.scores.get)
    assert prediction.score == prediction.scores[prediction.label]
    assert sum(prediction.scores.values()) == pytest.approx(1.0, abs=1e-6)
    assert json.loads(json.dumps(prediction.to_json()))["label"] == prediction.label


@pytest.mark.parametrize("text", [
    "", "   ", "\U0001F600" * 50, "x" * 10_000, "spam " * 300_000, "\x00\x01\x02",
    "مرحبا", "e\u0301\u0301\u0301", "ＦＲＥＥ", "12345 67890", "?!?!", b"bytes are fine",
    "qwzx vbnmq plokij", "Привет 世界 hello مرحبا नमस्ते 👋🏽", "\U0001F468\u200d\U0001F469\u200d\U0001F467",
    "\u202eevil\u202c", "\ufeffbom",
])
def test_odd_text_still_gets_a_prediction(text):
    prediction = load_bundle(WHILE_BUNDLE).predict(text)
    assert prediction.label in ("ham", "spam") and 0.0 <= prediction.score <= 1.0


def test_only_unknown_words_encode_to_unk():
    bundle = load_bundle(WHILE_BUNDLE)
    ids = bundle.tokenizer.encode("qwzx vbnmq plokij")
    assert ids.tolist()[:3] == [1, 1, 1] and not ids[3:].any()


def test_bytes_that_are_not_utf8_are_a_typed_error():
    from bilite_device import InputError

    with pytest.raises(InputError, match="not valid UTF-8"):
        load_bundle(WHILE_BUNDLE).predict(b"caf\xe9 \xff")


def test_predict_batch_matches_predict():
    bundle = load_bundle(WHILE_BUNDLE)
    texts = [v["text"] for v in bundle.golden]
    assert bundle.predict_batch(texts) == [bundle.predict(t) for t in texts]
    assert bundle.predict_batch([]) == []


def test_inputs_and_outputs_are_bound_by_name():
    bundle = load_bundle(WHILE_BUNDLE)
    meta = bundle.metadata.model
    assert bundle.model._in["name"] == meta["inputs"][0]["name"]
    assert bundle.model._out["name"] == meta["outputs"][0]["name"]


def test_tflite_facts_agree_with_the_interpreter(bundle_dir):
    facts = read_tflite_facts((bundle_dir / "model.tflite").read_bytes())
    bundle = load_bundle(bundle_dir)
    details = bundle.model.interpreter.get_input_details()
    assert [t.name for t in facts.inputs] == [d["name"] for d in details]
    assert [tuple(t.shape) for t in facts.inputs] == [tuple(d["shape"]) for d in details]
    assert facts.flex_ops == []
    assert json.loads((bundle_dir / "metadata.json").read_text())["model"]["ops"] == \
        [{"name": o.name, "version": o.version, "count": o.count} for o in facts.ops]


def test_num_threads_must_be_positive():
    from bilite_device import BundleError

    with pytest.raises(BundleError, match="num_threads"):
        load_bundle(WHILE_BUNDLE, num_threads=0)
    assert np.allclose(load_bundle(WHILE_BUNDLE, num_threads=2).scores_for_ids(np.zeros(24, np.int32)),
                       load_bundle(WHILE_BUNDLE).scores_for_ids(np.zeros(24, np.int32)), atol=1e-6)


def test_classifier_options():
    from bilite_device import ClassifierOptions, InputError

    bundle = load_bundle(WHILE_BUNDLE)
    text = "URGENT! You have won a FREE prize, call now"
    scores = bundle.predict(text).scores
    every = bundle.classify(text)
    assert [c.label for c in every] == sorted(scores, key=scores.get, reverse=True)
    assert [c.score for c in every] == sorted(scores.values(), reverse=True)
    assert len(bundle.classify(text, ClassifierOptions(top_k=1))) == 1
    assert bundle.classify(text, ClassifierOptions(score_threshold=1.0)) == []
    for bad in (1.01, float("nan"), "0.5", True):
        with pytest.raises(InputError, match="score_threshold"):
            ClassifierOptions(score_threshold=bad)
    with pytest.raises(InputError, match="list of label names"):
        ClassifierOptions(allow="ham")
    with pytest.raises(InputError, match="ClassifierOptions"):
        bundle.classify(text, {"top_k": 3})
    assert [c.label for c in bundle.classify(text, ClassifierOptions(allow=("ham",)))] == ["ham"]
    assert [c.label for c in bundle.classify(text, ClassifierOptions(deny=("ham",)))] == ["spam"]
    with pytest.raises(InputError, match="unknown label"):
        bundle.classify(text, ClassifierOptions(allow=("eggs",)))
    with pytest.raises(InputError, match="not both"):
        ClassifierOptions(allow=("ham",), deny=("spam",))
    with pytest.raises(InputError, match="top_k"):
        ClassifierOptions(top_k=0)
