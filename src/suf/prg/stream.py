"""The dealer's random stream: ChaCha12 keyed by a 256-bit master key, counter = block index,
nonce = (stream id, 0) (suf.prg.chacha describes the layout).  On CUDA one Triton launch makes the
blocks (suf.prg.kernels); elsewhere the torch block function does, with identical bits.
"""
from __future__ import annotations

import os

import torch

from suf.prg import kernels
from suf.prg.chacha import INT64, chacha_block

class Stream:
    """Deterministic cryptographic randomness: ChaCha12 keyed by a 32-byte master key.

    Each call draws the next blocks of the stream, so a dealer that makes the same calls in the same
    order gets the same values on any device.  Use `Stream.from_os()` for real dealings.
    """

    def __init__(self, key: bytes, stream_id: int = 0, device="cpu"):
        if not isinstance(key, (bytes, bytearray)) or len(key) != 32:
            raise ValueError("a Stream key must be 32 bytes")
        if not 0 <= stream_id < 2**32:
            raise ValueError("stream id must fit in 32 bits")
        self.key = bytes(key)
        self.key_words = [int.from_bytes(key[4 * i: 4 * i + 4], "little") for i in range(8)]
        self.stream_id = stream_id
        self.device = torch.device(device)
        self.block_counter = 0

    @classmethod
    def from_os(cls, stream_id: int = 0, device="cpu") -> "Stream":
        return cls(os.urandom(32), stream_id, device)

    def words64(self, count: int) -> torch.Tensor:
        """`count` uniformly random 64-bit values (int64 bit patterns)."""
        nblocks = -(-count // 8)
        start = self.block_counter
        self.block_counter += nblocks
        words = kernels.chacha_stream(self.key_words, start, nblocks, self.stream_id, self.device)
        if words is None:
            ctr = torch.arange(start, start + nblocks, dtype=INT64, device=self.device)
            kw = [torch.tensor(k, dtype=INT64, device=self.device) for k in self.key_words]
            out = chacha_block(kw, ctr, (self.stream_id, 0))  # (nblocks, 16)
            words = out[:, 0::2] | (out[:, 1::2] << 32)
        return words.reshape(-1)[:count]

    def ring(self, shape, bits: int) -> torch.Tensor:
        """Uniform elements of Z_{2^bits} in a tensor of the given shape."""
        shape = tuple(shape) if not isinstance(shape, int) else (shape,)
        n = 1
        for s in shape:
            n *= s
        v = self.words64(n).reshape(shape)
        return v if bits == 64 else v & ((1 << bits) - 1)

    def bits(self, shape) -> torch.Tensor:
        return self.ring(shape, 1)

    def blocks(self, shape) -> torch.Tensor:
        """Uniform 128-bit blocks, shape + (2,)."""
        shape = tuple(shape) if not isinstance(shape, int) else (shape,)
        return self.ring(shape + (2,), 64)
