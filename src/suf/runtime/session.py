"""Secure inference with the three roles as separate steps and processes: `suf deal`, `suf serve`,
and `suf run` (the three on one machine, the parties as two OS processes over TCP).

Files the dealer writes into a directory:
  deployment.p0.suk   the weight masks r_W for the model owner (one per deployment; the owner
                      publishes W^ = W + r_W at connection, a setup step counted apart)
  keys.p0.suk         P0's one-time keys for (model, B, L)
  keys.p1.suk         P1's one-time keys, with its input masks first and its output mask last
  dealing.json        model, B, L, bits and ids (no secrets)
Key files are versioned, checksummed and one-time (suf.keys); the deployment file holds masks that
every inference of that deployment reuses by design, so it is opened without the one-time stamp.
"""
from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from suf.core.errors import DoesNotFit
from suf.keys import KeyFileReader, KeyFileWriter, new_dealing_id
from suf.net.transport import Transport
from suf.models import load_model
from suf.models.transformer import Model, mean_pool
from suf.runtime.plan import plan
from suf.runtime.inference import (Deployment, deal as deal_keys, publish_weights, ready,
                             serve as serve_party)
from suf.mpc.core import Party
from suf.runtime.gate_runner import free_port, party_env, wait_parties

DEPLOYMENT_OP = "weight-masks"




def check_fits(model: Model, length: int, batch: int, key_dir: str) -> dict:
    """Refuse up front, with the numbers, a configuration whose keys do not fit."""
    p = plan(model.spec, length, batch, key_dir)
    if p["warnings"]:
        raise DoesNotFit("; ".join(p["warnings"]))
    return p


def _write_deployment(dep: Deployment, path: Path) -> None:
    spec = dep.model.spec
    names = sorted(dep.masks)
    with KeyFileWriter(path, 0, spec.bits, dep.id.ljust(16, b"\0")[:16], dep.model.digest(),
                       {"kind": "deployment", "names": names}) as w:
        for k in names:
            w.add(DEPLOYMENT_OP, tuple(dep.masks[k].shape), dep.masks[k].contiguous().cpu()
                  .view(torch.uint8).reshape(-1))


def _read_deployment(model: Model, path: Path) -> Deployment:
    # weight masks are reused by every inference of a deployment: not one-time keys
    r = KeyFileReader(path, 0, model_hash=model.digest(), ring_bits=model.spec.bits,
                      insecure_allow_reuse=True)
    with r:
        masks = {k: r.next_tensor(DEPLOYMENT_OP, torch.int64).clone().view(model.params[k].shape)
                 for k in r.meta["names"]}
    return Deployment(model, masks, r.info.dealing_id)


