"""A model deployed once: the weight masks r_W, their file, and W^ = W + r_W published at setup.

The dealer draws a mask for every parameter when a model is deployed; the model owner (P0) keeps
them in its deployment file and, at each connection, publishes W^ = W + r_W to the client (setup
phase, op "weights").  Every inference's keys are dealt on top of the same r_W: they are bound to
the deployment by `Deployment.key_hash(B, L)`.  The deployment file holds masks that every
inference reuses by design: it is a key file of the kind "deployment" (suf.keys), which the
reader opens any number of times, without the one-time stamp of key files.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from suf.core.ring import low_mask, pack, packed_size, unpack
from suf.keys import DEPLOYMENT_KIND, KeyFileReader, KeyFileWriter
from suf.models.loading import ModelSpec, param_shapes
from suf.models.transformer import Model
from suf.mpc.party import Party
from suf.prg import Stream

DEPLOYMENT_FILE = "deployment.p0.suk"
DEPLOYMENT_OP = "weight-masks"


class Deployment:
    """The weight masks r_W of a model (known to the dealer and the model owner), reused by every
    inference's keys.  `masked()` is what the owner publishes: W^ = W + r_W."""

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
        """32 bytes binding keys to this model, deployment and (B, L) (the key files' model
        hash)."""
        h = hashlib.blake2b(self.model.digest() + self.id, digest_size=32)
        h.update(f"B={batch},L={length}".encode())
        return h.digest()

    def write(self, path: Path) -> None:
        """The model owner's deployment file (a key file of party 0 holding r_W)."""
        spec = self.model.spec
        names = sorted(self.masks)
        with KeyFileWriter(path, 0, spec.bits, self.id.ljust(16, b"\0")[:16], self.model.digest(),
                           {"names": names}, kind=DEPLOYMENT_KIND) as w:
            for k in names:
                w.add(DEPLOYMENT_OP, tuple(self.masks[k].shape),
                      self.masks[k].contiguous().cpu().view(torch.uint8).reshape(-1))

    @classmethod
    def read(cls, model: Model, path) -> "Deployment":
        """The deployment in `path`, checked to be of `model` (its digest and ring)."""
        r = KeyFileReader(path, 0, model_hash=model.digest(), ring_bits=model.spec.bits,
                          kind=DEPLOYMENT_KIND)  # r_W is reused by design: not one-time
        with r:
            masks = {k: r.next_tensor(DEPLOYMENT_OP, torch.int64).clone()
                     .view(model.params[k].shape) for k in r.meta["names"]}
        return cls(model, masks, r.info.dealing_id)


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
