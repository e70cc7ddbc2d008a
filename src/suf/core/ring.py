"""The ring Z_{2^n} on torch.int64 tensors, fixed-point encoding, and SIGMA's bit packing.

Values of an n-bit ring are held in torch.int64 in their unsigned form [0, 2^n) (for n = 64 the
int64 bit pattern is the value).  torch's int64 arithmetic wraps mod 2^64, so + - * followed by
`wrap` is arithmetic mod 2^n.

Packing follows SIGMA's `compress` rule (sigma_spec.md §1.5): N values of b bits stored in a type
of |T| bytes are sent as
  * b in {1, 2}:        ceil(b·N/32)·4 bytes (32-bit words),
  * 2 < b < 8·|T|:      ceil(b·N/64)·8 bytes (tight bit-packing in 64-bit words),
  * b = 8·|T|:          N·|T| bytes.
In all three cases the bytes are the little-endian bit stream of the values (value i occupies
stream bits [b·i, b·(i+1))), zero-padded to the word size; only the padding differs.
"""
from __future__ import annotations

import math

import torch

from suf.core import ring_kernels

INT64 = torch.int64


def low_mask(bits: int) -> int:
    """The int64 bit pattern with the low `bits` bits set (-1 for 64)."""
    if not 0 <= bits <= 64:
        raise ValueError(f"bit count {bits} outside [0, 64]")
    return -1 if bits == 64 else (1 << bits) - 1


def _check_int64(x: torch.Tensor, what: str = "x") -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype != INT64:
        raise TypeError(f"{what} must have dtype torch.int64, got {x.dtype}")


class Ring:
    """Z_{2^bits} held in torch.int64."""

    def __init__(self, bits: int):
        if not isinstance(bits, int) or not 1 <= bits <= 64:
            raise ValueError(f"ring bitwidth must be an int in [1, 64], got {bits!r}")
        self.bits = bits
        self.mask = low_mask(bits)

    def __repr__(self) -> str:
        return f"Ring({self.bits})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Ring) and other.bits == self.bits

    def __hash__(self) -> int:
        return hash(("Ring", self.bits))

    def wrap(self, x: torch.Tensor) -> torch.Tensor:
        """Reduce mod 2^bits (into [0, 2^bits))."""
        _check_int64(x)
        return x if self.bits == 64 else x & self.mask

    def signed(self, x: torch.Tensor) -> torch.Tensor:
        """Two's-complement view: the representative in [-2^(bits-1), 2^(bits-1))."""
        _check_int64(x)
        if self.bits == 64:
            return x
        shift = 64 - self.bits
        return (x << shift) >> shift  # arithmetic shift sign-extends

    def check_type(self, x: torch.Tensor, what: str = "x") -> None:
        """TypeError unless x is an int64 tensor (no look at the values: no device sync)."""
        _check_int64(x, what)

    def check(self, x: torch.Tensor, what: str = "x") -> None:
        """Raise ValueError unless every element of x lies in [0, 2^bits) (a device sync on the
        GPU: references and debug mode only)."""
        _check_int64(x, what)
        if self.bits < 64 and x.numel() and bool(((x < 0) | (x > self.mask)).any()):
            bad = x[(x < 0) | (x > self.mask)].flatten()[0].item()
            raise ValueError(f"{what} has a value {bad} outside [0, 2^{self.bits})")

    # -- fixed point ------------------------------------------------------------------------
    def encode(self, v, frac_bits: int) -> torch.Tensor:
        """floor(v · 2^f) mod 2^n (SIGMA's encoding; floor, not round)."""
        t = torch.as_tensor(v, dtype=torch.float64)
        scaled = torch.floor(t * float(2**frac_bits))
        if not bool(torch.isfinite(scaled).all()):
            raise ValueError("cannot encode non-finite values")
        limit = 2.0 ** (self.bits - 1)
        if bool((scaled.abs() >= limit).any()) and self.bits < 64:
            raise ValueError(f"value out of range for {self.bits}-bit ring at scale 2^{frac_bits}")
        return self.wrap(scaled.to(INT64))

    def decode(self, x: torch.Tensor, frac_bits: int) -> torch.Tensor:
        """Signed value / 2^f as float64."""
        return self.signed(x).to(torch.float64) / float(2**frac_bits)


# -- packing ---------------------------------------------------------------------------------
def _pad_bytes(bits: int, type_bytes: int) -> int:
    if type_bytes not in (1, 2, 4, 8):
        raise ValueError(f"storage type size must be 1, 2, 4 or 8 bytes, got {type_bytes}")
    if not 1 <= bits <= 8 * type_bytes:
        raise ValueError(f"{bits}-bit values do not fit a {type_bytes}-byte type")
    if bits <= 2:
        return 4
    if bits < 8 * type_bytes:
        return 8
    return type_bytes


def packed_size(bits: int, count: int, type_bytes: int = 8) -> int:
    """Bytes of `count` packed `bits`-bit values held in a `type_bytes`-byte type (spec §1.5)."""
    pad = _pad_bytes(bits, type_bytes)
    return math.ceil(bits * count / (8 * pad)) * pad


