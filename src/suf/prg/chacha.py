"""The project's PRG: ChaCha12 (Bernstein's ChaCha with 12 rounds), one specification for CPU and GPU.

The specification is plain torch on int64 tensors, so the same code runs on CPU and CUDA and gives
identical bits on both; on the CPU the same function runs on numpy uint32 lanes (many times faster),
and on CUDA fused Triton kernels (suf.fss, suf.prg.kernels); both are tested against it.

Two uses, both the standard ChaCha block function (RFC 8439 layout, 16 32-bit words:
4 constants "expand 32-byte k", 8 key words, word 12-13 a 64-bit block counter, 14-15 a nonce):

1. Tree expansion G(s) for the DPF (the role AES-128 keyed by the seed plays in SIGMA).
   A seed is a 128-bit block held as int64 pairs [lo, hi]; its least significant bit is the control
   bit t.  G(s) runs ChaCha12 with key words k0..k3 = the four little-endian 32-bit words of
   s with bit 0 cleared, k4..k7 = 0, counter = 0, nonce = 0, and returns the 512-bit output block
   as four 128-bit blocks: [0] the left child, [1] the right child, [2], [3] spare (unused by
   the DPF).  One block function per tree level gives both children (SIGMA's AES needs two).

2. A deterministic random stream for the dealer (`Stream`): ChaCha12 keyed by a 256-bit master key,
   counter = block index, nonce = (stream id, 0).  The master key comes from the OS CSPRNG
   (`Stream.from_os`); tests pass a fixed key, and CPU and GPU then deal identical keys.

ChaCha20 with the same layout is exposed (`rounds=20`) only so the tests can check this
implementation of the block function against RFC 8439 and the `cryptography` package.
"""
from __future__ import annotations


import numpy as np
import torch

INT64 = torch.int64
M32 = 0xFFFFFFFF
CONSTANTS = (0x61707865, 0x3320646E, 0x79622D32, 0x6B206574)  # "expand 32-byte k"
ROUNDS = 12


def _rotl(x: torch.Tensor, r: int) -> torch.Tensor:
    return ((x << r) | (x >> (32 - r))) & M32


def _quarter(s: list, a: int, b: int, c: int, d: int) -> None:
    s[a] = (s[a] + s[b]) & M32
    s[d] = _rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & M32
    s[b] = _rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & M32
    s[d] = _rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & M32
    s[b] = _rotl(s[b] ^ s[c], 7)


