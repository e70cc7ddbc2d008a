"""The project's PRG: ChaCha12 (Bernstein's ChaCha with 12 rounds), one specification for CPU and GPU.

Everything here is plain torch on int64 tensors, so the same code runs on CPU and CUDA and gives
identical bits on both; a fused Triton kernel for the DPF tree walk (suf.fss) is tested against it.

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
    lanes32: compute in int32 lanes (wrapping adds, ~8x faster on the CPU); default: on the CPU
    only (CUDA keeps the int64 lanes, and its hot paths run the Triton kernels of suf.fss).
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
        return _chacha_int32(parts, shape, ref.device, rounds)
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


def _to_int32(v):
    """A 32-bit word (int, or int64 tensor in [0, 2^32)) as the int32 with the same bits."""
    if isinstance(v, torch.Tensor):
        return (v - ((v >> 31) << 32)).to(torch.int32)
    return v - (1 << 32) if v >= 1 << 31 else v


def _rotl32(x: torch.Tensor, r: int) -> torch.Tensor:
    return (x << r) | ((x >> (32 - r)) & ((1 << r) - 1))  # >> is arithmetic on int32: mask it


def _quarter4(a, b, c, d):
    """Four quarter rounds at once: a, b, c, d are (4, M) rows of the state (in place on a, c)."""
    a += b
    d = _rotl32(d ^ a, 16)
    c += d
    b = _rotl32(b ^ c, 12)
    a += b
    d = _rotl32(d ^ a, 8)
    c += d
    b = _rotl32(b ^ c, 7)
    return a, b, c, d


def _chacha_int32(parts, shape, device, rounds: int) -> torch.Tensor:
    """chacha_block in int32 lanes: adds wrap mod 2^32 natively, and the state is one (16, M)
    tensor whose column round works on rows 0-3 / 4-7 / 8-11 / 12-15 together; the diagonal
    round rotates rows 4-7, 8-11, 12-15 by 1, 2, 3 first (and back after)."""
    m = int(torch.Size(shape).numel())
    init = torch.stack([_to_int32(p).expand(shape).reshape(m) if isinstance(p, torch.Tensor)
                        else torch.full((m,), _to_int32(p), dtype=torch.int32, device=device)
                        for p in parts])
    a, b, c, d = init.clone().split(4)
    for _ in range(rounds // 2):
        a, b, c, d = _quarter4(a, b, c, d)
        b, c, d = b.roll(-1, 0), c.roll(-2, 0), d.roll(-3, 0)
        a, b, c, d = _quarter4(a, b, c, d)
        b, c, d = b.roll(1, 0), c.roll(2, 0), d.roll(3, 0)
    out = torch.cat([a, b, c, d]) + init
    return (out.T.to(INT64) & M32).reshape(*shape, 16)


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
    w = block_words(seeds)
    w[0] = w[0] & ~1  # the control bit is not part of the key
    zero = torch.zeros_like(w[0])
    out = chacha_block([*w, zero, zero, zero, zero], 0, (0, 0), rounds)
    return torch.stack([words_block(*out[..., 4 * i: 4 * i + 4].unbind(-1)) for i in range(4)],
                       dim=-2)
