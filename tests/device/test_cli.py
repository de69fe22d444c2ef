"""bilite-device CLI: exit codes, output formats, and one clear error line for bad input."""

import json
import subprocess
import sys

import pytest

from bilite_device.cli import build_parser, main

from conftest import FUSED_BUNDLE, WHILE_BUNDLE, read_dir, write_dir


def run(*args, stdin=None):
    proc = subprocess.run([sys.executable, "-m", "bilite_device.cli", *map(str, args)],
                          input=stdin, capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize("bundle", [WHILE_BUNDLE, FUSED_BUNDLE.with_name("tiny-sms-fused.tar.gz")])
def test_smoke_passes(bundle):
    code, out, err = run("smoke", bundle, "--runs", "10")
    assert code == 0, err
    assert out.startswith("PASS") and "p50" in out and "peak RSS" in out
    assert "XNNPACK" not in err  # the runtime's start-up notice is kept out of the way


def test_smoke_json():
    code, out, _ = run("smoke", WHILE_BUNDLE, "--runs", "5", "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] and report["vectors"] >= 20 and report["passes"] == 2


def test_smoke_fails_non_zero_when_golden_scores_differ(tmp_path):
    files = read_dir(WHILE_BUNDLE)
    golden = json.loads(files["golden.json"])
    golden["vectors"][3]["scores"] = [0.5, 0.5]
    files["golden.json"] = json.dumps(golden).encode()
    code, out, err = run("smoke", write_dir(tmp_path / "b", files), "--runs", "1")
    assert code == 1
    assert out.startswith("FAIL") and "vector 3 scores differ" in err


def test_predict_arguments_and_stdin():
    code, out, _ = run("predict", WHILE_BUNDLE, "Lunch at 1?", "")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2
    label, score, text = lines[0].split("\t")
    assert label in ("ham", "spam") and 0 <= float(score) <= 1 and text == "Lunch at 1?"
    code, out, _ = run("predict", WHILE_BUNDLE, "--json", stdin="one\ntwo\nthree\n")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["text"] for r in rows] == ["one", "two", "three"]
    assert all(set(r) == {"text", "label", "score", "scores"} for r in rows)


def test_stdin_that_is_not_utf8_is_one_clear_error():
    proc = subprocess.run([sys.executable, "-m", "bilite_device.cli", "predict", str(WHILE_BUNDLE)],
                          input=b"fine line\ncaf\xe9\n", capture_output=True, timeout=120)
    assert proc.returncode == 1
    assert b"stdin line 2 is not valid UTF-8" in proc.stderr and b"Traceback" not in proc.stderr
    assert proc.stdout.decode().startswith(("ham\t", "spam\t"))


def test_texts_may_follow_options():
    code, out, _ = run("predict", WHILE_BUNDLE, "--json", "first text", "second")
    assert code == 0 and [json.loads(x)["text"] for x in out.splitlines()] == ["first text", "second"]
    assert run("predict", WHILE_BUNDLE, "x", "--bogus")[0] == 2


def test_info():
    code, out, _ = run("info", WHILE_BUNDLE, "--json")
    info = json.loads(out)
    assert code == 0 and info["conversion"]["form"] == "while"
    assert any(op["name"] == "WHILE" for op in info["model"]["ops"])
    code, out, _ = run("info", WHILE_BUNDLE / "model.tflite")
    assert code == 0 and "WHILE v" in out


@pytest.mark.parametrize("args, message", [
    (["smoke", "/nonexistent/bundle"], "bundle not found"),
    (["predict", "/nonexistent/bundle", "x"], "bundle not found"),
    (["info", "/nonexistent/x.tflite"], "bundle not found"),
])
def test_errors_exit_one_with_a_message(args, message):
    code, out, err = run(*args)
    assert code == 1 and message in err and "Traceback" not in err


def test_checksum_error_exit_code(tmp_path):
    files = read_dir(WHILE_BUNDLE)
    files["vocab.txt"] = files["vocab.txt"].replace(b"free", b"frEe", 1)
    code, _, err = run("smoke", write_dir(tmp_path / "b", files, rechecksum=False))
    assert code == 1 and "checksum mismatch" in err and "vocab.txt" in err


def test_usage_errors_exit_two():
    assert run("smoke")[0] == 2
    assert run("smoke", WHILE_BUNDLE, "--threads", "0")[0] == 2


def test_every_command_has_help_and_a_readme_mention():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name, sub in commands.items():
        assert sub.description, name
        assert f"bilite-device {name}" in readme, f"README does not mention `bilite-device {name}`"


def test_main_returns_status_in_process():
    assert main(["info", str(WHILE_BUNDLE)]) == 0


def test_predict_with_classifier_options():
    code, out, _ = run("predict", WHILE_BUNDLE, "--top-k", "2", "--json", "Free prize! Call now")
    cats = json.loads(out)["categories"]
    assert code == 0 and len(cats) == 2 and cats[0]["score"] >= cats[1]["score"]
    code, out, _ = run("predict", WHILE_BUNDLE, "--deny", "spam", "Free prize! Call now")
    assert code == 0 and out.startswith("ham:")
    code, _, err = run("predict", WHILE_BUNDLE, "--allow", "eggs", "x")
    assert code == 1 and "unknown label" in err


@pytest.mark.parametrize("args, message", [
    (["predict", WHILE_BUNDLE, "--top-k", "0", "x"], "--top-k must be at least 1"),
    (["predict", WHILE_BUNDLE, "--score-threshold", "nan", "x"], "--score-threshold must be"),
    (["predict", WHILE_BUNDLE, "--threads", "99999999999", "x"], "--threads must be from 1 to 64"),
    (["smoke", WHILE_BUNDLE, "--runs", "0"], "--runs must be at least 1"),
])
def test_bad_option_values_name_the_option(args, message):
    code, _, err = run(*args)
    assert code == 2 and message in err


def test_empty_allow_list_and_non_utf8_arguments_are_errors():
    code, _, err = run("predict", WHILE_BUNDLE, "--allow", ",", "x")
    assert code == 1 and "at least one label" in err
    proc = subprocess.run([sys.executable.encode(), b"-m", b"bilite_device.cli", b"predict",
                           str(WHILE_BUNDLE).encode(), b"caf\xff"], capture_output=True, timeout=120)
    assert proc.returncode == 1 and b"not valid UTF-8" in proc.stderr
