"""Running a model between a dealer and two parties: deploy, deal, serve, and all three in one
process (`run_secure`).

Roles (docs/security.md): P0 is the model owner, P1 the client, the dealer is trusted.
  1. Deployment (once per model): the dealer draws a mask r_W for every parameter; the model owner
     learns them and publishes W^ = W + r_W to the client (setup phase, counted apart).
  2. Dealing (once per inference, before any text exists): keys for (model, batch B, length L),
     and for the client its input masks (embedding sum, padding bias) and output mask.
  3. Online: the client inputs x^ = x + r_x (op "input"), both parties walk the graph with
     PartyBackend, the client unmasks the output.  Only the client learns it.
"""
from __future__ import annotations

import contextlib
import hashlib
import time
from dataclasses import dataclass, field

import torch
from tqdm import tqdm

from suf.keys import MemoryKeys, new_dealing_id
from suf.net.transport import local_pair, run_both
from suf.graph.backends import DealerBackend, PartyBackend
from suf.models.loading import ModelSpec, param_shapes
from suf.models.transformer import Batch, Model, forward
from suf.prg import Stream
from suf.mpc.core import Dealer, Party
from suf.core.ring import low_mask, pack, packed_size, unpack

INPUT_MASKS, OUTPUT_MASK = "input-masks", "output-mask"


def _input_shapes(spec: ModelSpec, batch: int, length: int) -> list[tuple]:
    """The client's masked inputs: the embedding sum and, for BERT, the padding bias."""
    shapes = [(batch, length, spec.d)]
    return shapes + [(batch, length)] if spec.family == "bert" else shapes


