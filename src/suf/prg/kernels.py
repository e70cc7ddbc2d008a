"""Triton ChaCha on uint32 lanes: the rounds and the block function shared by the DPF tree walks
(suf.fss.kernels), and the dealer's stream kernel behind one dispatch function (`chacha_stream`,
None without Triton or off CUDA; suf.prg.stream.Stream falls back to its torch path).  With
TRITON_INTERPRET=1 (set before Triton is imported) the stream kernel also runs for CPU devices
through Triton's interpreter, as suf.fss.kernels does (slow; for testing without a GPU).
"""
from __future__ import annotations

import os

import torch

from suf.prg.chacha import ROUNDS

try:
    import triton
    import triton.language as tl
except ImportError:  # no Triton (the CPU machines): the dispatch function returns None
    triton = None

INT64 = torch.int64
BLOCK = 128  # lanes per program
WARPS = 4


def check_rounds(rounds) -> None:
    if not isinstance(rounds, int) or rounds < 2 or rounds % 2:
        raise ValueError(f"ChaCha rounds must be a positive even int, got {rounds!r}")


if triton is not None:
    # -- ChaCha on uint32 lanes ----------------------------------------------------------------
    @triton.jit
    def quarter_round(a, b, c, d):
        a = a + b
        d = d ^ a
        d = (d << 16) | (d >> 16)
        c = c + d
        b = b ^ c
        b = (b << 12) | (b >> 20)
        a = a + b
        d = d ^ a
        d = (d << 8) | (d >> 24)
        c = c + d
        b = b ^ c
        b = (b << 7) | (b >> 25)
        return a, b, c, d

    @triton.jit
    def chacha_rounds(x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15,
                ROUNDS: tl.constexpr):
        """ChaCha's ROUNDS rounds (column, then diagonal) on the 16 state words, without the
        final addition of the input."""
        for _ in tl.static_range(ROUNDS // 2):
            x0, x4, x8, x12 = quarter_round(x0, x4, x8, x12)
            x1, x5, x9, x13 = quarter_round(x1, x5, x9, x13)
            x2, x6, x10, x14 = quarter_round(x2, x6, x10, x14)
            x3, x7, x11, x15 = quarter_round(x3, x7, x11, x15)
            x0, x5, x10, x15 = quarter_round(x0, x5, x10, x15)
            x1, x6, x11, x12 = quarter_round(x1, x6, x11, x12)
            x2, x7, x8, x13 = quarter_round(x2, x7, x8, x13)
            x3, x4, x9, x14 = quarter_round(x3, x4, x9, x14)
        return x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15

    @triton.jit
    def chacha_tree_block(k0, k1, k2, k3, ROUNDS: tl.constexpr):
        """G(s): the ChaCha block with key words k0..k3 (bit 0 already cleared), k4..k7 = 0,
        counter = nonce = 0.  Returns output words 0..7: the left child (0..3) and the right
        child (4..7); words 8..15 (the spare blocks) are not needed by the tree walks."""
        z = tl.zeros_like(k0)
        c0 = z + 0x61707865
        c1 = z + 0x3320646E
        c2 = z + 0x79622D32
        c3 = z + 0x6B206574
        x = chacha_rounds(c0, c1, c2, c3, k0, k1, k2, k3, z, z, z, z, z, z, z, z, ROUNDS)
        return (x[0] + c0, x[1] + c1, x[2] + c2, x[3] + c3, x[4] + k0, x[5] + k1, x[6] + k2,
                x[7] + k3, x[8], x[9], x[10], x[11], x[12], x[13], x[14], x[15])

    @triton.jit(do_not_specialize=["nblocks"])
    def _stream_kernel(out_ptr, params_ptr, nblocks, ROUNDS: tl.constexpr, BLOCK: tl.constexpr):
        """The dealer's stream (suf.prg.Stream): block b = ChaCha(key, counter ctr0 + b, nonce
        (nonce, 0)), stored as 8 int64 words per block (output words 2j | 2j+1 << 32).
        params: int64 [k0..k7, nonce, ctr0], read from memory: scalar kernel arguments equal to
        1 would be compiled in as constants (Triton specializes them), which broke `.to`."""
        blk = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        valid = blk < nblocks
        ctr = blk + tl.load(params_ptr + 9)
        z = tl.zeros((BLOCK,), tl.uint32)
        k0 = z + tl.load(params_ptr + 0).to(tl.uint32)
        k1 = z + tl.load(params_ptr + 1).to(tl.uint32)
        k2 = z + tl.load(params_ptr + 2).to(tl.uint32)
        k3 = z + tl.load(params_ptr + 3).to(tl.uint32)
        k4 = z + tl.load(params_ptr + 4).to(tl.uint32)
        k5 = z + tl.load(params_ptr + 5).to(tl.uint32)
        k6 = z + tl.load(params_ptr + 6).to(tl.uint32)
        k7 = z + tl.load(params_ptr + 7).to(tl.uint32)
        nonce = z + tl.load(params_ptr + 8).to(tl.uint32)
        init = (z + 0x61707865, z + 0x3320646E, z + 0x79622D32, z + 0x6B206574,
                k0, k1, k2, k3, k4, k5, k6, k7,
                (ctr & 0xFFFFFFFF).to(tl.uint32), (ctr >> 32).to(tl.uint32), nonce, z)
        y = chacha_rounds(*init, ROUNDS)
        col = tl.arange(0, 8)[None, :]
        row = tl.zeros((BLOCK, 8), tl.int64)
        for j in tl.static_range(8):
            lo = (y[2 * j] + init[2 * j]).to(tl.uint64)
            hi = (y[2 * j + 1] + init[2 * j + 1]).to(tl.uint64)
            row = tl.where(col == j, (lo | (hi << 32)).to(tl.int64, bitcast=True)[:, None], row)
        tl.store(out_ptr + 8 * blk[:, None] + col, row, mask=valid[:, None])



def chacha_stream(key_words, counter: int, nblocks: int, nonce: int, device,
                  rounds: int = ROUNDS):
    """`nblocks` ChaCha blocks from block `counter` on as int64 (nblocks, 8): word j of a block is
    output words 2j | 2j+1 << 32 (suf.prg.Stream.words64); None without Triton or off CUDA
    (unless TRITON_INTERPRET=1: then the interpreter runs it on CPU tensors)."""
    check_rounds(rounds)
    if len(key_words) != 8 or not all(0 <= int(k) < 2**32 for k in key_words):
        raise ValueError("a ChaCha stream takes 8 key words of 32 bits")
    if not 0 <= nonce < 2**32 or counter < 0 or nblocks < 0 or counter + nblocks > 2**63:
        raise ValueError("stream counter or nonce out of range")
    device = torch.device(device)
    interpret = os.environ.get("TRITON_INTERPRET") == "1"
    if triton is None or (device.type != "cuda" and not interpret):
        return None
    out = torch.empty((nblocks, 8), dtype=INT64, device=device)
    if nblocks:
        params = torch.tensor([*[int(k) for k in key_words], nonce, counter], dtype=INT64,
                              device=device)
        _stream_kernel[(max(1, -(-nblocks // BLOCK)),)](out, params, nblocks, ROUNDS=rounds,
                                               BLOCK=BLOCK, num_warps=WARPS)
    return out
