"""`suf run` end to end: dealer key files, P0 and P1 as separate processes over TCP, output equal
to the reference; `suf deal` + `suf serve` refuse keys of another deployment or shape."""
import json
import subprocess
import sys

from suf.cli import main
from suf.models import load_model
from suf.runtime import ModelJob, deal
from suf.runtime.dealing import key_file


def test_suf_run_bert_tiny_processes_over_tcp():
    out = subprocess.run([sys.executable, "-m", "suf.cli", "run", "--model", "bert-tiny", "--ids",
                          "[[101, 2023, 2003, 102], [101, 7592, 102]]", "--seq", "4", "--json"],
                         capture_output=True, text=True, timeout=600,
                         env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout)
    assert res["equal"] is True and res["batch"] == 2 and res["length"] == 4
    assert res["real"][1] == [True, True, True, False]  # the second sequence is padded
    p0, p1 = (p["stats"]["phases"]["online"] for p in res["parties"])
    assert p0["bytes_sent"] == p1["bytes_recv"] and p0["bytes_recv"] == p1["bytes_sent"]
    assert res["dealing"]["key_payload_bytes"][0] > 0


def test_keys_for_another_shape_are_refused(tmp_path, capsys):
    deal(ModelJob(load_model("bert-tiny"), 1, 4), tmp_path)
    (tmp_path / "input.json").write_text('{"ids": [[1, 2], [3, 4]]}')
    code = main(["serve", "--party", "1", "--peer", "127.0.0.1:1", "--keys",
                 str(key_file(tmp_path, 1)), "--bundle", str(tmp_path / "client.bundle"),
                 "--input", str(tmp_path / "input.json")])
    assert code == 2
    assert capsys.readouterr().err == ("suf: error: the keys are for batch 1 x length 4, the input "
                                       "is 2 x 4\n")