def deal(model: Model, length: int, batch: int, out_dir, device="cpu") -> dict:
    """The dealer: a new deployment (weight masks) and one inference's keys, as files."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    check_fits(model, length, batch, str(out))
    dep = Deployment.create(model)
    _write_deployment(dep, out / "deployment.p0.suk")
    dealing = new_dealing_id()
    key_hash = dep.key_hash(batch, length)
    with contextlib.ExitStack() as files:  # each writer closes, or on an error aborts
        writers = [files.enter_context(KeyFileWriter(
            out / f"keys.p{p}.suk", p, model.spec.bits, dealing, key_hash,
            {"model": model.spec.name, "batch": batch, "length": length})) for p in (0, 1)]
        report = deal_keys(dep, batch, length, writers, dealing_id=dealing, device=device)
    info = {"model": model.spec.name, "bits": model.spec.bits, "batch": batch, "length": length,
            "dealing_id": dealing.hex(), "key_hash": key_hash.hex(),
            "key_payload_bytes": [w.payload_bytes for w in writers],
            "key_file_bytes": [w.file_bytes for w in writers],
            "gate_key_bytes": report.key_bytes, "sigma_header_bytes": report.sigma_header_bytes,
            "keygen_s": report.keygen_s}
    (out / "dealing.json").write_text(json.dumps(info, indent=1))
    return info


def _load_keys(reader: KeyFileReader, dev: torch.device):
    """A GPU party copies its whole key file into GPU memory (checksums verified) before the
    online phase, when it fits in 80% of the free memory; otherwise, and on the CPU, chunks are
    read from the memory-mapped file as the gates need them.  Returns (keys, seconds spent)."""
    if dev.type != "cuda" or reader.payload_bytes > 0.8 * torch.cuda.mem_get_info(dev)[0]:
        return reader, 0.0
    t0 = time.perf_counter()
    keys = reader.load(dev)
    torch.cuda.synchronize(dev)
    return keys, time.perf_counter() - t0


def serve(party: int, model: Model, keys: str, peer: str, *, deployment: str | None = None,
          texts: list[str] | None = None, ids: list[list[int]] | None = None,
          device="cpu", timeout: float = 60.0) -> dict:
    """One party of an inference.  P0 (listens at `peer`) loads its deployment file and publishes
    W^; P1 (connects to `peer`) tokenizes its texts (or takes ids), inputs them masked and gets
    the output.  Returns P1's output and either party's measured cost report."""
    host, port = peer.rsplit(":", 1)
    reader = KeyFileReader(keys, party, ring_bits=model.spec.bits)
    meta = reader.meta
    B, L = meta["batch"], meta["length"]
    hello = {"dealing_id": reader.info.dealing_id.hex(), "model_hash": reader.info.model_hash.hex()}
    masked = None
    if party == 0:
        if deployment is None:
            raise ValueError("the model owner (P0) needs its deployment file (--deployment)")
        dep = _read_deployment(model, Path(deployment))
        if dep.key_hash(B, L) != reader.info.model_hash:
            raise ValueError("these keys were dealt for another deployment, model or shape")
        masked = dep.masked()
        t = Transport.listen(host, int(port), party=0, hello=hello, timeout=timeout)
        inputs, batch = None, None
    else:
        batch = model.tokenize(texts, L) if texts is not None else model.batch(ids, L)
        if batch.shape != (B, L):
            raise ValueError(f"the keys are for batch {B} x length {L}, the input is "
                             f"{batch.shape[0]} x {batch.shape[1]}")
        inputs = tuple(None if v is None else v.to(device) for v in model.embed(batch))
        t = Transport.connect(host, int(port), party=1, hello=hello, timeout=timeout)
    dev = torch.device(device)
    keys, load_s = _load_keys(reader, dev)
    with Party(party, t, keys, dev) as p:
        w = publish_weights(p, model.spec, None if masked is None else
                            {k: v.to(dev) for k, v in masked.items()})
        ready(p)
        t0 = time.perf_counter()
        y = serve_party(p, model.spec, w, B, L, inputs)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        online_s = time.perf_counter() - t0
        result = {"party": party, "online_s": online_s, "key_load_s": load_s,
                  "keys_in": str(dev) if keys is not reader else "file",
                  "stats": t.stats.to_dict()}
        if party == 1:
            result["output"] = y.cpu().tolist()
            result["ids"] = batch.ids.tolist()
            result["real"] = batch.real.tolist()
    return result


def run(model_name: str, *, texts=None, ids=None, length=None, batch=1, device="cpu",
        bits=None, timeout=300.0, work_dir=None) -> dict:
    """Dealer, then P0 and P1 as two processes on localhost; the output against the reference
    and the float model, and both parties' cost reports.  work_dir: where the key files go (a
    fresh temporary directory inside it, removed afterwards; e.g. /dev/shm to keep them in RAM)."""
    model = load_model(model_name, bits=bits)
    if texts is not None:
        texts = list(texts) * batch if len(texts) == 1 and batch > 1 else list(texts)
        inp = model.tokenize(texts, length)
    else:
        ids = [list(s) for s in ids]
        ids = ids * batch if len(ids) == 1 and batch > 1 else ids
        inp = model.batch(ids, length)
    B, L = inp.shape
    with tempfile.TemporaryDirectory(prefix="suf-run-", dir=work_dir) as tmp:
        info = deal(model, L, B, tmp, device)
        port = free_port()
        procs = []
        for party in (0, 1):
            cmd = [sys.executable, "-m", "suf.cli", "serve", "--party", str(party), "--peer",
                   f"127.0.0.1:{port}", "--keys", str(Path(tmp) / f"keys.p{party}.suk"),
                   "--model", model_name, "--device", str(device), "--timeout", str(timeout),
                   "--result", str(Path(tmp) / f"result.p{party}.json")]
            if bits is not None:
                cmd += ["--bits", str(bits)]
            if party == 0:
                cmd += ["--deployment", str(Path(tmp) / "deployment.p0.suk")]
            else:
                unpadded = [row[:int(r)] for row, r in zip(inp.ids.tolist(), inp.real.sum(1))]
                cmd += ["--ids", json.dumps(unpadded), "--length", str(L)]
            procs.append(subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                          text=True, env=party_env()))
        wait_parties(procs, timeout + 120)
        results = [json.loads((Path(tmp) / f"result.p{p}.json").read_text()) for p in (0, 1)]
    y = torch.tensor(results[1]["output"])
    ref = model.reference(inp)
    out = {"model": model.spec.name, "bits": model.spec.bits, "batch": B, "length": L,
           "batch_ids": inp.ids.tolist(), "real": inp.real.tolist(),
           "output": model.decode(y), "reference": model.decode(ref),
           "equal": bool(torch.equal(y, ref.cpu())), "float": model.float(inp),
           "dealing": info, "parties": results}
    if model.spec.family == "bert":
        out["embedding"] = mean_pool(out["output"], inp.real)
        out["float_embedding"] = mean_pool(out["float"], inp.real)
    return out
