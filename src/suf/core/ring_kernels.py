"""Triton kernels for SIGMA's bit packing (`suf.core.ring.pack` / `unpack`) of values whose width is
not a whole number of bytes: one launch each on CUDA instead of about fifteen torch operations.
Every exchange of ring values and every key part goes through them, so their launch count is on
the online critical path.  `pack`/`unpack` here return None where they do not apply (no Triton, a
CPU tensor, a byte-aligned width) and suf.core.ring falls back to its torch code, which the tests
compare them with (tests/unit/test_ring.py on CUDA, tests/unit/test_kernels_interpret.py in
Triton's interpreter).  With TRITON_INTERPRET=1 (set before Triton is imported) they also run on
CPU tensors through the interpreter, as suf.fss.kernels does (slow; for testing without a GPU).

Layout (spec §1.5): value i occupies bits [i·b, i·b + b) of a little-endian bit stream, read here
as 64-bit words: word w holds bits [64w, 64w + 64), gathered from the at most 64 // b + 2 values
that overlap it.
"""
from __future__ import annotations

import os

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # the CPU machines: suf.core.ring's torch code does the work
    triton = None

INT64 = torch.int64
_BLOCK = 256


def _usable(t: torch.Tensor, bits: int) -> bool:
    # widths 1 and 2 (32-bit words; 64 // b + 2 unrolled steps) gave wrong bytes from the pack
    # kernel on an H100 (Triton 3.6): suf.core.ring packs and unpacks those in torch
    interpret = os.environ.get("TRITON_INTERPRET") == "1"
    return triton is not None and (t.is_cuda or interpret) and bits % 8 != 0 and bits > 2


if triton is not None:
    @triton.jit
    def _pack_kernel(x_ptr, out_ptr, n, nwords, BITS: tl.constexpr, BLOCK: tl.constexpr):
        w = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        valid = w < nwords
        ones = tl.full((BLOCK,), 1, tl.uint64)
        mask = (ones << BITS) - ones
        first = (w * 64) // BITS  # the value holding bit 64w
        acc = tl.zeros((BLOCK,), tl.uint64)
        for j in tl.static_range(64 // BITS + 2):
            i = first + j
            use = valid & (i < n) & (i * BITS < w * 64 + 64)
            v = tl.load(x_ptr + i, mask=use, other=0).to(tl.uint64, bitcast=True) & mask
            shift = i * BITS - w * 64  # where value i starts relative to bit 0 of word w
            left = tl.maximum(shift, 0).to(tl.uint64)
            right = tl.maximum(-shift, 0).to(tl.uint64)
            acc = acc | tl.where(shift >= 0, v << left, v >> right)
        tl.store(out_ptr + w, acc.to(tl.int64, bitcast=True), mask=valid)

    @triton.jit
    def _unpack_kernel(w_ptr, out_ptr, n, BITS: tl.constexpr, BLOCK: tl.constexpr):
        i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        valid = i < n
        ones = tl.full((BLOCK,), 1, tl.uint64)
        mask = (ones << BITS) - ones
        pos = i * BITS
        word = pos >> 6
        off = (pos & 63).to(tl.uint64)
        lo = tl.load(w_ptr + word, mask=valid, other=0).to(tl.uint64, bitcast=True) >> off
        spill = valid & (off + BITS > 64)
        hi = tl.load(w_ptr + word + 1, mask=spill, other=0).to(tl.uint64, bitcast=True)
        hi = hi << tl.where(spill, 64 - off, 0)
        tl.store(out_ptr + i, ((lo | hi) & mask).to(tl.int64, bitcast=True), mask=valid)


def pack(flat: torch.Tensor, bits: int, size: int) -> torch.Tensor | None:
    """The `size`-byte packing of the low `bits` bits of flat (int64, 1-D, CUDA, or CPU under
    TRITON_INTERPRET=1), or None."""
    if not _usable(flat, bits):
        return None
    n = flat.numel()
    nwords = -(-size // 8)
    words = torch.empty(nwords, dtype=INT64, device=flat.device)
    if nwords:
        _pack_kernel[(-(-nwords // _BLOCK),)](flat.contiguous(), words, n, nwords, BITS=bits,
                                               BLOCK=_BLOCK)
    return words.view(torch.uint8)[:size]


def unpack(buf: torch.Tensor, bits: int, count: int) -> torch.Tensor | None:
    """`count` values of `bits` bits from the packed bytes buf (uint8, 1-D, CUDA, or CPU under
    TRITON_INTERPRET=1), or None."""
    if not _usable(buf, bits):
        return None
    size = buf.numel()
    if size % 8 or buf.storage_offset() % 8:  # the kernel reads aligned 64-bit words
        words = torch.zeros(-(-size // 8) * 8, dtype=torch.uint8, device=buf.device)
        words[:size] = buf
    else:
        words = buf
    out = torch.empty(count, dtype=INT64, device=buf.device)
    if count:
        _unpack_kernel[(-(-count // _BLOCK),)](words.view(INT64), out, count, BITS=bits,
                                               BLOCK=_BLOCK)
    return out
