"""The dealer's files under faults (issue 18 item 4): key files and bundles are mode 0600; a
dealer stopped by SIGTERM while writing leaves nothing (no key file, no partial file, no
deployment that blocks the next dealing); one killed by SIGKILL leaves partial files that the
next dealing into that directory sweeps; partial files of a live writer are left alone."""
import os
import signal
import stat
import subprocess
import sys
import time

import pytest

from suf.keys import sweep_partials
from suf.models import load_model
from suf.models.bundle import write_bundle
from suf.runtime import Deployment, GateJob, deal

DEAL = [sys.executable, "-m", "suf.cli", "deal", "--model", "bert-tiny", "--seq", "16"]


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_dealt_files_are_private(tmp_path):
    deal(GateJob("relu", 50, 64), tmp_path)
    model = load_model("bert-tiny")
    Deployment.create(model).write(tmp_path / "deployment.p0.suk")
    write_bundle(model, tmp_path / "client.bundle")
    for name in ("keys.p0.suk", "keys.p1.suk", "deployment.p0.suk", "client.bundle"):
        assert _mode(tmp_path / name) == 0o600


def _stop_while_writing(tmp_path, sig) -> subprocess.Popen:
    """Start `suf deal` into tmp_path, wait until it writes a partial file, send `sig`."""
    proc = subprocess.Popen(DEAL + ["--out", str(tmp_path)], stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".*.partial")):
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "the dealer wrote no partial file"
        time.sleep(0.01)
    partial = list(tmp_path.glob(".*.partial"))
    assert all(_mode(f) == 0o600 for f in partial)
    proc.send_signal(sig)
    proc.wait(60)
    return proc


def test_sigterm_while_writing_leaves_nothing(tmp_path):
    proc = _stop_while_writing(tmp_path, signal.SIGTERM)
    assert proc.returncode == 128 + signal.SIGTERM
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    deal(GateJob("relu", 50, 64), tmp_path)  # and the directory takes a new dealing


def test_sigkill_leftovers_are_swept_by_the_next_dealing(tmp_path):
    proc = _stop_while_writing(tmp_path, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    left = list(tmp_path.glob(".*.partial"))
    assert left and not (tmp_path / "deployment.p0.suk").exists()
    deal(GateJob("relu", 50, 64), tmp_path)
    assert not list(tmp_path.glob(".*.partial"))


def test_partial_files_of_a_live_writer_stay(tmp_path):
    mine = tmp_path / f".keys.p0.suk.{os.getpid()}.abcd1234.partial"
    mine.write_bytes(b"x")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    gone = tmp_path / f".keys.p1.suk.{dead.pid}.abcd1234.partial"
    gone.write_bytes(b"x")
    untagged = tmp_path / ".client.bundle.partial"
    untagged.write_bytes(b"x")
    assert sorted(sweep_partials(tmp_path)) == sorted([gone, untagged])
    assert mine.exists()


def _processes(*words) -> list[int]:
    """Processes whose command line holds every one of `words` (read from /proc)."""
    found = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                cmdline = open(f"/proc/{d}/cmdline", "rb").read().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if all(w in cmdline for w in words):
                found.append(int(d))
    return found


@pytest.mark.parametrize("sig", [signal.SIGTERM])
def test_sigterm_of_suf_run_stops_both_parties(tmp_path, sig):
    """`suf run` stopped by SIGTERM takes its two party processes with it (whose command lines
    do not hold the client's input)."""
    proc = subprocess.Popen([sys.executable, "-m", "suf.cli", "run", "--model", "bert-tiny",
                             "--ids", "[101, 2023, 102]", "--key-dir", str(tmp_path)],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    parties = []
    while not parties:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "no party started"
        parties = _processes("suf.cli serve", str(tmp_path))
        time.sleep(0.05)
    for pid in parties:  # the client's token ids reach it through a pipe, not its command line
        cmdline = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
        assert "2023" not in cmdline and "--input -" in cmdline or "--party 0" in cmdline
    proc.send_signal(sig)
    proc.wait(60)
    assert proc.returncode == 128 + sig
    time.sleep(0.5)
    for pid in parties:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not any(tmp_path.iterdir())  # the run's temporary key directory is gone
