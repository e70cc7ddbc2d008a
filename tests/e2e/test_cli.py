"""Bad input to the command line is one line of error and exit code 2, never a traceback: argparse's
own errors (after the usage), and `suf: error: ...` for what only running a command finds out
(unknown gate, missing or foreign key file, unknown model, bad JSON)."""
import subprocess
import sys

import pytest

from suf.cli import main
from suf.runtime import GateJob, deal
from suf.runtime.dealing import key_file


def _suf(*args):
    out = subprocess.run([sys.executable, "-m", "suf.cli", *args], capture_output=True,
                         text=True, timeout=120)
    return out.returncode, out.stderr


def _one_error_line(err: str, prefix: str) -> str:
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(lines) == 1, err
    assert lines[0].startswith(prefix), err
    return lines[0]


@pytest.mark.parametrize("args,what", [
    (["serve", "--party", "0", "--peer", "host:abc", "--keys", "k"], "--peer"),
    (["serve", "--party", "0", "--peer", "nocolon", "--keys", "k"], "--peer"),
    (["serve", "--party", "2", "--peer", "h:1", "--keys", "k"], "--party"),
    (["gate", "relu", "--timeout", "-1"], "--timeout"),
    (["gate", "relu", "--count", "0"], "--count"),
    (["gate", "relu", "--device", "cpux"], "--device"),
    (["run", "--seq", "0"], "--seq"),
    (["plan", "--model", "bert-tiny", "--seq", "x"], "--seq"),
    (["run", "--frobnicate", "1"], "unrecognized arguments"),
    (["serve", "--party", "1", "--peer", "h:1", "--keys", "k", "--seed", "00"], "--seed"),
    ([], "required"),
])
def test_argparse_errors_are_one_line_after_the_usage(args, what, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: suf")
    assert what in _one_error_line(err, "suf")


def test_unknown_gate(capsys):
    assert main(["gate", "nosuchgate"]) == 2
    line = _one_error_line(capsys.readouterr().err, "suf: error: ")
    assert "unknown gate 'nosuchgate'" in line and "trfloor" in line


def test_bad_gate_bits(capsys):
    assert main(["gate", "relu", "--bits", "99"]) == 2
    assert "bits" in _one_error_line(capsys.readouterr().err, "suf: error: ")


def test_missing_key_file(tmp_path, capsys):
    missing = tmp_path / "nope.suk"
    assert main(["serve", "--party", "0", "--peer", "127.0.0.1:1", "--keys", str(missing),
                 "--seed", "00" * 32]) == 2
    line = _one_error_line(capsys.readouterr().err, "suf: error: ")
    assert "--keys" in line and "No such file" in line and str(missing) in line


def test_foreign_and_misused_key_files(tmp_path, capsys):
    deal(GateJob("relu", 50, 8), tmp_path)
    not_keys = tmp_path / "dealing.json"
    assert main(["serve", "--party", "0", "--peer", "127.0.0.1:1", "--keys", str(not_keys),
                 "--seed", "00" * 32]) == 2
    assert "not a suf key file" in _one_error_line(capsys.readouterr().err, "suf: error: ")
    # P0 with P1's keys: refused before any connection, the key file left unused
    assert main(["serve", "--party", "0", "--peer", "127.0.0.1:1", "--keys",
                 str(key_file(tmp_path, 1)), "--seed", "00" * 32]) == 2
    assert "party 1's keys" in _one_error_line(capsys.readouterr().err, "suf: error: ")
    # gate keys take no model options, and need their seed
    assert main(["serve", "--party", "1", "--peer", "127.0.0.1:1", "--keys",
                 str(key_file(tmp_path, 1)), "--model", "bert-tiny"]) == 2
    assert "--model: not for gate keys" in _one_error_line(capsys.readouterr().err, "suf: error: ")
    assert main(["serve", "--party", "1", "--peer", "127.0.0.1:1", "--keys",
                 str(key_file(tmp_path, 1))]) == 2
    assert "--seed" in _one_error_line(capsys.readouterr().err, "suf: error: ")


def test_deal_into_a_directory_with_keys(tmp_path, capsys):
    deal(GateJob("relu", 50, 8), tmp_path)
    assert main(["deal", "--model", "bert-tiny", "--seq", "4", "--out", str(tmp_path)]) == 2
    assert "exists" in _one_error_line(capsys.readouterr().err, "suf: error: ")


@pytest.mark.parametrize("args,what", [
    (["run", "--model", "no-such-model", "--ids", "[1, 2]"], "unknown model"),
    (["run", "--model", "bert-tiny", "--ids", "[1, 2"], "--ids"),
    (["run", "--model", "bert-tiny", "--ids", "[1, 2]", "--text", "a"], "not both"),
    (["run", "--model", "bert-tiny", "--ids", "[1, 2, 3]", "--seq", "2"], "more than length 2"),
    (["run", "--model", "bert-tiny", "--ids", "[[1], [2]]", "--batch", "3"], "--batch 3"),
    (["run", "--model", "bert-tiny", "--ids", "[1]", "--key-dir", "/no/such/dir"], "key directory"),
    (["plan", "--model", "bert-tiny", "--seq", "4", "--key-dir", "/no/such/dir"], "--key-dir"),
])
def test_bad_input_of_run_and_plan(args, what, capsys):
    assert main(args) == 2
    assert what in _one_error_line(capsys.readouterr().err, "suf: error: ")


def test_as_a_process():
    code, err = _suf("gate", "nosuchgate")
    assert code == 2 and err.startswith("suf: error: unknown gate")
    assert len(err.splitlines()) == 1
    code, err = _suf("serve", "--party", "0", "--peer", "host:abc", "--keys", "k")
    assert code == 2 and "Traceback" not in err
    assert err.splitlines()[-1].startswith("suf serve: error: argument --peer")


@pytest.mark.parametrize("content,what", [
    (b'{"txt": ["a"]}', 'one key, "text" or "ids"'),
    (b'{"text": "a"}', '"text" must be a list of strings'),
    (b"\xff\xfe", "not UTF-8"),
    (b"\n  \n", "no input"),
    (b'{"ids": [[1, 2]', "--input"),
])
def test_client_input_file_errors(model_keys, tmp_path, content, what, capsys):
    """P1's input comes from a file or standard input (never its command line); a bad one is a
    one-line error before anything connects (the keys stay unused: one dealing serves all)."""
    given = tmp_path / "input"
    given.write_bytes(content)
    assert main(["serve", "--party", "1", "--peer", "127.0.0.1:1", "--keys",
                 str(key_file(model_keys, 1)), "--bundle", str(model_keys / "client.bundle"),
                 "--input", str(given)]) == 2
    assert what in _one_error_line(capsys.readouterr().err, "suf: error: ")


@pytest.fixture(scope="module")
def model_keys(tmp_path_factory):
    from suf.models import load_model
    from suf.runtime import ModelJob

    d = tmp_path_factory.mktemp("keys")
    deal(ModelJob(load_model("bert-tiny"), 1, 4), d)
    return d


def test_client_input_formats():
    from suf.cli.serve import read_input

    assert read_input.__doc__
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("first sentence\n\nsecond one\n")
    assert read_input(f.name) == {"text": ["first sentence", "second one"]}
    with open(f.name, "w") as g:
        g.write('{"ids": [[1, 2], [3]]}')
    assert read_input(f.name) == {"ids": [[1, 2], [3]]}
