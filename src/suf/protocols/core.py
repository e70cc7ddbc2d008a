"""The glue every gate uses: the dealer's and a party's view of a gate's key, and opening values.

A gate module has three functions (DESIGN.md): ``keygen(dealer, r_in, ...) -> r_out`` walks masks
and writes both parties' keys, ``eval(party, x_hat, ...) -> y_hat`` walks masked values with one
party's key and the transport, and ``reference(x, ...) -> y`` is the cleartext fixed-point function.

Keys are byte strings (flat torch.uint8 tensors, on the GPU when the dealer runs there), one per
gate and party, built part by part with `KeyBuilder` and read back in the same order with
`KeyParser`.  Ring words are written as little-endian |T|-byte integers and
bit vectors as SIGMA's packed 32-bit words, so a gate's key payload has SIGMA's byte count.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Protocol

import torch

from suf.keys.format import view_bytes
from suf.prg import Stream
from suf.ring import low_mask, pack, packed_size, unpack

INT64 = torch.int64


class KeySink(Protocol):
    def add(self, op: str, shape: tuple, payload) -> None: ...


class KeySource(Protocol):
    def next_tensor(self, op: str): ...


# -- key (de)serialisation --------------------------------------------------------------------
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


# -- the dealer -------------------------------------------------------------------------------
class Dealer:
    """Walks a computation on masks and writes both parties' keys.

    All randomness comes from `stream` (a ChaCha12 stream keyed from the OS CSPRNG in real use), so
    a dealing is reproducible from its stream key on any device.
    """

    def __init__(self, stream: Stream, sinks: tuple, device="cpu"):
        if len(sinks) != 2:
            raise ValueError("a dealer writes keys for exactly two parties")
        self.stream = stream
        self.sinks = sinks
        self.device = torch.device(device)
        self.key_bytes = [0, 0]
        self.sigma_header_bytes = 0

    def mask(self, shape, bits: int) -> torch.Tensor:
        """A fresh uniform mask in Z_{2^bits}."""
        return self.stream.ring(shape, bits).to(self.device)

    def share(self, value: torch.Tensor, bits: int):
        """Additive shares (v0, v1) of value mod 2^bits."""
        v0 = self.mask(value.shape, bits)
        return v0, (value - v0) & low_mask(bits)

    def deal_words(self, op: str, shape, values, bits: int, type_bytes: int = 8) -> None:
        """One gate whose key is additive shares of `values` (mod 2^bits), written as words."""
        with self.gate(op, shape) as (k0, k1):
            for v in values:
                s0, s1 = self.share(v & low_mask(bits), bits)
                k0.words(s0.flatten(), type_bytes)
                k1.words(s1.flatten(), type_bytes)

    def share_bits(self, value: torch.Tensor):
        """XOR shares of a bit vector."""
        v0 = self.mask(value.shape, 1)
        return v0, value ^ v0

    @contextlib.contextmanager
    def gate(self, op: str, shape,
             sigma_header: int = 0) -> Iterator[tuple[KeyBuilder, KeyBuilder]]:
        """Collects the two keys of one gate and hands them to the sinks on exit.

        sigma_header: the bytes of per-call headers SIGMA writes into its key for this gate (ints
        such as bitwidths and counts).  Our payload leaves them out; they are tallied apart so that
        payload + headers can be compared with SIGMA's key sizes (sigma_cost_model.py).
        """
        k0, k1 = KeyBuilder(self.device), KeyBuilder(self.device)
        yield k0, k1
        self.sigma_header_bytes += sigma_header
        for b, (sink, k) in enumerate(zip(self.sinks, (k0, k1))):
            sink.add(op, tuple(shape), k.payload())
            self.key_bytes[b] += k.size


def sigma_dpf_header(bits: int) -> int:
    """SIGMA's header of one batch of DPF/comparison keys: 8 B for a truth table (bits <= 7),
    else 12 B for the batch and 12 B for its single sub-batch (sigma_spec §2.2)."""
    return 8 if bits <= 7 else 24


# -- a party ----------------------------------------------------------------------------------
class Party:
    """One party's online state: its id, the transport to the peer and its key source."""

    def __init__(self, party: int, transport, keys: KeySource, device="cpu"):
        if party not in (0, 1):
            raise ValueError(f"party must be 0 or 1, got {party!r}")
        self.id = party
        self.transport = transport
        self.keys = keys
        self.device = torch.device(device)

    def __enter__(self) -> "Party":
        return self

    def __exit__(self, *exc) -> None:
        self.transport.close()

    def key(self, op: str) -> KeyParser:
        payload = self.keys.next_tensor(op)
        return KeyParser(payload, self.device, what=op)

    def open(self, share: torch.Tensor, bits: int, type_bytes: int = 8) -> torch.Tensor:
        """Reconstruct (share0 + share1) mod 2^bits: one exchange of packed `bits`-bit values."""
        share = share & low_mask(bits)
        peer = self.transport.exchange_values(share, bits, type_bytes)
        return (share + peer) & low_mask(bits)

    def open_bits(self, share: torch.Tensor) -> torch.Tensor:
        """Reconstruct share0 XOR share1 of a bit vector: one exchange, 32 bits per word."""
        share = share & 1
        return share ^ self.transport.exchange_values(share, 1)

    def scope(self, op: str, layer=None):
        return self.transport.stats.scope(op=op, layer=layer)
