"""The host CLI: help everywhere, README mentions, and typed errors as exit status 1."""

import re
import subprocess
import sys
import time

from click.testing import CliRunner

from bilite.cli import main
from conftest import ROOT


def test_every_command_and_option_has_help_and_a_readme_mention():
    readme = (ROOT / "README.md").read_text()
    for name, command in main.commands.items():
        assert command.help, name
        assert f"bilite {name}" in readme, f"README does not mention `bilite {name}`"
        for param in command.params:
            if param.param_type_name == "option" and param.name != "help":
                assert param.help, f"{name} {param.opts} has no help"
        result = CliRunner().invoke(main, [name, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output


def test_help_does_not_import_tensorflow():
    code = ("import sys\nfrom bilite.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n"
            "    pass\nassert 'tensorflow' not in sys.modules, 'tensorflow imported by --help'\n")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert time.perf_counter() - start < 30  # generous: a TensorFlow import is what this guards


def test_user_errors_exit_one_with_one_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("just one column\n")
    result = CliRunner().invoke(main, ["build", str(bad), "--out", str(tmp_path / "b")])
    assert result.exit_code == 1 and "expected 'label<TAB>text'" in result.output
    result = CliRunner().invoke(main, ["build", str(tmp_path / "none.txt"), "--out", str(tmp_path / "b")])
    assert result.exit_code == 1 and "dataset file not found" in result.output
    result = CliRunner().invoke(main, ["build", str(bad), "--out", str(tmp_path / "b"),
                                       "--cell", "gru", "--form", "fused"])
    assert result.exit_code == 1 and "only for LSTM" in result.output
    assert not (tmp_path / "b").exists()


def test_inspect_refuses_a_damaged_bundle(tmp_path):
    import shutil

    copy = tmp_path / "b"
    shutil.copytree(ROOT / "tests" / "fixtures" / "tiny-sms-while", copy)
    (copy / "labels.txt").write_text("spam\nham\n")
    result = CliRunner().invoke(main, ["inspect", str(copy)])
    assert result.exit_code == 1 and re.search(r"checksum mismatch.*labels\.txt", result.output)


def test_a_bad_out_or_name_fails_before_training(tmp_path):
    """Bugs: an --out below a file failed with a traceback after training and conversion; a --name
    with a newline went into the device's systemd unit."""
    data = ROOT / "data" / "sms_spam_collection" / "SMSSpamCollection"
    (tmp_path / "afile").write_text("x")
    result = CliRunner().invoke(main, ["build", str(data), "--out", str(tmp_path / "afile" / "sub")])
    assert result.exit_code == 1 and "afile is a file, not a folder" in result.output
    assert "training:" not in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["build", str(data), "--out", str(tmp_path / "b"), "--name", "a\nExecStart=x"])
    assert result.exit_code == 1 and "must be one printable line" in result.output
    assert "training:" not in result.output and not (tmp_path / "b").exists()
