"""Gates between two real OS processes over TCP on localhost (dealer -> key files -> P0, P1), the
CLI, and the faults a deployment meets: dead peer, mismatched dealing, reused or foreign keys."""
import json
import socket
import subprocess
import sys
import time

import pytest

import sigma_cost_model as cm
from suf.core.errors import PeerError
from suf.keys import KeyFileError, inspect_key_file
from suf.runtime import GateJob, deal, run, serve
from suf.runtime import serving
from suf.runtime.dealing import key_file
from suf.runtime.processes import free_port

SHIFT = 12  # the truncation shift of the gates' examples


@pytest.mark.parametrize("gate,bits,count", [("trfloor", 50, 300), ("tr_with_slack", 37, 300),
                                             ("tr", 50, 200), ("relu", 50, 300),
                                             ("lut", 50, 200), ("matmul", 50, 64)])
def test_gate_over_tcp_equals_reference_and_cost_model(gate, bits, count):
    res = run(GateJob(gate, bits, count), bytes(range(32)), timeout=30)
    assert res["equal"]
    online = [p["stats"]["phases"]["online"] for p in res["parties"]]
    assert online[0]["bytes_sent"] == online[1]["bytes_recv"]
    assert online[0]["exchanges"] == online[1]["exchanges"]
    assert online[0]["bytes_sent"] == res["predicted"]["bytes_sent"]
    assert online[0]["exchanges"] == res["predicted"]["exchanges"]
    assert res["dealing"]["gate_key_bytes"] == [res["predicted"]["key_bytes"]] * 2
    c = cm.Ctr()
    N = res["output"].numel()
    if gate == "trfloor":
        cm.c_trfloor(c, bits, SHIFT, N)
    elif gate == "tr_with_slack":
        cm.c_trslack(c, bits, N)
    elif gate == "relu":
        cm.c_relu(c, bits, N)
    elif gate == "lut":
        cm.c_lut(c, bits, N)
    elif gate == "matmul":
        cm.c_matmul(c, bits, SHIFT, N)
    else:
        c.x(1, N); c.x(bits - SHIFT, N)
    assert online[0]["bytes_sent"] == c.b and online[0]["exchanges"] == c.r