def chacha_block(key_words, counter, nonce_words=(0, 0), rounds: int = ROUNDS,
                 lanes32: bool | None = None) -> torch.Tensor:
    """The ChaCha block function, batched.

    key_words: 8 int64 tensors (or ints) of 32-bit words, broadcastable to one shape S.
    counter: int or int64 tensor (64-bit block counter, words 12 and 13).
    nonce_words: 2 ints or tensors (words 14 and 15).
    Returns an int64 tensor of shape S + (16,) with the 32-bit output words.
    lanes32: compute in numpy uint32 lanes on the host (wrapping adds, logical shifts: many
    times faster on the CPU); default: on the CPU only (CUDA keeps the int64 lanes, and its hot
    paths run the Triton kernels of suf.fss).
    The two give identical bits (tests/unit/test_prg.py).
    """
    if rounds % 2:
        raise ValueError("ChaCha needs an even number of rounds")
    if len(key_words) != 8 or len(nonce_words) != 2:
        raise ValueError("ChaCha takes 8 key words and 2 nonce words")
    parts = [*CONSTANTS, *key_words]
    parts += [counter & M32, (counter >> 32) & M32]
    parts += list(nonce_words)
    ref = next(p for p in parts if isinstance(p, torch.Tensor))
    shape = torch.broadcast_shapes(*[p.shape for p in parts if isinstance(p, torch.Tensor)])
    if lanes32 is None:
        lanes32 = ref.device.type == "cpu"
    if lanes32:
        out = _chacha_lanes(_lane_words(parts, shape), rounds)
        return torch.from_numpy(out.astype(np.int64)).reshape(*shape, 16).to(ref.device)
    init = [p.expand(shape) if isinstance(p, torch.Tensor)
            else torch.full(shape, p, dtype=INT64, device=ref.device) for p in parts]
    s = list(init)
    for _ in range(rounds // 2):
        _quarter(s, 0, 4, 8, 12)
        _quarter(s, 1, 5, 9, 13)
        _quarter(s, 2, 6, 10, 14)
        _quarter(s, 3, 7, 11, 15)
        _quarter(s, 0, 5, 10, 15)
        _quarter(s, 1, 6, 11, 12)
        _quarter(s, 2, 7, 8, 13)
        _quarter(s, 3, 4, 9, 14)
    return torch.stack([(x + y) & M32 for x, y in zip(s, init)], dim=-1)


# -- the CPU path: ChaCha on numpy uint32 lanes ----------------------------------------------
# uint32 arrays wrap on + and shift logically, so each step is one in-place ufunc call and the
# state is one (16, lanes) array: rows 0-3, 4-7, 8-11, 12-15 are the four rows a, b, c, d of the
# ChaCha matrix, each holding four words, so one call does a step of all four quarter rounds.
_LANE_CHUNK = 16384  # lanes per pass: the state stays in L2 (at 2^18 lanes 1.4x faster than whole)


def _double_round_calls(state: np.ndarray, scratch: np.ndarray) -> list:
    """One double round on state (16, w) as in-place ufunc calls (ufunc, in1, in2, out).

    Column round: quarter i takes word i of rows a, b, c, d.  Diagonal round: quarter i takes
    word i of a, i+1 of b, i+2 of c, i+3 of d (mod 4), so where two rows meet at different offsets
    the call splits in two at the wrap-around instead of moving the words.  scratch: (4, w).
    """
    a, b, c, d = state[0:4], state[4:8], state[8:12], state[12:16]
    calls = []

    def update(ufunc, dst, dst_offset, src, src_offset):  # dst[j] = ufunc(dst[j], src[j + k])
        k = (src_offset - dst_offset) % 4
        if k == 0:
            calls.append((ufunc, dst, src, dst))
        else:
            calls.append((ufunc, dst[:4 - k], src[k:], dst[:4 - k]))
            calls.append((ufunc, dst[4 - k:], src[:k], dst[4 - k:]))

    def rotl(v, r):
        calls.append((np.left_shift, v, r, scratch))
        calls.append((np.right_shift, v, 32 - r, v))
        calls.append((np.bitwise_or, v, scratch, v))

    for s in (0, 1):  # offset 0: column round; 1: diagonal round
        for r1, r2 in ((16, 12), (8, 7)):
            update(np.add, a, 0, b, s)
            update(np.bitwise_xor, d, 3 * s, a, 0)
            rotl(d, r1)
            update(np.add, c, 2 * s, d, 3 * s)
            update(np.bitwise_xor, b, s, c, 2 * s)
            rotl(b, r2)
    return calls


def _chacha_lanes(init: np.ndarray, rounds: int) -> np.ndarray:
    """The block function on numpy uint32 lanes: init (16, m) input words -> (m, 16) output."""
    m = init.shape[1]
    out = np.empty((m, 16), dtype=np.uint32)
    width = min(m, _LANE_CHUNK)
    state = np.empty((16, width), dtype=np.uint32)
    scratch = np.empty((4, width), dtype=np.uint32)
    calls = _double_round_calls(state, scratch)
    for lo in range(0, m, _LANE_CHUNK):
        hi = min(lo + _LANE_CHUNK, m)
        if hi - lo != width:  # the last, shorter chunk
            width = hi - lo
            calls = _double_round_calls(state[:, :width], scratch[:, :width])
        x = state[:, :width]
        np.copyto(x, init[:, lo:hi])
        for _ in range(rounds // 2):
            for ufunc, in1, in2, dst in calls:
                ufunc(in1, in2, out=dst)
        np.add(x, init[:, lo:hi], out=out[lo:hi].T)
    return out


def _lane_words(parts, shape) -> np.ndarray:
    """The 16 input words (ints or int64 tensors of 32-bit words) as a (16, m) uint32 array."""
    m = int(torch.Size(shape).numel())
    init = np.empty((16, m), dtype=np.uint32)
    for row, p in zip(init, parts):
        row[:] = p.expand(shape).reshape(m).cpu().numpy() if isinstance(p, torch.Tensor) else p
    return init


# -- 128-bit blocks as int64 pairs -----------------------------------------------------------
def block_words(block: torch.Tensor) -> list:
    """[lo, hi] int64 pairs (shape S+(2,)) -> four 32-bit words, least significant first."""
    lo, hi = block[..., 0], block[..., 1]
    return [lo & M32, (lo >> 32) & M32, hi & M32, (hi >> 32) & M32]


def words_block(w0, w1, w2, w3) -> torch.Tensor:
    """Four 32-bit words (least significant first) -> [lo, hi] int64 pairs."""
    return torch.stack([w0 | (w1 << 32), w2 | (w3 << 32)], dim=-1)


def expand(seeds: torch.Tensor, rounds: int = ROUNDS) -> torch.Tensor:
    """G(s) for a batch of seeds (int64, shape S+(2,)): returns shape S+(4, 2), the four
    128-bit output blocks; [..., 0, :] is the left child and [..., 1, :] the right child."""
    if seeds.dtype != INT64 or seeds.shape[-1:] != (2,):
        raise TypeError("seeds must be int64 tensors of shape (..., 2)")
    if seeds.device.type == "cpu":
        return _expand_lanes(seeds, rounds)
    w = block_words(seeds)
    w[0] = w[0] & ~1  # the control bit is not part of the key
    zero = torch.zeros_like(w[0])
    out = chacha_block([*w, zero, zero, zero, zero], 0, (0, 0), rounds)
    return torch.stack([words_block(*out[..., 4 * i: 4 * i + 4].unbind(-1)) for i in range(4)],
                       dim=-2)


def _expand_lanes(seeds: torch.Tensor, rounds: int) -> torch.Tensor:
    """expand on the CPU, with no per-word conversions: on a little-endian host an int64 [lo, hi]
    pair viewed as uint32 is its four key words k0..k3, and the (m, 16) output words viewed as
    int64 are the four output blocks as [lo, hi] pairs."""
    key = seeds.reshape(-1, 2).contiguous().numpy().view(np.uint32)  # (m, 4)
    init = np.zeros((16, key.shape[0]), dtype=np.uint32)  # k4..k7, counter and nonce are 0
    init[0:4] = np.array(CONSTANTS, dtype=np.uint32)[:, None]
    init[4:8] = key.T
    init[4] &= np.uint32(M32 - 1)  # the control bit is not part of the key
    out = _chacha_lanes(init, rounds)
    return torch.from_numpy(out.view(np.int64)).reshape(*seeds.shape[:-1], 4, 2)
