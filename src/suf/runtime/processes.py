"""A job as three roles on one machine (`suf run`, `suf gate`): the dealer writes the key files,
then P0 and P1 run as two processes (`python -m suf.cli serve`) over TCP on localhost.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

from suf.core.errors import InputError, SufError
from suf.runtime.certs import make_certs
from suf.runtime.dealing import deal, key_file

SLACK_S = 120.0  # beyond the transport timeout: the parties' start (imports, model loading)
ERROR = "suf: error: "


class PartyError(SufError, RuntimeError):
    """A party process stopped with an error of its own (its one line is the message)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def party_env() -> dict:
    """The environment of a party process when both parties share this machine: half the cores
    each (two full-size torch thread pools on the same cores slow both down several times)."""
    threads = str(max(1, (os.cpu_count() or 2) // 2))
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": threads}


def wait_parties(procs, logs, timeout: float) -> None:
    """Wait for the party processes (their stderr in the files `logs`).  When one fails, the
    other is stopped (it would wait for its peer until its timeout).  A party that failed with
    its one-line error (exit 2, `suf: error: ...`) raises PartyError with that line; one that
    crashed raises RuntimeError with its stderr (a traceback: a bug)."""
    deadline = time.monotonic() + timeout
    stopped, late = set(), False
    while any(p.poll() is None for p in procs):
        late = time.monotonic() > deadline
        if late or any(p.returncode for p in procs):
            for i, p in enumerate(procs):
                if p.poll() is None:
                    p.kill()
                    p.wait()
                    stopped.add(i)
            break
        time.sleep(0.05)
    errors, crashed = [], False
    for party, (p, log) in enumerate(zip(procs, logs)):
        if party in stopped:
            if late:
                errors.append(f"party {party} did not finish within {timeout:g} s")
            continue
        if p.returncode == 0:
            continue
        err = Path(log).read_text().strip()
        last = err.splitlines()[-1] if err else ""
        if p.returncode == 2 and last.startswith(ERROR):
            errors.append(f"party {party}: {last[len(ERROR):]}")
        else:
            crashed = True
            errors.append(f"party {party} exited with {p.returncode}:\n{err[-3000:]}")
    if errors:
        raise (RuntimeError("\n".join(errors)) if crashed else PartyError("; ".join(errors)))


def _feed(proc: subprocess.Popen, data: bytes) -> None:
    """Write `data` to the process's standard input and close it (on a thread of its own: a
    party that stops before reading it cannot block the caller)."""
    with contextlib.suppress(BrokenPipeError, OSError):
        proc.stdin.write(data)
        proc.stdin.close()


def run(job, source, *, device="cpu", timeout: float = 60.0, work_dir=None, tls=None,
        graphs: bool = True) -> dict:
    """Deal `job`, then P0 and P1 as two processes on localhost; `source`: what the inputs come
    from (`job.values`).  Returns `job.outcome(source, output)` with the dealing info
    ("dealing") and both parties' reports ("parties").  `timeout`: the parties' transport
    timeout.  work_dir: where the key files go (a fresh temporary directory inside it, removed
    afterwards; e.g. /dev/shm keeps them in RAM).  tls: None (plaintext on localhost), True (TLS
    with a CA and certificates made for this run in the temporary directory) or a directory of
    certificates as `suf certs` writes it (ca.pem, p0.pem, p0.key, p1.pem, p1.key).  graphs:
    False runs a GPU party's online phase kernel by kernel (`suf serve --no-cuda-graphs`)."""
    if work_dir is not None and not Path(work_dir).is_dir():
        raise InputError(f"the key directory {work_dir} does not exist")
    with tempfile.TemporaryDirectory(prefix="suf-run-", dir=work_dir) as tmp:
        d = Path(tmp)
        info = deal(job, d, device)
        certs = None
        if tls is True:
            certs = d / "certs"
            make_certs(certs)
        elif tls is not None:
            certs = Path(tls)
        port = free_port()
        logs = [d / f"party{p}.log" for p in (0, 1)]
        with contextlib.ExitStack() as stack:
            procs = []
            for p in (0, 1):
                cmd = [sys.executable, "-m", "suf.cli", "serve", "--party", str(p),
                       "--peer", f"127.0.0.1:{port}", "--keys", str(key_file(d, p)),
                       "--device", str(device), "--timeout", str(timeout),
                       "--result", str(d / f"result.p{p}.json"),
                       *job.serve_options(p, source, d), *([] if graphs else ["--no-cuda-graphs"])]
                if certs is not None:
                    cmd += ["--cert", str(certs / f"p{p}.pem"), "--key", str(certs / f"p{p}.key"),
                            "--peer-ca", str(certs / "ca.pem")]
                err = stack.enter_context(open(logs[p], "w"))
                given = job.serve_input(p, source)
                proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err,
                                        stdin=subprocess.DEVNULL if given is None else
                                        subprocess.PIPE, env=party_env())
                if given is not None:  # the client's input, through a pipe: not in `ps`
                    threading.Thread(target=_feed, args=(proc, given), daemon=True).start()
                procs.append(proc)
            try:
                wait_parties(procs, logs, timeout + SLACK_S)
            except BaseException:  # also SIGTERM / Ctrl-C of this process: no party outlives it
                for p in procs:
                    if p.poll() is None:
                        p.kill()
                        p.wait()
                raise
        results = [json.loads((d / f"result.p{p}.json").read_text()) for p in (0, 1)]
    output = torch.tensor(results[1]["output"])
    return {**job.outcome(source, output), "dealing": info, "parties": results}