# Groups of 8 values fill exactly `bits` bytes, and value r of a group starts at bit r·bits of
# its group: at byte (r·bits) >> 3, bit (r·bits) & 7.  As 7 + 57 <= 64, a value of up to 57 bits
# lies in the 8 bytes from its start byte, so the CPU unpack reads values as 8-byte windows, one
# strided view (stride `bits` bytes) per r; wider values take the 64-bit word code.  (Packing the
# same way measured slower than pack's word code below 2^17 values, so pack keeps that.)
GROUP_MAX_BITS = 57


def _unpack_groups(buf: torch.Tensor, bits: int, count: int) -> torch.Tensor:
    groups = -(-count // 8)
    padded = torch.zeros(max(buf.numel(), groups * bits + 8), dtype=torch.uint8,
                         device=buf.device)
    padded[:buf.numel()] = buf
    windows = torch.empty(8, groups, 8, dtype=torch.uint8, device=buf.device)
    for r in range(8):
        windows[r].copy_(padded.as_strided((groups, 8), (bits, 1), (r * bits) >> 3))
    shifts = torch.tensor([(r * bits) & 7 for r in range(8)], device=buf.device).view(8, 1)
    values = (windows.view(INT64).view(8, groups) >> shifts) & low_mask(bits)  # sign fill masked
    return values.T.reshape(-1)[:count]


def pack(x: torch.Tensor, bits: int, type_bytes: int = 8) -> torch.Tensor:
    """Pack the low `bits` bits of every element of x into a flat torch.uint8 tensor.

    The result lies on x's device and has `packed_size(bits, x.numel(), type_bytes)` bytes.
    """
    _check_int64(x)
    size = packed_size(bits, x.numel(), type_bytes)
    flat = x.reshape(-1)
    if bits % 8 == 0:  # byte-aligned: take the low bytes of each little-endian int64
        nb = bits // 8
        out = flat.contiguous().view(torch.uint8).view(-1, 8)[:, :nb].reshape(-1)
        return torch.nn.functional.pad(out, (0, size - out.numel()))
    fused = ring_kernels.pack(flat, bits, size)
    if fused is not None:
        return fused
    n = flat.numel()
    if bits == 1:  # bit vectors: 32 to a little-endian word, a few whole-tensor operations
        nw = size // 4
        v = torch.zeros(nw * 32, dtype=INT64, device=x.device)
        v[:n] = flat & 1
        w = (v.view(nw, 32) << torch.arange(32, dtype=INT64, device=x.device)).sum(1)
        return (w - ((w >> 31) << 32)).to(torch.int32).view(torch.uint8)
    nwords = math.ceil(bits * n / 64) + 1
    v = flat & low_mask(bits)
    pos = torch.arange(n, device=x.device, dtype=INT64) * bits
    word = pos >> 6
    off = pos & 63
    words = torch.zeros(nwords, dtype=INT64, device=x.device)
    # bits never overlap, so adding equals OR-ing; the spill goes to the next word
    words.index_add_(0, word, v << off)
    spill = torch.where(off + bits > 64, v >> (64 - off).clamp(max=63), torch.zeros_like(v))
    words.index_add_(0, word + 1, spill)
    return words.view(torch.uint8)[:size].clone()


def unpack(buf: torch.Tensor, bits: int, count: int, type_bytes: int = 8) -> torch.Tensor:
    """Inverse of `pack`: `count` values in [0, 2^bits) as torch.int64 on buf's device."""
    if not isinstance(buf, torch.Tensor) or buf.dtype != torch.uint8 or buf.dim() != 1:
        raise TypeError("packed buffer must be a 1-D torch.uint8 tensor")
    size = packed_size(bits, count, type_bytes)
    if buf.numel() != size:
        raise ValueError(f"packed buffer has {buf.numel()} bytes, expected {size} "
                         f"for {count} values of {bits} bits")
    if bits % 8 == 0:
        nb = bits // 8
        b8 = torch.zeros(count, 8, dtype=torch.uint8, device=buf.device)
        b8[:, :nb] = buf[: count * nb].view(count, nb)
        return b8.view(INT64).reshape(count)
    fused = ring_kernels.unpack(buf, bits, count)
    if fused is not None:
        return fused
    if bits == 1:  # bit i of the stream is bit i % 8 of byte i // 8
        shifts = torch.arange(8, dtype=INT64, device=buf.device)
        return ((buf.to(INT64)[:, None] >> shifts) & 1).reshape(-1)[:count]
    if bits <= GROUP_MAX_BITS:
        return _unpack_groups(buf, bits, count)
    nwords = math.ceil(bits * count / 64) + 1
    padded = torch.zeros(nwords * 8, dtype=torch.uint8, device=buf.device)
    padded[:size] = buf
    words = padded.view(INT64)
    pos = torch.arange(count, device=buf.device, dtype=INT64) * bits
    word = pos >> 6
    off = pos & 63
    # arithmetic shifts sign-fill: keep only the 64 - off bits that came from this word
    lo_mask = torch.where(off == 0, -1, (1 << (64 - off).clamp(max=63)) - 1)
    lo = (words[word] >> off) & lo_mask
    hi = torch.where(off + bits > 64, words[word + 1] << (64 - off).clamp(max=63), 0)
    return (lo | hi) & low_mask(bits)
