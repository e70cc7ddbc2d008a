"""128-bit blocks of bits, and the secret-shared truth tables SIGMA uses for domains of n <= 7 bits.

A block is an int64 pair [lo, hi] (shape (..., 2)); its bit p is (lo >> p) & 1 for p < 64 and
(hi >> (p - 64)) & 1 otherwise.  The same layout holds a DPF leaf (bit x & 127 is the output at x)
and a truth table of 2^n <= 128 bits (bit j is the share of f(j)).

Truth tables (`genSSTable` in SIGMA, sigma_spec §2.2): for n <= 7 the "DPF" of α is an XOR-sharing
of its whole truth table: P0's table is uniformly random, P1's is P0's XOR the truth table, which is
one-hot at α for a point function ("point") and has the bits j < α set for a comparison ("lt").
Evaluation is a lookup, no PRG.  Bits at positions >= 2^n are zero.

This module is the layer below dpf.py and compare.py, which validate arguments before calling it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from suf.core.checks import check_party
from suf.core.config import debug_checks
from suf.prg import Stream

INT64 = torch.int64
MAX_BITS = 7  # tables serve domains of at most 7 bits (128 entries: one block)
TABLE_KINDS = ("point", "lt")


# -- block helpers ---------------------------------------------------------------------------
def low_mask(m: torch.Tensor) -> torch.Tensor:
    """Blocks with the low m bits set, for m in [0, 128] (int64 tensor) -> shape m.shape + (2,)."""
    one = torch.ones_like(m)
    lo = torch.where(m >= 64, -one, (one << m.clamp(max=63)) - 1)
    hi = torch.where(m <= 64, torch.zeros_like(m),
                     torch.where(m >= 128, -one, (one << (m - 64).clamp(0, 63)) - 1))
    return torch.stack([lo, hi], dim=-1)


def block_bit(block: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Bit p (int64 tensor, values in [0, 128)) of each block."""
    lo, hi = block[..., 0], block[..., 1]
    return torch.where(p < 64, lo >> p.clamp(max=63), hi >> (p - 64).clamp(min=0)) & 1


def block_bits(block: torch.Tensor) -> torch.Tensor:
    """All 128 bits of each block, least significant first: shape (..., 2) -> (..., 128)."""
    shifts = torch.arange(64, dtype=INT64, device=block.device)
    return ((block[..., :, None] >> shifts) & 1).flatten(-2)


def parity(block: torch.Tensor) -> torch.Tensor:
    """XOR of all 128 bits of each block."""
    v = block[..., 0] ^ block[..., 1]
    for s in (32, 16, 8, 4, 2, 1):  # fold; only bit 0 is kept, so sign fill does not matter
        v = v ^ (v >> s)
    return v & 1


# -- truth-table keys ------------------------------------------------------------------------
@dataclass
class TableKey:
    """A batch of N truth-table shares of one party (n <= 7).

    table: int64 (N, 2), one block per key; bit j (j < 2^n) is this party's share of f(j),
    f = 1{x == α} (kind "point") or 1{x < α} (kind "lt").
    """
    n: int
    party: int
    kind: str
    table: torch.Tensor

    def __post_init__(self):
        if not isinstance(self.n, int) or not 1 <= self.n <= MAX_BITS:
            raise ValueError(f"a truth-table key needs n in [1, {MAX_BITS}], got {self.n!r}")
        check_party(self.party)
        if self.kind not in TABLE_KINDS:
            raise ValueError(f"table kind must be one of {TABLE_KINDS}, got {self.kind!r}")
        t = self.table
        if not isinstance(t, torch.Tensor) or t.dtype != INT64:
            raise TypeError("TableKey.table must be an int64 tensor")
        if t.dim() != 2 or t.shape[1] != 2:
            raise ValueError(f"TableKey.table must have shape (N, 2), got {tuple(t.shape)}")

    @property
    def N(self) -> int:
        return self.table.shape[0]

    @property
    def device(self) -> torch.device:
        return self.table.device

    def __getitem__(self, idx) -> "TableKey":
        """The keys idx (a slice or an index tensor) of the batch."""
        return TableKey(self.n, self.party, self.kind, self.table[idx])

    def to(self, device) -> "TableKey":
        return TableKey(self.n, self.party, self.kind, self.table.to(device))


def keygen(alphas: torch.Tensor, n: int, stream: Stream, kind: str) -> tuple[TableKey, TableKey]:
    """Table shares of 1{x == α} ("point") or 1{x < α} ("lt"); alphas checked by the caller."""
    used = low_mask(torch.full_like(alphas, 1 << n))
    share0 = stream.blocks((alphas.shape[0],)) & used
    if kind == "point":
        truth = low_mask(alphas + 1) ^ low_mask(alphas)  # one-hot at α
    else:
        truth = low_mask(alphas)  # bits 0 .. α-1
    return TableKey(n, 0, kind, share0), TableKey(n, 1, kind, share0 ^ truth)


def lookup(key: TableKey, x: torch.Tensor) -> torch.Tensor:
    """This party's share of f(x), x of shape (N,) or (E, N) in [0, 2^n)."""
    return block_bit(key.table, x)


def eval_all(key: TableKey) -> torch.Tensor:
    """(N, 2^n) shares of f(j) for every j."""
    return block_bits(key.table)[:, : 1 << key.n]


# -- serialization: 2^max(0, n-3) bytes per key, the table's bits little-endian -------------
def payload_size(n: int, N: int) -> int:
    return N * (1 << max(0, n - 3))


def to_payload(key: TableKey) -> torch.Tensor:
    """The first 2^max(0, n-3) bytes of each key's little-endian table block, as a flat
    torch.uint8 tensor on the key's device."""
    nbytes = 1 << max(0, key.n - 3)
    raw = key.table.contiguous().view(torch.uint8).view(-1, 16)  # (N, 16) little-endian blocks
    return raw[:, :nbytes].reshape(-1)


def from_payload(buf: torch.Tensor, n: int, N: int, party: int, kind: str) -> TableKey:
    """Inverse of `to_payload` (buf: flat torch.uint8 of N·2^max(0, n-3) bytes, read only); the
    key lives on buf's device."""
    nbytes = 1 << max(0, n - 3)
    raw = torch.zeros(N, 16, dtype=torch.uint8, device=buf.device)
    raw[:, :nbytes] = buf.view(N, nbytes)
    table = raw.view(INT64).reshape(N, 2)
    # key files are checksummed: scanning the payload (a device sync) is for debug mode
    if debug_checks() and bool((table & ~low_mask(torch.full((N,), 1 << n, dtype=INT64, device=buf.device))).any()):
        raise ValueError(f"table key bytes have bits set beyond the 2^{n} table entries "
                         f"(corrupt, or written for another n)")
    return TableKey(n, party, kind, table)
