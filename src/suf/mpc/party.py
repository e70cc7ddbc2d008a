"""One party's online state: its id, the transport to the peer and its key source.

A gate reads each of its keys with `read(op, key)` (the declared layout, suf.mpc.gate.Key) and
makes every exchange with `open(share, spec)`, where `spec` is one of the gate's declared
`Open`s: the width and storage type of the exchange come from the layout, and with `trace` set to
a list every exchange is recorded there (the tests compare it with the layout's `opens`).
"""
from __future__ import annotations

import torch

from suf.core.checks import check_party
from suf.core.ring import low_mask
from suf.mpc.dealer import key_op
from suf.mpc.gate import Bits, Key, Open, Raw, Words
from suf.mpc.keyio import KeyParser, KeySource


class Party:
    def __init__(self, party: int, transport, keys: KeySource, device="cpu"):
        self.id = check_party(party)
        self.transport = transport
        self.keys = keys
        self.device = torch.device(device)
        self.trace: list | None = None  # a list to record every Open made, in order

    def __enter__(self) -> "Party":
        return self

    def __exit__(self, *exc) -> None:
        self.transport.close()

    def read(self, op: str, key: Key) -> dict:
        """This party's key `op` as its declared parts: Words as int64 values, Bits as 0/1
        int64, Raw as a flat read-only uint8 view."""
        name = key_op(op, key)
        parser = KeyParser(self.keys.next_tensor(name), self.device, what=name)
        out = {}
        for part in key.parts:
            if isinstance(part, Words):
                out[part.name] = parser.words(part.count, part.type_bytes)
            elif isinstance(part, Bits):
                out[part.name] = parser.bits(part.count)
            elif isinstance(part, Raw):
                out[part.name] = parser.raw(part.nbytes)
            else:
                raise TypeError(f"{name}: unknown key part {part!r}")
        parser.done()
        return out

    def open(self, share: torch.Tensor, spec: Open) -> torch.Tensor:
        """Reconstruct (share0 + share1) mod 2^bits (XOR for 1-bit values): one exchange of
        `spec.count` packed `spec.bits`-bit values."""
        if share.numel() != spec.count:
            raise ValueError(f"exchange {spec.name!r}: {share.numel()} values, the layout "
                             f"declares {spec.count}")
        if self.trace is not None:
            self.trace.append(spec)
        share = share & low_mask(spec.bits)
        peer = self.transport.exchange_values(share, spec.bits, spec.type_bytes)
        return (share + peer) & low_mask(spec.bits)

    def scope(self, op: str, layer=None):
        return self.transport.stats.scope(op=op, layer=layer)
