"""In-memory keys: the key file's writer and reader API without a file, for a dealer and a party
in one process.  Chunks stay where the dealer made them (a CUDA tensor stays on the GPU), are
handed out once each and dropped as they are read; the store can be opened for use only once."""
from __future__ import annotations

import time

import torch

from suf.core.checks import check_party
from suf.keys.format import (ChunkInfo, ChunkReader, KeyFileError, check_id, check_meta,
                             check_op, check_ring_bits, check_shape, format_time,
                             payload_buffer)


class MemoryKeys(ChunkReader):
    """One party's keys in memory.  The dealer calls `add(...)` per gate and `close()`; the party
    calls `open(party, ...)` once and then `next(op)` / `next_tensor(op, dtype)` per gate.

    A tensor payload is kept as it is, not copied: the dealer must not modify it after `add`.
    Bytes-like payloads are copied.  `device`: where the chunks are kept (default: where the
    dealer made them; "cpu" keeps a GPU dealing's keys in host memory)."""

    def __init__(self, party: int, ring_bits: int, dealing_id: bytes, model_hash: bytes,
                 meta: dict | None = None, device=None):
        self.party = check_party(party)
        self.ring_bits = check_ring_bits(ring_bits)
        self.dealing_id = check_id(dealing_id, 16, "dealing_id")
        self.model_hash = check_id(model_hash, 32, "model_hash")
        self.meta = check_meta({} if meta is None else meta)
        self.device = None if device is None else torch.device(device)  # None: where made
        self._name = f"in-memory keys of party {party}"
        self._chunks: list[ChunkInfo] = []
        self._data: list[torch.Tensor | None] = []
        self._complete = False
        self._used_at_ns = 0
        self.payload_bytes = 0
        self.overhead_bytes = 0
        self.reservation = None  # a key file's, when loaded from one unspent (keyfile.py)

    def spend(self) -> None:
        """Stamp the key file these keys were loaded from used (if it is not yet)."""
        if self.reservation is not None:
            self.reservation.spend()

    @property
    def chunks(self) -> tuple:
        return tuple(self._chunks)

    def add(self, op: str, shape, payload) -> int:
        """Append one gate's key (op signature, the gate's input shape, bytes); return its index."""
        if self._complete:
            raise KeyFileError(f"{self._name} are closed for writing")
        check_op(op)
        shape = check_shape(shape)
        buf = payload_buffer(payload)
        if not isinstance(buf, torch.Tensor):
            buf = (torch.frombuffer(bytearray(buf), dtype=torch.uint8) if buf.nbytes
                   else torch.empty(0, dtype=torch.uint8))
        if self.device is not None:
            buf = buf.to(self.device)
        self._chunks.append(ChunkInfo(op, shape, buf.numel()))
        self._data.append(buf)
        self.payload_bytes += buf.numel()
        return len(self._chunks) - 1

    def close(self) -> None:
        """The dealer is done: no more chunks."""
        self._complete = True

    def open(self, party: int, dealing_id: bytes | None = None, model_hash: bytes | None = None,
             *, ring_bits: int | None = None) -> MemoryKeys:
        """Check that these are the keys the caller expects and take them for use (once)."""
        if check_party(party) != self.party:
            raise KeyFileError(f"{self._name} are not party {party}'s keys")
        if ring_bits is not None and check_ring_bits(ring_bits) != self.ring_bits:
            raise KeyFileError(f"{self._name} are for a {self.ring_bits}-bit ring, expected "
                               f"{ring_bits}")
        if dealing_id is not None and check_id(dealing_id, 16, "dealing_id") != self.dealing_id:
            raise KeyFileError(f"{self._name} are from another dealing ({self.dealing_id.hex()}, "
                               f"expected {dealing_id.hex()})")
        if model_hash is not None and check_id(model_hash, 32, "model_hash") != self.model_hash:
            raise KeyFileError(f"{self._name} are for another model ({self.model_hash.hex()}, "
                               f"expected {model_hash.hex()})")
        if not self._complete:
            raise KeyFileError(f"{self._name} are still being written (close() them first)")
        if self._used_at_ns:
            when = format_time(self._used_at_ns)
            raise KeyFileError(f"{self._name} were already used on {when}; keys are one-time")
        self._used_at_ns = time.time_ns()
        return self

    def _check_open(self) -> None:
        if not self._used_at_ns:
            raise KeyFileError(f"{self._name} are not open: call open(party) first")

    def _take(self, i: int, info: ChunkInfo, cpu: bool) -> torch.Tensor:
        if cpu and self._data[i].device.type != "cpu":
            raise TypeError(f"{self._name}: chunk {i} ({info.op}) lives on {self._data[i].device};"
                            " use next_tensor")
        data, self._data[i] = self._data[i], None  # one-time: the store lets go of it
        return data