def _check_size(spec: ModelSpec, batch: int, length: int) -> None:
    for name, v in (("batch", batch), ("length", length)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be an int >= 1, got {v!r}")
    if length > spec.max_positions:
        raise ValueError(f"length {length} exceeds the model's {spec.max_positions} positions")


def _progress(spec: ModelSpec, what: str):
    """A per-layer progress bar on stderr (hidden when stderr is not a terminal)."""
    return tqdm(total=spec.layers, desc=what, unit="layer", leave=False, disable=None)


def _words(x: torch.Tensor) -> bytes:
    return x.to(torch.int64).contiguous().cpu().numpy().astype("<i8").tobytes()


def _read_words(keys, op: str, shape, device) -> torch.Tensor:
    """The client's mask chunk `op` (little-endian int64 words) as a tensor of `shape`."""
    count = int(torch.Size(shape).numel())
    info = keys.peek()
    if info is not None and info.op == op and info.nbytes != 8 * count:
        raise ValueError(f"expected {count} mask words, the keys hold {info.nbytes} bytes")
    return keys.next_tensor(op, torch.int64).to(device).view(shape)


# ================================================================================================
# deployment
# ================================================================================================
class Deployment:
    """A model deployed once: the weight masks r_W (known to the dealer and the model owner),
    reused by every inference's keys.  `masked()` is what the owner publishes: W^ = W + r_W."""

    def __init__(self, model: Model, masks: dict, deployment_id: bytes):
        if set(masks) != set(model.params) or any(
                tuple(masks[k].shape) != tuple(v.shape) for k, v in model.params.items()):
            raise ValueError("weight masks must match the model's parameters, name and shape")
        self.model = model
        self.masks = masks
        self.id = deployment_id

    @classmethod
    def create(cls, model: Model, stream: Stream | None = None) -> "Deployment":
        """Draw the weight masks from `stream` (default: a ChaCha12 stream keyed by the OS
        CSPRNG, the secure choice; pass a seeded one only for reproducible tests)."""
        stream = Stream.from_os() if stream is None else stream
        masks = {k: stream.ring(tuple(v.shape), model.spec.bits) for k, v in model.params.items()}
        return cls(model, masks, bytes(stream.words64(2).numpy().astype("<i8").tobytes()))

    def masked(self) -> dict:
        m = low_mask(self.model.spec.bits)
        return {k: (v + self.masks[k]) & m for k, v in self.model.params.items()}

    def key_hash(self, batch: int, length: int) -> bytes:
        """32 bytes binding keys to this model, deployment and (B, L) (the key store's model hash)."""
        h = hashlib.blake2b(self.model.digest() + self.id, digest_size=32)
        h.update(f"B={batch},L={length}".encode())
        return h.digest()


# ================================================================================================
# dealing
# ================================================================================================
@dataclass
class DealReport:
    dealing_id: bytes
    key_hash: bytes
    key_bytes: list             # [P0, P1] key payload bytes of the gates (input/output masks apart)
    sigma_header_bytes: int     # SIGMA's per-call key headers, tallied apart (core.Dealer)
    by_op: dict                 # (layer, op) -> {"payload": [P0, P1], "headers": int}
    keygen_s: float


def deal(deployment: Deployment, batch: int, length: int, sinks, *, dealing_id: bytes,
         stream: Stream | None = None, device="cpu") -> DealReport:
    """Write one inference's keys for (B = batch, L = length) into `sinks` (P0's, P1's: MemoryKeys
    or KeyFileWriters made with `deployment.key_hash(batch, length)`).  P1's keys start with its
    input masks (op "input-masks") and end with its output mask (op "output-mask").  `stream`:
    the dealer's randomness (default: keyed by the OS CSPRNG)."""
    spec = deployment.model.spec
    _check_size(spec, batch, length)
    dev = torch.device(device)
    stream = Stream.from_os(device=dev) if stream is None else stream
    dealer = Dealer(stream, sinks, dev)
    t0 = time.perf_counter()
    r_in = [dealer.mask(s, spec.bits) for s in _input_shapes(spec, batch, length)]
    sinks[1].add(INPUT_MASKS, (sum(r.numel() for r in r_in),),
                 b"".join(_words(r.flatten()) for r in r_in))
    be = DealerBackend(spec.bits, {k: v.to(dev) for k, v in deployment.masks.items()}, dealer)
    with _progress(spec, "dealer: keys") as be.progress:
        r_out = forward(be, spec, r_in[0], r_in[1] if len(r_in) > 1 else None)
    sinks[1].add(OUTPUT_MASK, tuple(r_out.shape), _words(r_out))
    keygen_s = time.perf_counter() - t0
    return DealReport(dealing_id, deployment.key_hash(batch, length), list(dealer.key_bytes),
                      dealer.sigma_header_bytes, be.key_report, keygen_s)


# ================================================================================================
# a party
# ================================================================================================
def publish_weights(party: Party, spec: ModelSpec, masked: dict | None = None) -> dict:
    """Setup: P0 sends the masked parameters W^ (n-bit packed, in graph order), P1 receives them.
    Returns W^ on the party's device."""
    shapes = param_shapes(spec)
    total = sum(int(torch.Size(s).numel()) for s in shapes.values())
    t = party.transport
    with t.stats.scope(op="weights", phase="setup"):
        if party.id == 0:
            if masked is None or set(masked) != set(shapes):
                raise ValueError("the model owner (P0) publishes the masked weights: pass them")
            flat = torch.cat([masked[k].to(party.device).flatten() for k in shapes])
            t.send(pack(flat, spec.bits))
        else:
            if masked is not None:
                raise ValueError("the client (P1) receives the masked weights; it has none")
            raw = t.recv(packed_size(spec.bits, total), device=party.device)
            flat = unpack(raw, spec.bits, total)
    out, pos = {}, 0
    for k, s in shapes.items():
        n = int(torch.Size(s).numel())
        out[k] = flat[pos:pos + n].view(s)
        pos += n
    return out


def ready(party: Party) -> None:
    """A one-byte sync before the online phase (setup, op "ready"): both parties start their
    online clocks together, after both have the published weights."""
    with party.transport.stats.scope(op="ready", phase="setup"):
        party.transport.sync()


def serve(party: Party, spec: ModelSpec, masked_weights: dict, batch: int, length: int,
          inputs: tuple | None = None) -> torch.Tensor:
    """One party's online inference with its keys (party.keys) and W^ (`publish_weights`).

    The client (P1) passes `inputs` = (embedding sum (B, L, d), padding bias (B, L) or None) as
    ring values (`Model.embed`); it reads its input masks, sends x^ = x + r_x to P0 (op "input"),
    and at the end unmasks with its output mask: P1 returns the output y (B, L, d), P0 its masked
    value y^ (it never sees y)."""
    _check_size(spec, batch, length)
    shapes = _input_shapes(spec, batch, length)
    dev, n, t = party.device, spec.bits, party.transport
    total = sum(int(torch.Size(s).numel()) for s in shapes)
    with t.stats.scope(op="input"):
        if party.id == 1:
            if inputs is None or len([v for v in inputs if v is not None]) != len(shapes):
                raise ValueError(f"the client inputs {len(shapes)} tensors of shapes {shapes}")
            values = [v for v in inputs if v is not None]
            for v, s in zip(values, shapes):
                if tuple(v.shape) != s:
                    raise ValueError(f"client input of shape {tuple(v.shape)}, keys are for {s}")
            r = _read_words(party.keys, INPUT_MASKS, (total,), dev)
            flat = (torch.cat([v.to(dev).flatten() for v in values]) + r) & low_mask(n)
            t.send(pack(flat, n))
        else:
            if inputs is not None:
                raise ValueError("only the client (P1) has inputs")
            flat = unpack(t.recv(packed_size(n, total), device=dev), n, total)
    hats, pos = [], 0
    for s in shapes:
        k = int(torch.Size(s).numel())
        hats.append(flat[pos:pos + k].view(s))
        pos += k
    be = PartyBackend(n, masked_weights, party)
    with _progress(spec, f"P{party.id}: online") as be.progress:
        y_hat = forward(be, spec, hats[0], hats[1] if len(hats) > 1 else None)
    if party.id == 0:
        return y_hat
    r_out = _read_words(party.keys, OUTPUT_MASK, tuple(y_hat.shape), dev)
    return (y_hat - r_out) & low_mask(n)


# ================================================================================================
# all in one process
# ================================================================================================
@dataclass
class SecureRun:
    """What `run_secure` returns: the client's output (ring values, (B, L, d)), both parties'
    transport Stats, the dealing report and each party's online time."""

    output: torch.Tensor
    stats: list
    deal: DealReport
    online_s: list = field(default_factory=list)
    key_store: str = "cpu"      # where the in-memory keys were kept

    def report(self) -> dict:
        """A JSON-able cost report: per-party totals by phase, and per (layer, op) the online
        bytes and exchanges of P0 and the key bytes of P0 (payload + SIGMA headers apart)."""
        s0 = self.stats[0]
        rows = []
        for scope in s0.to_dict()["scopes"]:
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
            "ops": rows,
        }


