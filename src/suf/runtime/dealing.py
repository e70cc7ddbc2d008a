"""The dealer: one job's keys, into any pair of key sinks (`deal_keys`) or as files (`deal`).

Files `deal` writes into a directory:
  keys.p0.suk         P0's one-time keys (first its input masks, if it owns inputs)
  keys.p1.suk         P1's one-time keys, with its input masks first and its output mask last
  deployment.p0.suk   a model's weight masks r_W, for the model owner (suf.runtime.deployment)
  client.bundle       a model's client bundle: its shapes, embedding tables and tokenizer, no
                      other weight (suf.models.bundle): what the client runs from
  dealing.json        the job, nonlinear and truncation modes, ring bits, ids and key sizes (no
                      secrets)
Key files are versioned, checksummed and one-time (suf.keys); both of one dealing share its id.
A job in SUF mode has "nonlinear": "suf" in its meta, which goes into the key files' index (under
its checksum); Sigma mode's meta, and so its key files, are as before the mode existed.  Likewise
"truncation": "gap"; a faithful job's meta has no "truncation".
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from suf.core.errors import DoesNotFit, InputError
from suf.keys import KeyFileWriter, new_dealing_id, sweep_partials
from suf.models.bundle import BUNDLE_FILE, write_bundle
from suf.models.transformer import Model
from suf.mpc.dealer import Dealer
from suf.prg import Stream
from suf.runtime.deployment import DEPLOYMENT_FILE, Deployment
from suf.runtime.jobs import (HANDSHAKE_SECRET, INPUT_MASKS, OUTPUT_MASK, SECRET_BYTES, ModelJob,
                              mask_words)
from suf.runtime.plan import plan

DEALING_FILE = "dealing.json"


def key_file(key_dir, party: int) -> Path:
    return Path(key_dir) / f"keys.p{party}.suk"


@dataclass
class DealReport:
    dealing_id: bytes
    key_hash: bytes
    key_bytes: list             # [P0, P1] key payload bytes of the gates (input/output masks apart)
    sigma_header_bytes: int     # SIGMA's per-call key headers, tallied apart (suf.mpc.dealer)
    by_op: dict                 # (layer, op) -> {"payload": [P0, P1], "headers": int}
    keygen_s: float


def deal_keys(job, sinks, *, dealing_id: bytes, stream: Stream | None = None,
              device="cpu") -> DealReport:
    """Write one job's keys into `sinks` (P0's, P1's: MemoryKeys or KeyFileWriters made with
    `job.key_hash()`): the dealing's handshake secret (both parties' first chunk, from the OS
    CSPRNG), a mask for every secret input (in its owner's next chunk, "input-masks"),
    the job's keys, and P1's output mask last ("output-mask").  `stream`: the dealer's randomness
    (default: a ChaCha12 stream keyed by the OS CSPRNG)."""
    dev = torch.device(device)
    stream = Stream.from_os(device=dev) if stream is None else stream
    dealer = Dealer(stream, sinks, dev)
    t0 = time.perf_counter()
    secret = os.urandom(SECRET_BYTES)  # the OS CSPRNG, whatever the stream
    for sink in sinks:
        sink.add(HANDSHAKE_SECRET, (SECRET_BYTES,), secret)
    masks = [dealer.mask(i.shape, i.bits) if i.owner >= 0 else None for i in job.inputs]
    for p in (0, 1):
        own = [m for m, i in zip(masks, job.inputs) if i.owner == p]
        if own:
            sinks[p].add(INPUT_MASKS, (sum(m.numel() for m in own),), mask_words(own))
    r_out, by_op = job.keygen(dealer, [m for m in masks if m is not None])
    sinks[1].add(OUTPUT_MASK, tuple(r_out.shape), mask_words([r_out]))
    return DealReport(dealing_id, job.key_hash(), list(dealer.key_bytes),
                      dealer.sigma_header_bytes, by_op, time.perf_counter() - t0)


def check_fits(model: Model, length: int, batch: int, key_dir: str, *,
               nonlinear: str = "sigma", truncation: str = "faithful") -> dict:
    """Refuse up front, with the numbers, a configuration whose keys do not fit."""
    p = plan(model.spec, length, batch, key_dir, nonlinear=nonlinear, truncation=truncation)
    if p["warnings"]:
        raise DoesNotFit("; ".join(p["warnings"]))
    return p


def deal(job, key_dir, device="cpu") -> dict:
    """The dealer alone: one job's key files into `key_dir` (and for a model its deployment file:
    the job's deployment, or a new one; and the client bundle).  Returns what dealing.json
    holds."""
    out = Path(key_dir)
    model = isinstance(job, ModelJob)
    files = [key_file(out, p) for p in (0, 1)] + (
        [out / DEPLOYMENT_FILE, out / BUNDLE_FILE] if model else [])
    taken = [str(f) for f in files if f.exists()]
    if taken:
        raise InputError(f"{', '.join(taken)} exists: deal into another directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create the key directory {out}: {e.strerror}") from None
    sweep_partials(out)  # what a dealer killed while writing here left behind
    if model:
        check_fits(job.model, job.length, job.batch, str(out), nonlinear=job.nonlinear,
                   truncation=job.truncation)
        if job.deployment is None:
            job = ModelJob(job.model, job.batch, job.length, Deployment.create(job.model),
                           job.name, job.nonlinear, job.truncation)
    dealing = new_dealing_id()
    with contextlib.ExitStack() as stack:  # each writer closes, or on an error aborts
        writers = [stack.enter_context(KeyFileWriter(key_file(out, p), p, job.bits, dealing,
                                                     job.key_hash(), job.meta)) for p in (0, 1)]
        report = deal_keys(job, writers, dealing_id=dealing, device=device)
    if model:  # after the keys (the long part): a dealer stopped before leaves none of them
        job.deployment.write(out / DEPLOYMENT_FILE)
        write_bundle(job.model, out / BUNDLE_FILE)
    info = {**job.meta, "nonlinear": job.nonlinear, "truncation": job.truncation,
            "bits": job.bits, "dealing_id": dealing.hex(),
            "key_hash": report.key_hash.hex(),
            "key_payload_bytes": [w.payload_bytes for w in writers],
            "key_file_bytes": [w.file_bytes for w in writers],
            "gate_key_bytes": report.key_bytes, "sigma_header_bytes": report.sigma_header_bytes,
            "keygen_s": report.keygen_s}
    (out / DEALING_FILE).write_text(json.dumps(info, indent=1))
    return info
