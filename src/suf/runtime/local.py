"""A model inference with the dealer and both parties in one process (`run_locally`): in-memory
one-time keys, P0 and P1 on two threads over a local socket pair (the byte path of TCP).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch

from suf.keys import MemoryKeys, new_dealing_id
from suf.models.loading import ModelSpec
from suf.models.transformer import Batch, Model
from suf.mpc.party import Party
from suf.net.transport import local_pair, run_both
from suf.prg import Stream
from suf.runtime import serving
from suf.runtime.dealing import DealReport, deal_keys
from suf.runtime.deployment import Deployment
from suf.runtime.jobs import ModelJob, read_handshake_secret
from suf.runtime.plan import plan


@dataclass
class SecureRun:
    """What `run_locally` returns: the client's output (ring values, (B, L, d)), both parties'
    transport Stats, the dealing report and each party's online time."""

    output: torch.Tensor
    stats: list
    deal: DealReport
    online_s: list = field(default_factory=list)
    key_store: str = "cpu"      # where the in-memory keys were kept
    online: list = field(default_factory=list)  # per party: how its online phase ran (graphs)

    def report(self) -> dict:
        """A JSON-able cost report: per-party totals by phase, and per (layer, op) the online
        bytes and exchanges of P0 and the key bytes of P0 (payload + SIGMA headers apart)."""
        rows = []
        for scope in self.stats[0].to_dict()["scopes"]:
            if scope["depth"] != 1 or scope["phase"] != "online":
                continue
            key = self.deal.by_op.get((scope["layer"], scope["op"]), {"payload": [0, 0],
                                                                       "headers": 0})
            tot = scope["total"]
            rows.append({"layer": scope["layer"], "op": scope["op"],
                         "bytes_sent": tot["bytes_sent"], "bytes_recv": tot["bytes_recv"],
                         "exchanges": tot["exchanges"], "key_bytes": key["payload"][0],
                         "sigma_header_bytes": key["headers"]})
        return {
            "parties": [{"online": st.total("online").as_dict(),
                         "setup": st.total("setup").as_dict()} for st in self.stats],
            "key_bytes": self.deal.key_bytes,
            "sigma_header_bytes": self.deal.sigma_header_bytes,
            "keygen_s": self.deal.keygen_s,
            "online_s": self.online_s,
            "key_store": self.key_store,
            "online": self.online,
            "ops": rows,
        }


def key_store_device(spec: ModelSpec, batch: int, length: int, device, store="auto", *,
                     nonlinear: str = "sigma", truncation: str = "faithful"):
    """Where `run_locally` keeps both parties' keys: `store` if given ("cpu", "cuda", ...), else
    ("auto") on the compute device when both key sets (suf.runtime.plan's prediction) fill at most
    60% of its free memory, otherwise in host memory."""
    dev = torch.device(device)
    if store != "auto":
        return torch.device(store)
    if dev.type != "cuda":
        return dev
    need = 2 * plan(spec, length, batch, nonlinear=nonlinear,
                    truncation=truncation)["key_bytes_p1"]
    free, _ = torch.cuda.mem_get_info(dev)
    return dev if need <= 0.6 * free else torch.device("cpu")


def run_locally(model: Model, batch: Batch, *, deployment: Deployment | None = None,
                device="cpu", seed: bytes | None = None, timeout: float = 600.0,
                key_store="auto", nonlinear: str = "sigma",
                truncation: str = "faithful", graphs: bool = True) -> SecureRun:
    """Deal one inference of `batch` into memory (kept as `key_store_device` says), then P0 and
    P1 on two threads.  deployment: the weight masks (default: a new deployment).  seed: 32 bytes
    for reproducible masks and keys (tests only); default: everything keyed by the OS CSPRNG.
    nonlinear, truncation: the nonlinear mode, "sigma" or "suf", and the truncation mode,
    "faithful" or "gap" (compare with `model.reference(batch, nonlinear=..., truncation=...)`).
    graphs: on a GPU, record each party's online computation as CUDA graphs in setup
    (suf.runtime.graphs; SecureRun.online says how each party ran)."""
    if not isinstance(batch, Batch):
        raise TypeError(f"batch must be a suf.models.Batch, got {type(batch).__name__}")
    spec, dev = model.spec, torch.device(device)
    streams = ((None, None) if seed is None else
               (Stream(seed, 0), Stream(seed, 1, device=dev)))
    if deployment is None:
        deployment = Deployment.create(model, streams[0])
    job = ModelJob(model, *batch.shape, deployment, nonlinear=nonlinear, truncation=truncation)
    values = [v.to(dev) for v in job.values(batch)]
    dealing, key_hash = new_dealing_id(), job.key_hash()
    store = key_store_device(spec, job.batch, job.length, dev, key_store, nonlinear=nonlinear,
                             truncation=truncation)
    stores = [MemoryKeys(p, spec.bits, dealing, key_hash, device=store) for p in (0, 1)]
    report = deal_keys(job, stores, dealing_id=dealing, stream=streams[1], device=dev)
    for s in stores:
        s.close()
    keys = [s.open(p, dealing, key_hash) for p, s in enumerate(stores)]
    secrets = [read_handshake_secret(k) for k in keys]
    assert secrets[0] == secrets[1]
    transports = local_pair(serving.hello(job, dealing, key_hash), timeout=timeout,
                            secret=secrets[0])
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)  # the keys and inputs are made before either party starts

    def work(p):
        # on a GPU each party gets its own stream: a party's wait for its data before an exchange
        # then waits for its own kernels only, not for the other party's
        stream = torch.cuda.Stream(dev) if dev.type == "cuda" else None
        with torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext():
            party = Party(p, transports[p], keys[p], dev)
            return serving.run_party(party, job, values if p == 1 else None, graphs)

    try:
        outputs = run_both(work, transports)
    finally:
        for t in transports:
            t.close()
    return SecureRun(outputs[1][0], [t.stats for t in transports], report,
                     [o[1] for o in outputs], str(store), [o[2] for o in outputs])