def test_cli_gate_json():
    out = subprocess.run([sys.executable, "-m", "suf.cli", "gate", "relu", "--count", "100",
                          "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["equal_to_reference"] is True
    assert report["online"]["exchanges"] == 2
    assert report["keys"]["payload_bytes_p0"] + 12 + 24 == cm.k_relu(50, 100)


JOB = GateJob("trfloor", 50, 64)


def _party(party, port, keys, out, timeout=5.0):
    cmd = [sys.executable, "-m", "suf.cli", "serve", "--party", str(party), "--peer",
           f"127.0.0.1:{port}", "--keys", str(keys), "--seed", "00" * 32, "--result", str(out),
           "--timeout", str(timeout)]
    return subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)


def _serve(party, keys):
    return serve(party, JOB, keys, f"127.0.0.1:{free_port()}", JOB.values(bytes(32)))


def test_mismatched_dealings_are_refused(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(); b.mkdir()
    deal(JOB, a), deal(JOB, b)
    port = free_port()
    procs = [_party(0, port, key_file(a, 0), tmp_path / "o0"),
             _party(1, port, key_file(b, 1), tmp_path / "o1")]
    errs = [p.communicate(timeout=60)[1] for p in procs]
    assert all(p.returncode != 0 for p in procs)
    assert any("dealing" in e for e in errs), errs


def test_reused_and_foreign_key_files_are_refused(tmp_path):
    deal(JOB, tmp_path)
    with pytest.raises(KeyFileError, match="party 1's keys"):
        _serve(0, key_file(tmp_path, 1))
    port = free_port()
    procs = [_party(p, port, key_file(tmp_path, p), tmp_path / f"o{p}") for p in (0, 1)]
    assert all(p.wait(timeout=60) == 0 for p in procs)
    with pytest.raises(KeyFileError, match="one-time"):
        _serve(0, key_file(tmp_path, 0))


def test_truncated_key_file_is_refused(tmp_path):
    deal(JOB, tmp_path)
    path = key_file(tmp_path, 0)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(KeyFileError):
        _serve(0, path)


def _fake_p1(key_dir, port, secret: str, body: str) -> subprocess.CompletedProcess:
    """A process that plays P1 with the public hello of the dealing in key_dir: `body` (Python)
    calls connect(), which shakes hands with the secret that the expression `secret` gives."""
    info = inspect_key_file(key_file(key_dir, 1))
    hello = json.dumps(serving.hello(JOB, info.dealing_id, JOB.key_hash()))
    script = ("import os, sys, json\nfrom suf.net.transport import Transport\n"
              "from suf.core.errors import HandshakeError\n"
              f"connect = lambda: Transport.connect('127.0.0.1', {port}, party=1, "
              f"hello=json.loads({hello!r}), timeout=30, secret={secret})\n" + body)
    return subprocess.run([sys.executable, "-c", script], timeout=60, capture_output=True,
                          text=True)


def test_peer_dying_mid_run_gives_a_clear_error_within_the_timeout(tmp_path):
    """P1 connects with the right dealing, then dies before the online phase ends."""
    deal(JOB, tmp_path)
    port = free_port()
    p0 = _party(0, port, key_file(tmp_path, 0), tmp_path / "o0", timeout=5.0)
    secret = ("__import__('suf.runtime.jobs').runtime.jobs.read_handshake_secret("
              f"__import__('suf.keys').keys.KeyFileReader({str(key_file(tmp_path, 1))!r}, 1))")
    p1 = _fake_p1(tmp_path, port, secret, "connect()\nos._exit(3)")
    assert p1.returncode == 3
    start = time.monotonic()
    _, err = p0.communicate(timeout=60)
    assert p0.returncode != 0
    assert err.startswith("suf: error: ") and "peer" in err and "Traceback" not in err
    assert time.monotonic() - start < 5.0 + 5.0
    # P1 died before the first online exchange: P0 says its keys stay usable, and they are
    assert err.rstrip().endswith("(the keys were not used: they stay usable)")
    assert inspect_key_file(key_file(tmp_path, 0)).used_at_ns == 0


def test_a_failure_before_the_online_phase_leaves_the_keys_usable(tmp_path):
    """No peer at the address (or any failure before the first online exchange): the error says
    the keys stay usable, the files are unstamped, and the same files then run the job, after
    which they are spent."""
    deal(JOB, tmp_path)
    with pytest.raises(PeerError, match=r"\(the keys were not used: they stay usable\)$"):
        serve(1, JOB, key_file(tmp_path, 1), f"127.0.0.1:{free_port()}", JOB.values(bytes(32)),
              timeout=1.0)
    assert inspect_key_file(key_file(tmp_path, 1)).used_at_ns == 0
    port = free_port()
    procs = [_party(p, port, key_file(tmp_path, p), tmp_path / f"o{p}", timeout=60.0)
             for p in (0, 1)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    for p in (0, 1):
        assert inspect_key_file(key_file(tmp_path, p)).used_at_ns > 0


def test_a_stranger_with_the_public_hello_gets_nothing(tmp_path):
    """Someone who knows the public hello (dealing id, hashes, modes) but not the dealing's secret
    in P1's key file is refused by P0 in the handshake, before any setup data; P0 listens on, and
    the real P1 then runs the job."""
    deal(JOB, tmp_path)
    port = free_port()
    p0 = _party(0, port, key_file(tmp_path, 0), tmp_path / "o0", timeout=60.0)
    stranger = _fake_p1(tmp_path, port, "bytes(32)",
                        "try:\n    connect()\nexcept HandshakeError as e:\n"
                        "    print(e); sys.exit(4)")
    assert stranger.returncode == 4 and "could not prove" in stranger.stdout
    with socket.create_connection(("127.0.0.1", port)):  # and a probe that says nothing
        pass
    assert p0.poll() is None  # still listening
    p1 = _party(1, port, key_file(tmp_path, 1), tmp_path / "o1", timeout=60.0)
    for p in (p0, p1):
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert json.loads((tmp_path / "o1").read_text())["party"] == 1
