"""The TLS channel at the command line: `suf certs` writes certificates the parties use; a gate
and a model run over TLS between two processes; the policy (a non-loopback peer without
certificates is refused in one line, exit code 2; --insecure-plaintext warns; the three files go
together); a party with a certificate from another CA is refused."""
import subprocess
import sys

import pytest

from suf.cli import main
from suf.runtime import GateJob, deal, run
from suf.runtime.dealing import key_file
from suf.runtime.processes import free_port

pytest.importorskip("cryptography")

JOB = GateJob("trfloor", 50, 64)
SEED = bytes(range(32))


def _suf(*args, timeout=120):
    out = subprocess.run([sys.executable, "-m", "suf.cli", *args], capture_output=True,
                         text=True, timeout=timeout)
    return out.returncode, out.stdout, out.stderr


def _error_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls") / "certs"
    code, out, err = _suf("certs", "--out", str(d))
    assert code == 0, err
    assert "--peer-ca" in out
    return d


def test_gate_over_tls_between_two_processes(certs):
    res = run(JOB, SEED, timeout=30, tls=certs)
    assert res["equal"]
    for p in res["parties"]:
        assert p["channel"]["version"] == "TLSv1.3"
    online = [p["stats"]["phases"]["online"] for p in res["parties"]]
    assert online[0]["bytes_sent"] == res["predicted"]["bytes_sent"]  # application bytes
    assert online[0]["exchanges"] == res["predicted"]["exchanges"]
    fresh = run(JOB, SEED, timeout=30, tls=True)  # certificates made for the run
    assert fresh["equal"] and fresh["parties"][1]["channel"]["version"] == "TLSv1.3"
    plain = run(JOB, SEED, timeout=30)
    assert plain["parties"][0]["channel"] == "plaintext"


def test_certificate_of_another_ca_is_refused(certs, tmp_path):
    other = tmp_path / "other"
    assert main(["certs", "--out", str(other)]) == 0
    deal(JOB, tmp_path)
    port = free_port()
    cmds = []
    for p in (0, 1):
        d = other if p == 1 else certs  # P1 presents a certificate from another CA
        cmds.append([sys.executable, "-m", "suf.cli", "serve", "--party", str(p), "--peer",
                     f"127.0.0.1:{port}", "--keys", str(key_file(tmp_path, p)), "--seed",
                     SEED.hex(), "--timeout", "10", "--result", str(tmp_path / f"o{p}"),
                     "--cert", str(d / f"p{p}.pem"), "--key", str(d / f"p{p}.key"),
                     "--peer-ca", str(certs / "ca.pem")])
    procs = [subprocess.Popen(c, stderr=subprocess.PIPE, text=True) for c in cmds]
    errs = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [2, 2], errs
    assert "peer certificate not trusted" in _error_line(errs[0])
    assert "did not trust this party's certificate" in _error_line(errs[1])


def test_non_loopback_peer_without_certificates_is_refused():
    code, _, err = _suf("serve", "--party", "1", "--peer", "192.0.2.7:7000", "--keys", "k.suk")
    assert code == 2
    assert err.strip() == _error_line(err)  # one line, nothing else
    assert "not loopback" in err and "--insecure-plaintext" in err and "suf certs" in err
    code, _, err = _suf("serve", "--party", "0", "--peer", "0.0.0.0:7000", "--keys", "k.suk")
    assert code == 2 and "not loopback" in _error_line(err)


def test_serve_api_applies_the_policy(tmp_path):
    from suf.core.errors import InputError
    from suf.runtime import serve

    with pytest.raises(InputError, match="not loopback"):
        serve(1, JOB, tmp_path / "k.suk", "192.0.2.7:7000", None)


def test_policy_options(certs, capsys):
    # --insecure-plaintext warns, then the command goes on (here: to the missing key file)
    assert main(["serve", "--party", "1", "--peer", "192.0.2.7:7000", "--keys", "/no/k.suk",
                 "--insecure-plaintext"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("suf: warning: plaintext channel") and "--keys" in _error_line(err)
    assert main(["serve", "--party", "1", "--peer", "192.0.2.7:7000", "--keys", "k.suk",
                 "--cert", str(certs / "p1.pem")]) == 2
    assert "missing --key, --peer-ca" in _error_line(capsys.readouterr().err)
    tls = ["--cert", str(certs / "p1.pem"), "--key", str(certs / "p1.key"),
           "--peer-ca", str(certs / "ca.pem")]
    assert main(["serve", "--party", "1", "--peer", "192.0.2.7:7000", "--keys", "k.suk",
                 "--insecure-plaintext", *tls]) == 2
    assert "contradict" in _error_line(capsys.readouterr().err)
    assert main(["certs", "--out", str(certs)]) == 2
    assert "already there" in _error_line(capsys.readouterr().err)
    assert main(["run", "--model", "bert-tiny", "--ids", "[1]", "--certs", "/no/such"]) == 2
    assert "--certs" in _error_line(capsys.readouterr().err)


@pytest.mark.slow
def test_suf_run_bert_tiny_over_tls():
    """About a minute on a 2-core CPU."""
    code, out, err = _suf("run", "--model", "bert-tiny", "--ids", "[101, 2023, 2003, 102]",
                          "--tls", timeout=600)
    assert code == 0, err
    assert "secure == reference bit for bit: True" in out
    assert "TLSv1.3" in out and "mutual authentication" in out
