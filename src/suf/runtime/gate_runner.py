"""Dealer, then the two parties as separate OS processes over TCP, for one gate (`suf gate`).

Flow (the same roles as model inference):
1. The dealer draws every mask from a ChaCha12 stream keyed by the OS CSPRNG and writes one key file
   per party: first the masks of the inputs that party owns, then the gate's keys, and for the
   client (P1) the output mask last.
2. P0 (model owner) listens, P1 (client) connects; the handshake checks the dealing id and the hash
   of the gate and shapes the keys were made for.
3. Setup phase (counted apart): each input's owner sends its masked value x^ = x + r to the other.
4. Online phase: both evaluate the gate; P1 unmasks the output with its output mask.
Each party writes its output and its measured cost report as JSON; `run_gate` gathers them.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from suf.runtime.gate_specs import make_spec
from suf.keys import KeyFileReader, KeyFileWriter, new_dealing_id
from suf.net.transport import Transport
from suf.prg import Stream
from suf.mpc.core import Dealer, Party
from suf.core.ring import low_mask

INPUT_SEED_BYTES = 32


def spec_hash(spec_args: dict) -> bytes:
    return hashlib.blake2b(json.dumps(spec_args, sort_keys=True).encode(), digest_size=32).digest()


def deal(spec_args: dict, workdir: Path, device="cpu") -> dict:
    """Write both parties' key files for one gate; returns dealing metadata."""
    spec = make_spec(**spec_args)
    dealing = new_dealing_id()
    paths = [workdir / f"keys.p{p}.suk" for p in (0, 1)]
    with contextlib.ExitStack() as files:  # each writer closes, or on an error aborts
        writers = [files.enter_context(KeyFileWriter(
            paths[p], p, spec.ring_bits, dealing, spec_hash(spec_args), {"gate": spec_args}))
            for p in (0, 1)]
        dealer = Dealer(Stream.from_os(device=device), writers, device)
        t0 = time.perf_counter()
        masks = [dealer.mask(i.shape, i.bits) for i in spec.inputs]
        for p in (0, 1):
            own = [m.flatten() for m, i in zip(masks, spec.inputs) if i.owner == p]
            payload = torch.cat(own) if own else torch.empty(0, dtype=torch.int64)
            writers[p].add("input-masks", (payload.numel(),), _words(payload))
        r_out = spec.keygen(dealer, masks)
        writers[1].add("output-mask", tuple(r_out.shape), _words(r_out.flatten()))
        keygen_s = time.perf_counter() - t0
    return {"dealing_id": dealing.hex(), "keygen_s": keygen_s,
            "key_payload_bytes": list(dealer.key_bytes),  # the gate's keys, masks apart
            "key_file_bytes": [w.file_bytes for w in writers],
            "sigma_header_bytes": dealer.sigma_header_bytes, "paths": [str(p) for p in paths]}


def _words(x: torch.Tensor) -> bytes:
    return x.to(torch.int64).cpu().numpy().astype("<i8").tobytes()


def _read_words(buf, count: int, device) -> torch.Tensor:
    if len(buf) != 8 * count:
        raise ValueError(f"expected {count} mask words, the key file holds {len(buf)} bytes")
    if count == 0:
        return torch.empty(0, dtype=torch.int64, device=device)
    return torch.frombuffer(bytearray(buf), dtype=torch.int64).to(device)


def serve(party: int, host: str, port: int, keys: str, spec_args: dict, input_seed: bytes,
          out: str, device="cpu", timeout: float = 60.0) -> None:
    """One party's process: read its key file, exchange masked inputs, evaluate, report."""
    spec = make_spec(**spec_args)
    dev = torch.device(device)
    reader = KeyFileReader(keys, party)
    hello = {"dealing_id": reader.info.dealing_id.hex(), "model_hash": spec_hash(spec_args).hex()}
    if party == 0:
        transport = Transport.listen(host, port, party=0, hello=hello, timeout=timeout)
    else:
        transport = Transport.connect(host, port, party=1, hello=hello, timeout=timeout)
    with Party(party, transport, reader, dev) as p:
        values = spec.draw(Stream(input_seed))
        own = [i for i in spec.inputs if i.owner == party]
        masks = _read_words(reader.next("input-masks"), sum(_numel(i.shape) for i in own), dev)
        hats = []
        with transport.stats.scope(op="inputs", phase="setup"):
            pos = 0
            for i, v in zip(spec.inputs, values):
                n = _numel(i.shape)
                if i.owner == party:
                    hat = (v.to(dev) + masks[pos:pos + n].view(i.shape)) & low_mask(i.bits)
                    pos += n
                    transport.send(_bytes_of(hat))
                else:
                    raw = transport.recv(8 * n)
                    hat = raw.view(torch.int64).view(i.shape).to(dev)
                hats.append(hat)
        transport.sync()
        t0 = time.perf_counter()
        with transport.stats.scope(op=spec.name):
            y_hat = spec.eval(p, hats)
        online_s = time.perf_counter() - t0
        result = {"party": party, "online_s": online_s, "stats": transport.stats.to_dict()}
        if party == 1:
            r_out = _read_words(reader.next("output-mask"), y_hat.numel(), dev).view(y_hat.shape)
            result["output"] = ((y_hat - r_out) & low_mask(spec.out_bits)).cpu().tolist()
    Path(out).write_text(json.dumps(result))


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _bytes_of(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous().cpu().view(torch.uint8).reshape(-1)


def party_env() -> dict:
    """The environment of a party process when both parties share this machine: half the cores
    each (two full-size torch thread pools on the same cores slow both down several times)."""
    threads = str(max(1, (os.cpu_count() or 2) // 2))
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": threads}


def wait_parties(procs, timeout: float) -> None:
    """Wait for the two party processes; RuntimeError with their stderr if one failed."""
    errors = []
    for party, proc in enumerate(procs):
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        if proc.returncode:
            errors.append(f"party {party} exited with {proc.returncode}:\n{err.strip()[-3000:]}")
    if errors:
        raise RuntimeError("\n".join(errors))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_gate(gate: str, bits: int = 50, count: int = 1024, shift: int = 12, device="cpu",
             timeout: float = 60.0) -> dict:
    """Deal, run P0 and P1 as two processes on localhost, compare with the reference."""
    spec_args = {"gate": gate, "bits": bits, "count": count, "shift": shift}
    spec = make_spec(**spec_args)
    input_seed = os.urandom(INPUT_SEED_BYTES)
    with tempfile.TemporaryDirectory(prefix="suf-gate-") as tmp:
        work = Path(tmp)
        dealing = deal(spec_args, work, device)
        port = free_port()
        procs = []
        for party in (0, 1):
            cmd = [sys.executable, "-m", "suf.cli", "serve-gate", "--party", str(party),
                   "--peer", f"127.0.0.1:{port}", "--keys", dealing["paths"][party],
                   "--spec", json.dumps(spec_args), "--input-seed", input_seed.hex(),
                   "--out", str(work / f"result.p{party}.json"), "--device", str(device),
                   "--timeout", str(timeout)]
            procs.append(subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=party_env()))
        wait_parties(procs, timeout + 30)
        results = [json.loads((work / f"result.p{p}.json").read_text()) for p in (0, 1)]
    output = torch.tensor(results[1]["output"])
    reference = spec.reference(spec.draw(Stream(input_seed)))
    return {"gate": spec_args, "equal": bool(torch.equal(output.cpu(), reference.cpu())),
            "output": output, "reference": reference, "dealing": dealing,
            "parties": results}
