"""Fused Triton kernels for the PRG and the DPF tree walks on NVIDIA GPUs.

Each operation has one dispatch function.  It runs a Triton kernel when the tensors are on CUDA
and Triton imports, and returns None otherwise, so that the torch modules (suf.fss.dpf, compare,
lut) call it first and fall back to their own code:

    out = kernels.dpf_eval_lt(seed, cw, tr, leaf, x, n, party)
    if out is None:
        out = <the torch path>

The kernels give the same bits as the torch path for the same key tensors
(tests/unit/test_fss_kernels.py on a GPU; tests/unit/test_kernels_interpret.py in CI).
With TRITON_INTERPRET=1 they also run on CPU tensors through Triton's interpreter (slow; for
debugging without a GPU).

Key layout (one party, a batch of N keys; BGI DPF with early termination, sigma_spec.md §2.2):
domain n bits, D = n - 7 levels, path bits MSB-first (level i follows bit n-1-i of x), the leaf is
a 128-bit block whose bit (x & 127) is the output.
  seed  int64 (N, 2)        the root seed [lo, hi]; bit 0 of lo is the control bit t
  cw    int64 (D-1, N, 2)   correction seeds of levels 0..D-2, bit 0 = the t_L correction
  tr    int64 (D-1, N)      the t_R correction bits
  leaf  int64 (2, N, 2)     the leaf corrections for direction 0 / 1
Eval at level i < D-1: child = G(s)[bit], XORed with cw[i] (bit 0 replaced by tr[i] for the right
child) when t = 1; the new t is bit 0 of the child.  Last level: block = G(s)[bit] ^ t·leaf[bit].
G is ChaCha12 (suf.prg.expand): one block function gives both children.

Inside the kernels every 128-bit block is four uint32 words (least significant first), and all
arithmetic is 32-bit lane arithmetic.
"""
from __future__ import annotations

import os

import torch

from suf.core.checks import check_party

from suf.prg.chacha import ROUNDS
from suf.prg.kernels import check_rounds

try:
    import triton
    import triton.language as tl
except ImportError:  # no Triton (the CPU machines): every dispatch function returns None
    triton = None

INT64 = torch.int64
MAX_POINTS = 3  # x may carry up to 3 evaluation points per key (SIGMA's prologue, spec §2.3)
MAX_LUT_BITS = 16
STACK = 8  # the LUT's DFS stack: slots for depths 1..D-1, D = k - 7 <= 9 (a power of two)
MAX_WINDOW_BITS = 20  # dpf_window: windows of up to 2^20 points (a slice's offsets are int32)
# dpf_window cuts each key's subtrees into slices until about this many lanes run: at its 168
# registers (sm_90, 64 lanes on 4 warps) an H200 holds ~5·10^4 lanes, so this is ~2.5 waves
WINDOW_LANES = 1 << 17


def available(*tensors: torch.Tensor) -> bool:
    """True when the Triton kernels can run on these tensors: Triton imports and they are on CUDA
    (or TRITON_INTERPRET=1, which runs the kernels on CPU tensors through the interpreter)."""
    if triton is None:
        return False
    interpret = os.environ.get("TRITON_INTERPRET") == "1"
    return all(t.is_cuda or interpret for t in tensors)


# -- input checks -----------------------------------------------------------------------------
def _check_int64(t, what: str) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype != INT64:
        raise TypeError(f"{what} must have dtype torch.int64, got {t.dtype}")


def _check_key(seed, cw, tr, leaf, n: int) -> int:
    """Validate one party's DPF key tensors for an n-bit domain; returns N."""
    for t, what in ((seed, "seed"), (cw, "cw"), (tr, "tr"), (leaf, "leaf")):
        _check_int64(t, what)
    if not isinstance(n, int) or not 8 <= n <= 64:
        raise ValueError(f"domain bits n must be an int in [8, 64], got {n!r}")
    if seed.dim() != 2 or seed.shape[1] != 2:
        raise ValueError(f"seed must have shape (N, 2), got {tuple(seed.shape)}")
    N, D = seed.shape[0], n - 7
    expected = {"cw": (cw, (D - 1, N, 2)), "tr": (tr, (D - 1, N)), "leaf": (leaf, (2, N, 2))}
    for what, (t, shape) in expected.items():
        if tuple(t.shape) != shape:
            raise ValueError(f"{what} must have shape {shape} for n={n}, N={N}; "
                             f"got {tuple(t.shape)}")
    if len({t.device for t in (seed, cw, tr, leaf)}) != 1:
        raise ValueError("seed, cw, tr and leaf must be on one device")
    return N


def _check_points(x, N: int, device, what: str = "x") -> torch.Tensor:
    """x: (N,) or (E, N) with 1 <= E <= 3; returns it as (E, N)."""
    _check_int64(x, what)
    if x.device != device:
        raise ValueError(f"{what} is on {x.device}, the key on {device}")
    x2 = x.unsqueeze(0) if x.dim() == 1 else x
    if x2.dim() != 2 or x2.shape[1] != N or not 1 <= x2.shape[0] <= MAX_POINTS:
        raise ValueError(f"{what} must have shape (N,) or (E, N) with N={N}, E<={MAX_POINTS}; "
                         f"got {tuple(x.shape)}")
    return x2



