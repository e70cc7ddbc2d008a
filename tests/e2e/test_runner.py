"""Gates between two real OS processes over TCP on localhost (dealer -> key files -> P0, P1), the
CLI, and the faults a deployment meets: dead peer, mismatched dealing, reused or foreign keys."""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import sigma_cost_model as cm
from suf.keys import KeyFileError, inspect_key_file
from suf.runtime.gate_runner import deal, free_port, run_gate, serve, spec_hash


@pytest.mark.parametrize("gate,bits,count,shift", [("trfloor", 50, 300, 12), ("trws", 37, 300, 12),
                                                   ("tr", 50, 200, 8), ("relu", 50, 300, 12),
                                                   ("lut", 50, 200, 8), ("matmul", 50, 64, 12)])
def test_gate_over_tcp_equals_reference_and_cost_model(gate, bits, count, shift):
    res = run_gate(gate, bits=bits, count=count, shift=shift, timeout=30)
    assert res["equal"]
    online = [p["stats"]["phases"]["online"] for p in res["parties"]]
    assert online[0]["bytes_sent"] == online[1]["bytes_recv"]
    assert online[0]["exchanges"] == online[1]["exchanges"]
    c = cm.Ctr()
    N = res["output"].numel()
    if gate == "trfloor":
        cm.c_trfloor(c, bits, shift, N)
    elif gate == "trws":
        cm.c_trslack(c, bits, N)
    elif gate == "relu":
        cm.c_relu(c, bits, N)
    elif gate == "lut":
        cm.c_lut(c, bits, N)
    elif gate == "matmul":
        cm.c_matmul(c, bits, shift, N)
    else:
        c.x(1, N); c.x(bits - shift, N)
    assert online[0]["bytes_sent"] == c.b and online[0]["exchanges"] == c.r


def test_cli_gate_json():
    out = subprocess.run([sys.executable, "-m", "suf.cli", "gate", "relu", "--count", "100",
                          "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["equal_to_reference"] is True
    assert report["online"]["exchanges"] == 2
    assert report["keys"]["payload_bytes_p0"] + 12 + 24 == cm.k_relu(50, 100)


SPEC = {"gate": "trfloor", "bits": 50, "count": 64, "shift": 12}


def _party(party, port, keys, out, timeout=5.0, spec=SPEC):
    cmd = [sys.executable, "-m", "suf.cli", "serve-gate", "--party", str(party), "--peer",
           f"127.0.0.1:{port}", "--keys", str(keys), "--spec", json.dumps(spec), "--input-seed",
           "00" * 32, "--out", str(out), "--timeout", str(timeout)]
    return subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)


def test_mismatched_dealings_are_refused(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(); b.mkdir()
    da, db = deal(SPEC, a), deal(SPEC, b)
    port = free_port()
    procs = [_party(0, port, da["paths"][0], tmp_path / "o0"),
             _party(1, port, db["paths"][1], tmp_path / "o1")]
    errs = [p.communicate(timeout=60)[1] for p in procs]
    assert all(p.returncode != 0 for p in procs)
    assert any("dealing" in e for e in errs), errs


def test_reused_and_foreign_key_files_are_refused(tmp_path):
    d = deal(SPEC, tmp_path)
    with pytest.raises(KeyFileError, match="party 1's keys"):
        serve(0, "127.0.0.1", free_port(), d["paths"][1], SPEC, bytes(32), str(tmp_path / "o"))
    port = free_port()
    procs = [_party(p, port, d["paths"][p], tmp_path / f"o{p}") for p in (0, 1)]
    assert all(p.wait(timeout=60) == 0 for p in procs)
    with pytest.raises(KeyFileError, match="one-time"):
        serve(0, "127.0.0.1", free_port(), d["paths"][0], SPEC, bytes(32), str(tmp_path / "o"))


def test_truncated_key_file_is_refused(tmp_path):
    d = deal(SPEC, tmp_path)
    path = Path(d["paths"][0])
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(KeyFileError):
        serve(0, "127.0.0.1", free_port(), str(path), SPEC, bytes(32), str(tmp_path / "o"))


def test_peer_dying_mid_run_gives_a_clear_error_within_the_timeout(tmp_path):
    """P1 connects with the right dealing, then dies before the online phase ends."""
    d = deal(SPEC, tmp_path)
    port = free_port()
    p0 = _party(0, port, d["paths"][0], tmp_path / "o0", timeout=5.0)
    info = inspect_key_file(d["paths"][1])
    hello = {"dealing_id": info.dealing_id.hex(), "model_hash": spec_hash(SPEC).hex()}
    script = ("import os, sys, json; from suf.net.transport import Transport; "
              f"t = Transport.connect('127.0.0.1', {port}, party=1, hello=json.loads(sys.argv[1]),"
              " timeout=30); os._exit(3)")
    p1 = subprocess.run([sys.executable, "-c", script, json.dumps(hello)], timeout=60)
    assert p1.returncode == 3
    start = time.monotonic()
    _, err = p0.communicate(timeout=60)
    assert p0.returncode != 0
    assert "PeerError" in err and "peer" in err
    assert time.monotonic() - start < 5.0 + 5.0