def key_store_device(spec: ModelSpec, batch: int, length: int, device, store="auto"):
    """Where `run_secure` keeps both parties' keys: `store` if given ("cpu", "cuda", ...), else
    ("auto") on the compute device when both key sets (suf.runtime.plan's prediction) fill at most
    60% of its free memory, otherwise in host memory."""
    dev = torch.device(device)
    if store != "auto":
        return torch.device(store)
    if dev.type != "cuda":
        return dev
    from suf.runtime.plan import plan  # plan imports this module

    need = 2 * plan(spec, length, batch)["key_bytes_p1"]
    free, _ = torch.cuda.mem_get_info(dev)
    return dev if need <= 0.6 * free else torch.device("cpu")


def run_secure(model: Model, batch: Batch, *, deployment: Deployment | None = None,
               device="cpu", seed: bytes | None = None, timeout: float = 600.0,
               key_store="auto") -> SecureRun:
    """Dealer, then P0 and P1 on two threads over a local socket pair (the byte path of TCP),
    with in-memory one-time keys (kept as `key_store_device` says).  seed: 32 bytes for
    reproducible masks and keys (tests only); default: everything keyed by the OS CSPRNG."""
    if not isinstance(batch, Batch):
        raise TypeError(f"batch must be a suf.models.Batch, got {type(batch).__name__}")
    spec, dev = model.spec, torch.device(device)
    B, L = batch.shape
    streams = ((None, None) if seed is None else
               (Stream(seed, 0), Stream(seed, 1, device=dev)))
    if deployment is None:
        deployment = Deployment.create(model, streams[0])
    elif deployment.model is not model:
        raise ValueError("the deployment is of another model")
    dealing = new_dealing_id()
    key_hash = deployment.key_hash(B, L)
    store = key_store_device(spec, B, L, dev, key_store)
    stores = [MemoryKeys(p, spec.bits, dealing, key_hash, device=store) for p in (0, 1)]
    info = deal(deployment, B, L, stores, dealing_id=dealing, stream=streams[1], device=dev)
    for s in stores:
        s.close()
    inputs = tuple(None if v is None else v.to(dev) for v in model.embed(batch))
    transports = local_pair({"dealing_id": dealing.hex(), "model_hash": key_hash.hex()},
                            timeout=timeout)
    times = [0.0, 0.0]

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)  # the keys and inputs are made before either party starts

    def work(p):
        # on a GPU each party gets its own stream: a party's wait for its data before an exchange
        # then waits for its own kernels only, not for the other party's
        stream = torch.cuda.Stream(dev) if dev.type == "cuda" else None
        with torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext():
            party = Party(p, transports[p], stores[p].open(p, dealing, key_hash), dev)
            w = publish_weights(party, spec, deployment.masked() if p == 0 else None)
            ready(party)
            t0 = time.perf_counter()
            out = serve(party, spec, w, B, L, inputs if p == 1 else None)
            if stream is not None:
                stream.synchronize()
            times[p] = time.perf_counter() - t0
        if stores[p].remaining:
            raise RuntimeError(f"party {p} left {stores[p].remaining} key chunks unused")
        return out

    try:
        outputs = run_both(work, transports)
    finally:
        for t in transports:
            t.close()
    return SecureRun(outputs[1], [t.stats for t in transports], info, times, str(store))