if triton is not None:
    from suf.prg.kernels import chacha_tree_block

    # -- 128-bit blocks: int64 [lo, hi] pairs in memory, four uint32 words in registers -------
    @triton.jit
    def _load_block(ptr, off, mask):
        """Load the int64 pairs at ptr + 2*off (+0, +1) as four uint32 words."""
        pair = tl.load(ptr + 2 * off[:, None] + tl.arange(0, 2)[None, :], mask=mask[:, None],
                       other=0)
        lo, hi = tl.split(pair)
        return ((lo & 0xFFFFFFFF).to(tl.uint32), (lo >> 32).to(tl.uint32),
                (hi & 0xFFFFFFFF).to(tl.uint32), (hi >> 32).to(tl.uint32))

    @triton.jit
    def _store_block(ptr, off, mask, w0, w1, w2, w3):
        lo = (w0.to(tl.uint64) | (w1.to(tl.uint64) << 32)).to(tl.int64, bitcast=True)
        hi = (w2.to(tl.uint64) | (w3.to(tl.uint64) << 32)).to(tl.int64, bitcast=True)
        tl.store(ptr + 2 * off[:, None] + tl.arange(0, 2)[None, :], tl.join(lo, hi),
                 mask=mask[:, None])

    @triton.jit
    def _step(s0, s1, s2, s3, t, bit, cw_ptr, tr_ptr, level, N, key, valid,
              ROUNDS: tl.constexpr):
        """One inner level: the child on side `bit` of seed s, corrected by cw[level] if t."""
        y = chacha_tree_block(s0 ^ t, s1, s2, s3, ROUNDS)
        right = bit == 1
        c0 = tl.where(right, y[4], y[0])
        c1 = tl.where(right, y[5], y[1])
        c2 = tl.where(right, y[6], y[2])
        c3 = tl.where(right, y[7], y[3])
        off = level * N + key
        w0, w1, w2, w3 = _load_block(cw_ptr, off, valid)
        tr = tl.load(tr_ptr + off, mask=valid, other=0).to(tl.uint32) & 1
        w0 = tl.where(right, (w0 & 0xFFFFFFFE) | tr, w0)
        tm = tl.zeros_like(t) - t  # all ones where t = 1
        return c0 ^ (w0 & tm), c1 ^ (w1 & tm), c2 ^ (w2 & tm), c3 ^ (w3 & tm)

    @triton.jit
    def _leaf_step(s0, s1, s2, s3, t, bit, leaf_ptr, N, key, valid, ROUNDS: tl.constexpr):
        """The last level: block = G(s)[bit] ^ t·leaf[bit]."""
        y = chacha_tree_block(s0 ^ t, s1, s2, s3, ROUNDS)
        right = bit == 1
        w0, w1, w2, w3 = _load_block(leaf_ptr, bit.to(tl.int64) * N + key, valid)
        tm = tl.zeros_like(t) - t
        return (tl.where(right, y[4], y[0]) ^ (w0 & tm), tl.where(right, y[5], y[1]) ^ (w1 & tm),
                tl.where(right, y[6], y[2]) ^ (w2 & tm), tl.where(right, y[7], y[3]) ^ (w3 & tm))

    @triton.jit
    def _le_mask(pos, j: tl.constexpr):
        """uint32 mask of the bits of word j (block bits 32j..32j+31) at positions <= pos."""
        k = tl.minimum(tl.maximum(pos + 1 - 32 * j, 0), 32).to(tl.uint32)
        one = tl.full(k.shape, 1, tl.uint32)
        return tl.where(k >= 32, tl.full(k.shape, 0xFFFFFFFF, tl.uint32), (one << (k & 31)) - one)

    # -- kernels -------------------------------------------------------------------------------
    @triton.jit
    def _expand_kernel(seed_ptr, out_ptr, N, ROUNDS: tl.constexpr, BLOCK: tl.constexpr):
        key = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        valid = key < N
        s0, s1, s2, s3 = _load_block(seed_ptr, key, valid)
        y = chacha_tree_block(s0 & 0xFFFFFFFE, s1, s2, s3, ROUNDS)
        # one contiguous 64-byte row per key (the 8 int64 words of the 4 output blocks), stored as
        # one tile: 3.1e10 seeds/s on an H100 against 1.3e10 with four separate block stores
        col = tl.arange(0, 8)[None, :]
        row = tl.zeros((BLOCK, 8), tl.int64)
        for j in tl.static_range(8):
            word = y[2 * j].to(tl.uint64) | (y[2 * j + 1].to(tl.uint64) << 32)
            row = tl.where(col == j, word.to(tl.int64, bitcast=True)[:, None], row)
        tl.store(out_ptr + 8 * key[:, None] + col, row, mask=valid[:, None])

    @triton.jit(do_not_specialize=["n", "party"])
    def _walk_kernel(seed_ptr, cw_ptr, tr_ptr, leaf_ptr, x_ptr, out_ptr, N, n, party,
                     E: tl.constexpr, LT: tl.constexpr, ROUNDS: tl.constexpr,
                     BLOCK: tl.constexpr):
        """Walk x's path in every key.  Lanes are (key, point) pairs, E consecutive lanes per key,
        so the E points of one key read its key words in shared memory transactions.
        LT = False: the output is the leaf bit at x (point evaluation).
        LT = True: XOR-shares of 1{x < alpha} by prefix parity (spec §2.3): XOR the node's t into
        the result wherever the path changes direction (the first step counts as coming from the
        left), then the in-block bits after x (last step right) or up to x (last step left), and
        party 1 flips."""
        KEYS: tl.constexpr = BLOCK // E
        lane = tl.arange(0, BLOCK)
        key = tl.program_id(0).to(tl.int64) * KEYS + lane // E
        point = (lane % E).to(tl.int64)
        valid = (lane < KEYS * E) & (key < N)
        x = tl.load(x_ptr + point * N + key, mask=valid, other=0)
        s0, s1, s2, s3 = _load_block(seed_ptr, key, valid)
        t = s0 & 1
        prev = tl.zeros_like(t)  # the previous direction, initially left
        acc = tl.zeros_like(t)
        for i in range(n - 8):
            bit = ((x >> (n - 1 - i)) & 1).to(tl.uint32)
            if LT:
                acc ^= t & (bit ^ prev)
                prev = bit
            s0, s1, s2, s3 = _step(s0, s1, s2, s3, t, bit, cw_ptr, tr_ptr, i, N, key, valid,
                                   ROUNDS)
            t = s0 & 1
        bit = ((x >> 7) & 1).to(tl.uint32)
        b0, b1, b2, b3 = _leaf_step(s0, s1, s2, s3, t, bit, leaf_ptr, N, key, valid, ROUNDS)
        pos = (x & 127).to(tl.int32)
        if LT:
            acc ^= t & (bit ^ prev)
            flip = tl.zeros_like(bit) - bit  # last step right: take bits > pos, else bits <= pos
            f = ((b0 & (_le_mask(pos, 0) ^ flip)) ^ (b1 & (_le_mask(pos, 1) ^ flip))
                 ^ (b2 & (_le_mask(pos, 2) ^ flip)) ^ (b3 & (_le_mask(pos, 3) ^ flip)))
            f ^= f >> 16
            f ^= f >> 8
            f ^= f >> 4
            f ^= f >> 2
            f ^= f >> 1
            out = (acc ^ f ^ party) & 1
        else:
            wi = pos >> 5
            w = tl.where(wi == 0, b0, tl.where(wi == 1, b1, tl.where(wi == 2, b2, b3)))
            out = (w >> (pos & 31).to(tl.uint32)) & 1
        tl.store(out_ptr + point * N + key, out.to(tl.int64), mask=valid)

    @triton.jit
    def _lut_leaf_word(w, base, xh, T_ptr, valid, u, v, kmask):
        """Accumulate the 32 leaf bits of word w (domain points base..base+31) as a (lanes, 32)
        tile, so that a warp reads 32 consecutive table entries of one lane at once."""
        i = tl.arange(0, 32)
        bits = (w[:, None] >> i[None, :].to(tl.uint32)) & 1
        idx = (xh[:, None] - (base + i[None, :])) & kmask
        v += tl.sum(tl.load(T_ptr + idx, mask=valid[:, None] & (bits == 1), other=0), axis=1)
        c = w - ((w >> 1) & 0x55555555)  # popcount of w
        c = (c & 0x33333333) + ((c >> 2) & 0x33333333)
        c = (((c + (c >> 4)) & 0x0F0F0F0F) * 0x01010101) >> 24
        return u + c.to(tl.int64), v

    @triton.jit
    def _lut_leaf(b0, b1, b2, b3, jh, xh, T_ptr, valid, u, v, kmask):
        base = jh * 128
        u, v = _lut_leaf_word(b0, base, xh, T_ptr, valid, u, v, kmask)
        u, v = _lut_leaf_word(b1, base + 32, xh, T_ptr, valid, u, v, kmask)
        u, v = _lut_leaf_word(b2, base + 64, xh, T_ptr, valid, u, v, kmask)
        u, v = _lut_leaf_word(b3, base + 96, xh, T_ptr, valid, u, v, kmask)
        return u, v

    @triton.jit
    def _dfs_resume(m, depth, slot, S0, S1, S2, S3, r0, r1, r2, r3, STACK: tl.constexpr):
        """Where the depth-first walk of leaf pair m starts: the root (m = 0) or the pending
        right child at depth depth-1-tz(m) (tz: trailing zeros of m); returns (depth, seed)."""
        tz = 0
        for b in tl.static_range(1, STACK):
            tz += tl.where((m & ((1 << b) - 1)) == 0, 1, 0)
        top = tl.where(m == 0, 0, depth - 1 - tz)
        take = slot == top - 1
        s0 = tl.where(m == 0, r0, tl.sum(tl.where(take, S0, 0), axis=1).to(tl.uint32))
        s1 = tl.where(m == 0, r1, tl.sum(tl.where(take, S1, 0), axis=1).to(tl.uint32))
        s2 = tl.where(m == 0, r2, tl.sum(tl.where(take, S2, 0), axis=1).to(tl.uint32))
        s3 = tl.where(m == 0, r3, tl.sum(tl.where(take, S3, 0), axis=1).to(tl.uint32))
        return top, s0, s1, s2, s3

    @triton.jit
    def _dfs_descend(top, depth, level, s0, s1, s2, s3, S0, S1, S2, S3, slot, cw_ptr, tr_ptr,
                     N, key, valid, ROUNDS: tl.constexpr):
        """Left children from depth `top` down to depth-1 (tree levels level + d), each right
        child corrected and pushed to stack slot d; returns the seed at depth-1 and the stack."""
        for d in range(top, depth - 1):
            t = s0 & 1
            tm = tl.zeros_like(t) - t
            y = chacha_tree_block(s0 ^ t, s1, s2, s3, ROUNDS)
            off = (level + d) * N + key
            w0, w1, w2, w3 = _load_block(cw_ptr, off, valid)
            tr = tl.load(tr_ptr + off, mask=valid, other=0).to(tl.uint32) & 1
            put = slot == d
            S0 = tl.where(put, (y[4] ^ (((w0 & 0xFFFFFFFE) | tr) & tm))[:, None], S0)
            S1 = tl.where(put, (y[5] ^ (w1 & tm))[:, None], S1)
            S2 = tl.where(put, (y[6] ^ (w2 & tm))[:, None], S2)
            S3 = tl.where(put, (y[7] ^ (w3 & tm))[:, None], S3)
            s0 = y[0] ^ (w0 & tm)
            s1 = y[1] ^ (w1 & tm)
            s2 = y[2] ^ (w2 & tm)
            s3 = y[3] ^ (w3 & tm)
        return s0, s1, s2, s3, S0, S1, S2, S3

    @triton.jit(do_not_specialize=["party", "k"])
    def _lut_kernel(seed_ptr, cw_ptr, tr_ptr, leaf_ptr, x_ptr, T_ptr, u_ptr, v_ptr, N, party,
                    k, E: tl.constexpr, STACK: tl.constexpr, ROUNDS: tl.constexpr,
                    BLOCK: tl.constexpr):
        """Eval-all of a k-bit DPF key per element and the rotated-table inner product (spec
        §2.4): u = sum_j bit_j, v = sum_j T[(xh - j) mod 2^k]·bit_j, negated for party 1.
        Depth-first over the D = k-7 levels: the nodes at depth D-1 are visited left to right;
        descending from a node keeps its corrected right child in a per-lane stack (slot d-1
        holds the pending right child at depth d), so every node is expanded once: 2^D - 1
        ChaCha blocks per element, each giving both children.  Lanes are (key, point) pairs as
        in _walk_kernel; the E lanes of a key repeat its (cheap) expansions."""
        D = k - 7
        kmask = (1 << k) - 1
        KEYS: tl.constexpr = BLOCK // E
        lane = tl.arange(0, BLOCK)
        key = tl.program_id(0).to(tl.int64) * KEYS + lane // E
        point = (lane % E).to(tl.int64)
        valid = (lane < KEYS * E) & (key < N)
        xh = tl.load(x_ptr + point * N + key, mask=valid, other=0)
        r0, r1, r2, r3 = _load_block(seed_ptr, key, valid)
        slot = tl.arange(0, STACK)[None, :]
        S0 = tl.zeros((BLOCK, STACK), tl.uint32)
        S1 = tl.zeros((BLOCK, STACK), tl.uint32)
        S2 = tl.zeros((BLOCK, STACK), tl.uint32)
        S3 = tl.zeros((BLOCK, STACK), tl.uint32)
        u = tl.zeros((BLOCK,), tl.int64)
        v = tl.zeros((BLOCK,), tl.int64)
        for m in range(1 << (D - 1)):
            top, s0, s1, s2, s3 = _dfs_resume(m, D, slot, S0, S1, S2, S3, r0, r1, r2, r3, STACK)
            s0, s1, s2, s3, S0, S1, S2, S3 = _dfs_descend(top, D, 0, s0, s1, s2, s3, S0, S1, S2,
                                                          S3, slot, cw_ptr, tr_ptr, N, key,
                                                          valid, ROUNDS)
            t = s0 & 1
            tm = tl.zeros_like(t) - t
            y = chacha_tree_block(s0 ^ t, s1, s2, s3, ROUNDS)
            w0, w1, w2, w3 = _load_block(leaf_ptr, key, valid)
            u, v = _lut_leaf(y[0] ^ (w0 & tm), y[1] ^ (w1 & tm), y[2] ^ (w2 & tm),
                             y[3] ^ (w3 & tm), 2 * m, xh, T_ptr, valid, u, v, kmask)
            w0, w1, w2, w3 = _load_block(leaf_ptr, N + key, valid)
            u, v = _lut_leaf(y[4] ^ (w0 & tm), y[5] ^ (w1 & tm), y[6] ^ (w2 & tm),
                             y[7] ^ (w3 & tm), 2 * m + 1, xh, T_ptr, valid, u, v, kmask)
        sign = 1 - 2 * party
        tl.store(u_ptr + point * N + key, u * sign, mask=valid)
        tl.store(v_ptr + point * N + key, v * sign, mask=valid)

    @triton.jit
    def _below(x):
        """uint32 mask of the bits below x (lanes, int64 in [0, 32])."""
        one = tl.full(x.shape, 1, tl.uint32)
        return tl.where(x >= 32, 0xFFFFFFFF, (one << (x & 31).to(tl.uint32)) - one)

    @triton.jit
    def _span_mask(lo, hi, j):
        """uint32 mask of the bits of the word of points j..j+31 that lie in [lo, hi)."""
        b = tl.minimum(tl.maximum(hi - j, 0), 32)
        return _below(b) ^ _below(tl.minimum(tl.maximum(lo - j, 0), b))

    @triton.jit
    def _window_word(w, j, win, W_ptr, valid, S, V, ring, mask32, size):
        """Accumulate the bits of word w (the slice's points j..j+31) that lie in the window
        [win, win + size) or its copy one ring earlier: S += their count (a popcount), V += the
        weights at their window offsets (j + i - win) & mask32, read as a (lanes, 32) tile."""
        w &= _span_mask(win, win + size, j) | _span_mask(win - ring, win - ring + size, j)
        c = w - ((w >> 1) & 0x55555555)
        c = (c & 0x33333333) + ((c >> 2) & 0x33333333)
        S += ((((c + (c >> 4)) & 0x0F0F0F0F) * 0x01010101) >> 24).to(tl.int64)
        i = tl.arange(0, 32)
        sel = (((w[:, None] >> i[None, :].to(tl.uint32)) & 1) == 1) & valid[:, None]
        idx = (j + i[None, :] - win.to(tl.int32)[:, None]) & mask32
        V += tl.sum(tl.load(W_ptr + idx, mask=sel, other=0), axis=1)
        return S, V

    @triton.jit
    def _window_leaf(b0, b1, b2, b3, j, win, W_ptr, valid, S, V, ring, mask32, size):
        S, V = _window_word(b0, j, win, W_ptr, valid, S, V, ring, mask32, size)
        S, V = _window_word(b1, j + 32, win, W_ptr, valid, S, V, ring, mask32, size)
        S, V = _window_word(b2, j + 64, win, W_ptr, valid, S, V, ring, mask32, size)
        S, V = _window_word(b3, j + 96, win, W_ptr, valid, S, V, ring, mask32, size)
        return S, V

    @triton.jit(do_not_specialize=["LPK", "shift", "Ls", "R"])
    def _window_kernel(seed_ptr, cw_ptr, tr_ptr, leaf_ptr, start_ptr, W_ptr, S_ptr, V_ptr, N,
                       LPK, shift, Ls, R, pmask, nmask, ring, mask32, size, STACK: tl.constexpr,
                       ROUNDS: tl.constexpr, BLOCK: tl.constexpr):
        """Partial (S, W) of one slice per lane (dpf_window): LPK consecutive lanes per key, lane
        r of a key takes the subtree at level Ls with path ((start >> shift) + r) & pmask, walks
        to its root (Ls blocks), expands it depth-first over the remaining R levels as
        _lut_kernel does (2^R - 1 blocks, 2^R leaf blocks) and sums the window's bits in them."""
        g = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        key = g // LPK
        valid = key < N
        start = tl.load(start_ptr + key, mask=valid, other=0)
        path = ((start >> shift) + g % LPK) & pmask
        r0, r1, r2, r3 = _load_block(seed_ptr, key, valid)
        for i in range(Ls):
            bit = ((path >> (Ls - 1 - i)) & 1).to(tl.uint32)
            r0, r1, r2, r3 = _step(r0, r1, r2, r3, r0 & 1, bit, cw_ptr, tr_ptr, i, N, key, valid,
                                   ROUNDS)
        # Points are counted from the slice's first point (j < 2^20, int32).  n <= 31: the
        # window is [win, win + size) mod ring = 2^n in j, i.e. that span and the one a ring
        # earlier (a window around 0 or the whole ring), win < 2^31.  n >= 32: ring = 2^32 (no
        # copy reaches the slice), win in [-2^30, 2^30] (a window 2^30 or more away is put at
        # 2^30, where it misses the slice's < 2^20 points).
        first = (path << R) * 128  # wraps for n = 64, as the ring does
        ahead = (start - first) & nmask  # the window's start after the slice's first point
        behind = (first - start) & nmask  # the slice's first point after the window's start
        win = tl.where((ahead >= 0) & ((ahead < 1 << 30) | (ring <= 1 << 31)), ahead,
                       tl.where((behind >= 0) & (behind < 1 << 30), -behind, 1 << 30))
        slot = tl.arange(0, STACK)[None, :]
        S0 = tl.zeros((BLOCK, STACK), tl.uint32)
        S1 = tl.zeros((BLOCK, STACK), tl.uint32)
        S2 = tl.zeros((BLOCK, STACK), tl.uint32)
        S3 = tl.zeros((BLOCK, STACK), tl.uint32)
        S = tl.zeros((BLOCK,), tl.int64)
        V = tl.zeros((BLOCK,), tl.int64)
        for m in range(1 << (R - 1)):
            top, s0, s1, s2, s3 = _dfs_resume(m, R, slot, S0, S1, S2, S3, r0, r1, r2, r3, STACK)
            s0, s1, s2, s3, S0, S1, S2, S3 = _dfs_descend(top, R, Ls, s0, s1, s2, s3, S0, S1, S2,
                                                          S3, slot, cw_ptr, tr_ptr, N, key,
                                                          valid, ROUNDS)
            t = s0 & 1
            tm = tl.zeros_like(t) - t
            y = chacha_tree_block(s0 ^ t, s1, s2, s3, ROUNDS)
            j = 256 * m
            w0, w1, w2, w3 = _load_block(leaf_ptr, key, valid)
            S, V = _window_leaf(y[0] ^ (w0 & tm), y[1] ^ (w1 & tm), y[2] ^ (w2 & tm),
                                y[3] ^ (w3 & tm), j, win, W_ptr, valid, S, V, ring, mask32,
                                size)
            w0, w1, w2, w3 = _load_block(leaf_ptr, N + key, valid)
            S, V = _window_leaf(y[4] ^ (w0 & tm), y[5] ^ (w1 & tm), y[6] ^ (w2 & tm),
                                y[7] ^ (w3 & tm), j + 128, win, W_ptr, valid, S, V, ring,
                                mask32, size)
        tl.store(S_ptr + g, S, mask=valid)
        tl.store(V_ptr + g, V, mask=valid)

    @triton.jit(do_not_specialize=["n"])
    def _keygen_kernel(alpha_ptr, root0_ptr, root1_ptr, seed0_ptr, seed1_ptr, cw_ptr, tr_ptr,
                       leaf_ptr, N, n, ROUNDS: tl.constexpr, BLOCK: tl.constexpr):
        """BGI keygen along alpha's path: both parties' seeds expanded per level (2 blocks)."""
        key = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        valid = key < N
        alpha = tl.load(alpha_ptr + key, mask=valid, other=0)
        p0, p1, p2, p3 = _load_block(root0_ptr, key, valid)
        q0, q1, q2, q3 = _load_block(root1_ptr, key, valid)
        p0 = (p0 & 0xFFFFFFFE) | ((q0 & 1) ^ 1)  # t0 = t1 ^ 1
        _store_block(seed0_ptr, key, valid, p0, p1, p2, p3)
        _store_block(seed1_ptr, key, valid, q0, q1, q2, q3)
        for i in range(n - 8):
            a = ((alpha >> (n - 1 - i)) & 1).to(tl.uint32)
            keep_right = a == 1
            tp = p0 & 1
            tq = q0 & 1
            y = chacha_tree_block(p0 ^ tp, p1, p2, p3, ROUNDS)
            z = chacha_tree_block(q0 ^ tq, q1, q2, q3, ROUNDS)
            # correction seed = XOR of the two lose-side children; t corrections per side
            c0 = tl.where(keep_right, y[0] ^ z[0], y[4] ^ z[4])
            c1 = tl.where(keep_right, y[1] ^ z[1], y[5] ^ z[5])
            c2 = tl.where(keep_right, y[2] ^ z[2], y[6] ^ z[6])
            c3 = tl.where(keep_right, y[3] ^ z[3], y[7] ^ z[7])
            tl_cw = ((y[0] ^ z[0]) & 1) ^ a ^ 1
            tr_cw = ((y[4] ^ z[4]) & 1) ^ a
            c0 = (c0 & 0xFFFFFFFE) | tl_cw
            _store_block(cw_ptr, i * N + key, valid, c0, c1, c2, c3)
            tl.store(tr_ptr + i * N + key, tr_cw.to(tl.int64), mask=valid)
            k0 = (c0 & 0xFFFFFFFE) | tl.where(keep_right, tr_cw, tl_cw)
            mp = tl.zeros_like(tp) - tp
            mq = tl.zeros_like(tq) - tq
            p0, p1, p2, p3 = (tl.where(keep_right, y[4], y[0]) ^ (k0 & mp),
                              tl.where(keep_right, y[5], y[1]) ^ (c1 & mp),
                              tl.where(keep_right, y[6], y[2]) ^ (c2 & mp),
                              tl.where(keep_right, y[7], y[3]) ^ (c3 & mp))
            q0, q1, q2, q3 = (tl.where(keep_right, z[4], z[0]) ^ (k0 & mq),
                              tl.where(keep_right, z[5], z[1]) ^ (c1 & mq),
                              tl.where(keep_right, z[6], z[2]) ^ (c2 & mq),
                              tl.where(keep_right, z[7], z[3]) ^ (c3 & mq))
        # leaf corrections: XOR of both parties' leaf blocks, the one-hot bit on the keep side
        a = ((alpha >> 7) & 1).to(tl.uint32)
        y = chacha_tree_block(p0 ^ (p0 & 1), p1, p2, p3, ROUNDS)
        z = chacha_tree_block(q0 ^ (q0 & 1), q1, q2, q3, ROUNDS)
        pos = (alpha & 127).to(tl.uint32)
        one = tl.full(pos.shape, 1, tl.uint32)
        h0 = tl.where((pos >> 5) == 0, one << (pos & 31), 0)
        h1 = tl.where((pos >> 5) == 1, one << (pos & 31), 0)
        h2 = tl.where((pos >> 5) == 2, one << (pos & 31), 0)
        h3 = tl.where((pos >> 5) == 3, one << (pos & 31), 0)
        rm = tl.zeros_like(a) - a  # all ones where the keep side is right
        lm = a - 1  # all ones where it is left
        _store_block(leaf_ptr, key, valid, y[0] ^ z[0] ^ (h0 & lm), y[1] ^ z[1] ^ (h1 & lm),
                     y[2] ^ z[2] ^ (h2 & lm), y[3] ^ z[3] ^ (h3 & lm))
        _store_block(leaf_ptr, N + key, valid, y[4] ^ z[4] ^ (h0 & rm), y[5] ^ z[5] ^ (h1 & rm),
                     y[6] ^ z[6] ^ (h2 & rm), y[7] ^ z[7] ^ (h3 & rm))


