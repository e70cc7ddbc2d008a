"""Key (de)serialisation: one party's key for one gate as a flat torch.uint8 tensor, built part by
part with `KeyBuilder` and read back in the same order with `KeyParser`.

Keys are byte strings (on the GPU when the dealer runs there), one per gate and party.  Ring words
are written as little-endian |T|-byte integers and bit vectors as SIGMA's packed 32-bit words, so a
gate's key payload has SIGMA's byte count.  Gates do not call these directly: `Dealer.deal` and
`Party.read` write and read a key from its declared layout (suf.mpc.gate.Key).
"""
from __future__ import annotations

from typing import Protocol

import torch

from suf.core.ring import pack, packed_size, unpack
from suf.keys.format import view_bytes


class KeySink(Protocol):
    def add(self, op: str, shape: tuple, payload) -> None: ...


class KeySource(Protocol):
    def next_tensor(self, op: str): ...


class KeyBuilder:
    """Appends the parts of one party's key for one gate, as torch.uint8 tensors on the dealer's
    device (a GPU dealing never copies a key to the host unless its sink does)."""

    def __init__(self, device="cpu"):
        self.device = torch.device(device)
        self.parts: list[torch.Tensor] = []
        self.size = 0

    def _add(self, t: torch.Tensor) -> "KeyBuilder":
        self.parts.append(t.reshape(-1).to(self.device))
        self.size += t.numel()
        return self

    def words(self, x: torch.Tensor, type_bytes: int = 8) -> "KeyBuilder":
        """Ring elements as little-endian `type_bytes`-byte words (SIGMA writes full words)."""
        return self._add(pack(x, 8 * type_bytes, type_bytes))

    def bits(self, x: torch.Tensor) -> "KeyBuilder":
        """A vector of bits packed 32 to a word (SIGMA's `writeShares` for bw = 1)."""
        return self._add(pack(x & 1, 1))

    def raw(self, b: torch.Tensor) -> "KeyBuilder":
        """Bytes as they are: a flat torch.uint8 tensor (e.g. suf.fss `to_payload`)."""
        if not isinstance(b, torch.Tensor) or b.dtype != torch.uint8:
            raise TypeError(f"raw key bytes must be a torch.uint8 tensor, got {type(b).__name__}")
        return self._add(b)

    def payload(self) -> torch.Tensor:
        """The key: the parts concatenated, one flat torch.uint8 tensor on the dealer's device."""
        if not self.parts:
            return torch.empty(0, dtype=torch.uint8, device=self.device)
        return torch.cat(self.parts) if len(self.parts) > 1 else self.parts[0]


class KeyParser:
    """Reads back the parts written by `KeyBuilder`, in the same order, onto a device.

    payload: a flat torch.uint8 tensor (anywhere: it is moved to `device` in one copy) or bytes.
    The parts handed out view it and are never written to (a key file's chunk is a read-only
    mapping)."""

    def __init__(self, payload, device="cpu", what: str = "key"):
        self.device = torch.device(device)
        self.what = what
        if isinstance(payload, torch.Tensor):
            if payload.dtype != torch.uint8:
                raise TypeError(f"{what}: a key payload tensor must be torch.uint8")
            buf = payload.reshape(-1)
        else:
            buf = view_bytes(memoryview(payload).cast("B"), torch.uint8)
        self.buf = buf.to(self.device)
        self.pos = 0

    def _take(self, n: int) -> torch.Tensor:
        if self.pos + n > self.buf.numel():
            raise ValueError(f"{self.what}: key too short ({self.buf.numel()} bytes, "
                             f"needs more than {self.pos + n})")
        b = self.buf[self.pos: self.pos + n]
        self.pos += n
        return b

    def words(self, count: int, type_bytes: int = 8) -> torch.Tensor:
        return unpack(self._take(count * type_bytes), 8 * type_bytes, count, type_bytes)

    def bits(self, count: int) -> torch.Tensor:
        return unpack(self._take(packed_size(1, count)), 1, count)

    def raw(self, n: int) -> torch.Tensor:
        """The next n bytes as a flat torch.uint8 view (read only)."""
        return self._take(n)

    def done(self) -> None:
        if self.pos != self.buf.numel():
            raise ValueError(f"{self.what}: {self.buf.numel() - self.pos} unread key bytes "
                             "(key made for another gate or shape)")
