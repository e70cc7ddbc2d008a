"""The dealer: walks a computation on masks and writes both parties' keys.

All randomness comes from one stream (a ChaCha12 stream keyed from the OS CSPRNG in real use), so
a dealing is reproducible from its stream key on any device.  A gate writes each of its keys with
`deal(op, shape, key, values)`: `key` is the gate's declared layout of that key (suf.mpc.gate.Key)
and `values` the cleartext value of each part, which the dealer shares part by part.
"""
from __future__ import annotations

import torch

from suf.core.ring import low_mask
from suf.mpc.gate import Bits, Key, Raw, Words
from suf.mpc.keyio import KeyBuilder
from suf.prg import Stream


def sigma_dpf_header(bits: int) -> int:
    """SIGMA's header of one batch of DPF/comparison keys: 8 B for a truth table (bits <= 7),
    else 12 B for the batch and 12 B for its single sub-batch (sigma_spec §2.2)."""
    return 8 if bits <= 7 else 24


def key_op(op: str, key: Key) -> str:
    """The name a key is written and read under: the gate's op, then the key's own op if any."""
    return f"{op}.{key.op}" if key.op else op


class Dealer:
    def __init__(self, stream: Stream, sinks: tuple, device="cpu"):
        if len(sinks) != 2:
            raise ValueError("a dealer writes keys for exactly two parties")
        self.stream = stream
        self.sinks = sinks
        self.device = torch.device(device)
        self.key_bytes = [0, 0]
        self.sigma_header_bytes = 0  # SIGMA's per-call key headers (our payload leaves them out)

    def mask(self, shape, bits: int) -> torch.Tensor:
        """A fresh uniform mask in Z_{2^bits}."""
        return self.stream.ring(shape, bits).to(self.device)

    def share(self, value: torch.Tensor, bits: int):
        """Additive shares (v0, v1) of value mod 2^bits."""
        v0 = self.mask(value.shape, bits)
        return v0, (value - v0) & low_mask(bits)

    def deal(self, op: str, shape, key: Key, values: dict) -> None:
        """Write one key per party: the parts of `key` in order, each shared from `values[name]`
        (Words: additive shares mod 2^bits; Bits: XOR shares; Raw: the pair of FSS key payloads
        as made).  `shape` is recorded with the key (the gate's input shape)."""
        b0, b1 = KeyBuilder(self.device), KeyBuilder(self.device)
        for part in key.parts:
            v = values[part.name]
            if isinstance(part, Raw):
                p0, p1 = v
                if p0.numel() != part.nbytes or p1.numel() != part.nbytes:
                    raise ValueError(f"{op}: {part.name} has {p0.numel()} bytes, the layout "
                                     f"declares {part.nbytes}")
                b0.raw(p0)
                b1.raw(p1)
                continue
            v = v.reshape(-1)
            if v.numel() != part.count:
                raise ValueError(f"{op}: {part.name} has {v.numel()} values, the layout declares "
                                 f"{part.count}")
            if isinstance(part, Bits):
                s0, s1 = self.share(v & 1, 1)
                b0.bits(s0)
                b1.bits(s1)
            elif isinstance(part, Words):
                s0, s1 = self.share(v & low_mask(part.bits), part.bits)
                b0.words(s0, part.type_bytes)
                b1.words(s1, part.type_bytes)
            else:
                raise TypeError(f"{op}: unknown key part {part!r}")
        self.sigma_header_bytes += key.sigma_header
        name = key_op(op, key)
        for b, (sink, k) in enumerate(zip(self.sinks, (b0, b1))):
            sink.add(name, tuple(shape), k.payload())
            self.key_bytes[b] += k.size