_BLOCK = 128  # lanes per program of the walks (measured: 64..256 lanes give the same speed)
_WARPS = 4
_LUT_BLOCK = 64  # the LUT's (lanes, 32) tiles: 64 lanes on 4 warps avoid register spills


def _grid(N: int, per_program: int):
    return (max(1, -(-N // per_program)),)


# -- dispatch functions -----------------------------------------------------------------------
def expand(seeds: torch.Tensor, rounds: int = ROUNDS):
    """G(s) as suf.prg.expand: int64 (..., 2) -> (..., 4, 2), or None without Triton/CUDA.
    `rounds` other than 12 serves the PRG benchmark only."""
    _check_int64(seeds, "seeds")
    if seeds.shape[-1:] != (2,):
        raise ValueError(f"seeds must have shape (..., 2), got {tuple(seeds.shape)}")
    check_rounds(rounds)
    if not available(seeds):
        return None
    flat = seeds.reshape(-1, 2).contiguous()
    out = torch.empty((flat.shape[0], 4, 2), dtype=INT64, device=seeds.device)
    _expand_kernel[_grid(flat.shape[0], _BLOCK)](flat, out, flat.shape[0], ROUNDS=rounds,
                                                   BLOCK=_BLOCK, num_warps=_WARPS)
    return out.reshape(*seeds.shape[:-1], 4, 2)


def _walk(seed, cw, tr, leaf, x, n, party, lt: bool, rounds: int):
    N = _check_key(seed, cw, tr, leaf, n)
    x2 = _check_points(x, N, seed.device)
    check_party(party)
    check_rounds(rounds)
    if not available(seed):
        return None
    E = x2.shape[0]
    out = torch.empty_like(x2)
    keys = _BLOCK // E
    _walk_kernel[_grid(N, keys)](seed.contiguous(), cw.contiguous(), tr.contiguous(),
                                 leaf.contiguous(), x2.contiguous(), out, N, n, party,
                                 E=E, LT=lt, ROUNDS=rounds, BLOCK=_BLOCK, num_warps=_WARPS)
    return out.reshape(x.shape)


def dpf_eval_point(seed, cw, tr, leaf, x, n: int, party: int, rounds: int = ROUNDS):
    """XOR-share of the DPF output bit at x: int64 of x's shape ((N,) or (E, N), E <= 3), or
    None without Triton/CUDA.  x must hold n-bit values: not checked here, since that would
    synchronize with the GPU (suf.fss checks before it dispatches).  `rounds` serves the
    benchmark only."""
    return _walk(seed, cw, tr, leaf, x, n, party, False, rounds)


def dpf_eval_lt(seed, cw, tr, leaf, x, n: int, party: int):
    """XOR-share of 1{x < alpha} from the DPF key of alpha (prefix parity, spec §2.3): int64 of
    x's shape ((N,) or (E, N), E <= 3, the E points of a key share its loads), or None."""
    return _walk(seed, cw, tr, leaf, x, n, party, True, ROUNDS)


def dpf_lut(seed, cw, tr, leaf, x_hat, table, k: int, party: int):
    """Eval-all table lookup (spec §2.4) with a k-bit DPF key per element: for x_hat of shape
    (N,) or (E, N) (E <= 3) returns (u, v), int64 of x_hat's shape, with w_j = +bit_j (party 0)
    or -bit_j (party 1), u = sum_j w_j and v = sum_j table[(x_hat - j) mod 2^k]·w_j mod 2^64.
    None without Triton/CUDA, and for k > 16 (a DFS of 2^(k-7) leaves per element)."""
    N = _check_key(seed, cw, tr, leaf, k)
    x2 = _check_points(x_hat, N, seed.device, "x_hat")
    _check_int64(table, "table")
    if tuple(table.shape) != (1 << k,):
        raise ValueError(f"table must have shape ({1 << k},) for k={k}, got {tuple(table.shape)}")
    if table.device != seed.device:
        raise ValueError(f"table is on {table.device}, the key on {seed.device}")
    check_party(party)
    if k > MAX_LUT_BITS or not available(seed):
        return None
    E = x2.shape[0]
    u = torch.empty_like(x2)
    v = torch.empty_like(x2)
    _lut_kernel[_grid(N, _LUT_BLOCK // E)](seed.contiguous(), cw.contiguous(), tr.contiguous(),
                                           leaf.contiguous(), x2.contiguous(),
                                           table.contiguous(), u, v, N, party, k, E=E, STACK=STACK,
                                           ROUNDS=ROUNDS, BLOCK=_LUT_BLOCK, num_warps=_WARPS)
    return u.reshape(x_hat.shape), v.reshape(x_hat.shape)


def window_slices(N: int, n: int, k: int) -> int:
    """log2 of the slices per subtree that dpf_window uses for N keys: the fewest PRG calls in all,
    raised until about WINDOW_LANES lanes run (or the slices are single leaf pairs), and at least
    enough that a slice's DFS fits the STACK."""
    kk = max(k, 8)
    L, R0 = n - kk, kk - 7
    lo, hi = max(0, R0 - 1 - STACK), R0 - 1

    def lanes(s):
        return N * ((1 << s) + (L > 0))

    s = min(range(lo, hi + 1), key=lambda s: lanes(s) * (L + s + (1 << (R0 - s)) - 1))
    while s < hi and lanes(s) < WINDOW_LANES:
        s += 1
    return s


def dpf_window(seed, cw, tr, leaf, start, weights, n: int, k: int):
    """Windowed evaluation (suf.fss.window.eval_window) of N DPF keys over n-bit points: for each
    key the window [start, start + 2^k) mod 2^n and this party's
        S = sum_i bit(start + i),   W = sum_i weights[i]·bit(start + i)   mod 2^64 (int64 (N,)).
    Returns (S, W), or None without Triton/CUDA and for k > MAX_WINDOW_BITS (20).  start must
    hold n-bit values (not checked here: a device sync).

    The window lies in the two aligned subtrees of 2^kk points (kk = max(k, 8), the subtree at
    level L = n - kk holding start and the next one, cyclically), or in the whole tree when
    L = 0.  Each subtree is cut into 2^s slices (window_slices) and only the slices that meet
    the window are expanded: 2^s + 1 of the 2^(s+1) (L > 0; the window covers half of the pair
    when k >= 8) or all 2^s (L = 0).  One lane per (key, slice), so that every lane of a program
    runs the same DFS (Triton's lockstep: a per-lane DFS over the window's own leaves would
    branch); the lanes' partial sums are added in torch (LPK lanes per key, no atomics).
    Work per key, with R = kk - 7 - s levels per slice:
        ChaCha blocks  (2^s + 1)·(L + s + 2^R - 1)    (2^s·(s + 2^R - 1) when L = 0)
        key reads      the same count of cw/tr blocks, 2 leaf blocks per leaf pair
        weight reads   one int64 per set bit in the window (about 2^(k-1))
    n = 40, k = 16 and ~2e5 keys: s = 2, 5 slices of 128 leaf blocks, 765 blocks per key (the
    torch path's two full subtrees: 1070); n = 33, k = 9: 2 x 27; n = 19, k = 19 (the whole
    ring) and 4096 keys: s = 5, 32 slices of 128 leaf blocks, 4224 blocks per key.
    Limits: 8 <= n <= 64, 0 <= k <= min(n, 20); a slice's DFS needs R <= STACK + 1, so s >=
    kk - 16; N·LPK partial sums of each kind in memory (LPK = 2^s + 1 lanes per key, or 2^s).
    """
    N = _check_key(seed, cw, tr, leaf, n)
    _check_int64(start, "start")
    _check_int64(weights, "weights")
    if tuple(start.shape) != (N,) or start.device != seed.device:
        raise ValueError(f"start must have shape ({N},) on the key's device, got "
                         f"{tuple(start.shape)} on {start.device}")
    if not isinstance(k, int) or not 0 <= k <= n:
        raise ValueError(f"window bits k must be an int in [0, n={n}], got {k!r}")
    if tuple(weights.shape) != (1 << k,) or weights.device != seed.device:
        raise ValueError(f"weights must have shape ({1 << k},) on the key's device, got "
                         f"{tuple(weights.shape)} on {weights.device}")
    if k > MAX_WINDOW_BITS or not available(seed):
        return None
    kk = max(k, 8)
    L = n - kk
    s = window_slices(N, n, k)
    lpk = (1 << s) + (L > 0)
    S = torch.empty(N * lpk, dtype=INT64, device=seed.device)
    W = torch.empty_like(S)
    _window_kernel[_grid(N * lpk, _LUT_BLOCK)](
        seed.contiguous(), cw.contiguous(), tr.contiguous(), leaf.contiguous(),
        start.contiguous(), weights.contiguous(), S, W, N, lpk, kk - s, L + s, kk - 7 - s,
        (1 << (L + s)) - 1, -1 if n == 64 else (1 << n) - 1, 1 << min(n, 32),
        (1 << n) - 1 if n <= 31 else -1, 1 << k, STACK=STACK,
        ROUNDS=ROUNDS, BLOCK=_LUT_BLOCK, num_warps=_WARPS)
    return S.view(N, lpk).sum(1), W.view(N, lpk).sum(1)


def dpf_keygen(alpha, root0, root1, n: int):
    """Both parties' DPF keys for the points alpha (int64 (N,), n-bit values) from the root seeds
    root0, root1 (int64 (N, 2), from the dealer's stream): party 0's control bit is forced to
    t1 ^ 1.  Returns (seed0, seed1, cw, tr, leaf) in the key layout above (cw, tr and leaf are
    common to both parties), or None without Triton/CUDA."""
    for t, what in ((alpha, "alpha"), (root0, "root0"), (root1, "root1")):
        _check_int64(t, what)
    if not isinstance(n, int) or not 8 <= n <= 64:
        raise ValueError(f"domain bits n must be an int in [8, 64], got {n!r}")
    if alpha.dim() != 1:
        raise ValueError(f"alpha must have shape (N,), got {tuple(alpha.shape)}")
    N = alpha.shape[0]
    for t, what in ((root0, "root0"), (root1, "root1")):
        if tuple(t.shape) != (N, 2):
            raise ValueError(f"{what} must have shape ({N}, 2), got {tuple(t.shape)}")
        if t.device != alpha.device:
            raise ValueError(f"{what} must be on alpha's device")
    if not available(alpha):
        return None
    dev, D = alpha.device, n - 7
    seed0 = torch.empty((N, 2), dtype=INT64, device=dev)
    seed1 = torch.empty_like(seed0)
    cw = torch.empty((D - 1, N, 2), dtype=INT64, device=dev)
    tr = torch.empty((D - 1, N), dtype=INT64, device=dev)
    leaf = torch.empty((2, N, 2), dtype=INT64, device=dev)
    _keygen_kernel[_grid(N, _BLOCK)](alpha.contiguous(), root0.contiguous(), root1.contiguous(),
                                     seed0, seed1, cw, tr, leaf, N, n, ROUNDS=ROUNDS,
                                     BLOCK=_BLOCK, num_warps=_WARPS)
    return seed0, seed1, cw, tr, leaf
