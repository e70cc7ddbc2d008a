"""What key files and in-memory keys share: the error type, chunk descriptions, argument checks,
the reading API, and SIGMA's key-size convention.  The byte layout is in docs/keyfiles.md."""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone

import torch

from suf.core.errors import KeyFileError

SIGMA_PAD = 4096  # SIGMA pads each party's key buffer to a multiple of this (sigma_spec §1.4)



@dataclass(frozen=True)
class ChunkInfo:
    """One gate's key: op signature, the gate's input shape, payload size in bytes; for a key file
    also its absolute byte offset and its blake2b-256 checksum."""
    op: str
    shape: tuple
    nbytes: int
    offset: int | None = None
    checksum: bytes | None = None


def sigma_padded_size(payload_bytes: int) -> int:
    """SIGMA's reported key size: the payload zero-padded to the next multiple of 4096 bytes, a
    full 4096 bytes more if it is already a multiple (`SIGMAKeygen::close`)."""
    if isinstance(payload_bytes, bool) or not isinstance(payload_bytes, int) or payload_bytes < 0:
        raise ValueError(f"payload_bytes must be a non-negative int, got {payload_bytes!r}")
    return payload_bytes + SIGMA_PAD - payload_bytes % SIGMA_PAD


# -- argument checks ---------------------------------------------------------------------------

def check_ring_bits(bits) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 64:
        raise ValueError(f"ring_bits must be an int in [1, 64], got {bits!r}")
    return bits


def check_id(value, size: int, what: str) -> bytes:
    if not isinstance(value, (bytes, bytearray)):
        raise TypeError(f"{what} must be {size} bytes, got {type(value).__name__}")
    if len(value) != size:
        raise ValueError(f"{what} must be {size} bytes, got {len(value)}")
    return bytes(value)


def check_meta(meta) -> dict:
    if not isinstance(meta, dict):
        raise TypeError(f"meta must be a dict, got {type(meta).__name__}")
    try:
        text = json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise TypeError(f"meta must be JSON-serialisable (no pickle in key files): {e}") from None
    return json.loads(text)  # a copy, as a reader will see it


def check_op(op) -> str:
    if not isinstance(op, str) or not op:
        raise TypeError(f"op signature must be a non-empty str, got {op!r}")
    return op


def check_shape(shape) -> tuple:
    if not isinstance(shape, (tuple, list, torch.Size)) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise TypeError(f"shape must be a tuple of non-negative ints, got {shape!r}")
    return tuple(shape)


def payload_buffer(payload) -> memoryview | torch.Tensor:
    """The payload as a flat byte memoryview (bytes-like) or a flat contiguous uint8 tensor."""
    if isinstance(payload, torch.Tensor):
        if payload.dtype != torch.uint8:
            raise TypeError(f"a tensor payload must be torch.uint8, got {payload.dtype} "
                            "(pass t.contiguous().view(torch.uint8))")
        return payload.contiguous().reshape(-1)
    if isinstance(payload, (bytes, bytearray, memoryview)):
        view = memoryview(payload)
        if not view.c_contiguous:
            raise TypeError("a memoryview payload must be C-contiguous")
        return view.cast("B") if view.format != "B" or view.ndim != 1 else view
    raise TypeError("payload must be bytes, bytearray, memoryview or a torch.uint8 tensor, "
                    f"got {type(payload).__name__}")


def format_time(ns: int) -> str:
    """A time stamp (ns since the epoch) as ISO 8601 UTC, to the second."""
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).isoformat(timespec="seconds")


def describe_ids(dealing_id: bytes, model_hash: bytes) -> str:
    return f"dealing {dealing_id.hex()}, model {model_hash.hex()[:16]}…"


# -- the reading API ---------------------------------------------------------------------------
class ChunkReader:
    """Hands out a fixed sequence of chunks once each, in order.  Subclasses provide `_chunks`
    (list of ChunkInfo), `_name` (for messages) and `_take(i, info, cpu)` (the chunk's bytes as a
    memoryview or flat uint8 tensor, after any integrity check, on the CPU if `cpu`; it raises
    rather than hand out a chunk it cannot)."""

    _chunks: list
    _name: str
    _pos: int = 0
    _closed: bool = False

    @property
    def remaining(self) -> int:
        """Chunks not yet handed out."""
        return len(self._chunks) - self._pos

    @property
    def position(self) -> int:
        """Index of the next chunk."""
        return self._pos

    def spend(self) -> None:
        """Mark one-time keys used right before their first online use (a key file opened with
        spend_at_open=False does; by default there is nothing left to mark)."""

    def peek(self) -> ChunkInfo | None:
        """The next chunk's description (None at the end); reads no key material."""
        self._check_open()
        return self._chunks[self._pos] if self._pos < len(self._chunks) else None

    def _advance(self, op: str, shape, cpu: bool) -> object:
        self._check_open()
        check_op(op)
        i = self._pos
        if i >= len(self._chunks):
            raise KeyFileError(f"{self._name}: reading past the end: all {len(self._chunks)} "
                               f"chunks were used, asked for one more ({op!r})")
        info = self._chunks[i]
        if info.op != op:
            raise KeyFileError(f"{self._name}: chunk {i} is op {info.op!r}, expected {op!r} "
                               "(keys dealt for another graph or read out of order)")
        if shape is not None and tuple(shape) != info.shape:
            raise KeyFileError(f"{self._name}: chunk {i} ({op}) is for input shape {info.shape}, "
                               f"expected {tuple(shape)}")
        data = self._take(i, info, cpu)
        self._pos = i + 1
        return data

    def next(self, op: str, shape=None) -> memoryview:
        """The next chunk's bytes, checking its op signature (and input shape, if given)."""
        data = self._advance(op, shape, cpu=True)
        return memoryview(data.numpy()) if isinstance(data, torch.Tensor) else data

    def next_tensor(self, op: str, dtype: torch.dtype = torch.uint8, shape=None) -> torch.Tensor:
        """The next chunk as a flat tensor of `dtype`, without a copy where possible.  A chunk of
        a key file views the read-only mapping: never modify it in place (clone or .to() it)."""
        if not isinstance(dtype, torch.dtype):
            raise TypeError(f"dtype must be a torch.dtype, got {dtype!r}")
        info = self.peek()
        item = dtype.itemsize
        if info is not None and info.op == op and info.nbytes % item:
            raise KeyFileError(f"{self._name}: chunk {self._pos} ({op}) has {info.nbytes} bytes, "
                               f"not a whole number of {dtype} elements")
        data = self._advance(op, shape, cpu=False)
        if isinstance(data, torch.Tensor):
            if data.storage_offset() % item:
                data = data.clone()
            return data.view(dtype)
        return view_bytes(data, dtype)

    def _check_open(self) -> None:
        if self._closed:
            raise KeyFileError(f"{self._name} is closed")


def view_bytes(view: memoryview, dtype: torch.dtype) -> torch.Tensor:
    """A flat tensor over a (possibly read-only) byte memoryview, no copy."""
    if len(view) == 0:
        return torch.empty(0, dtype=dtype)
    with warnings.catch_warnings():
        # torch warns that the buffer is not writable: the caller was told not to write to it
        warnings.filterwarnings("ignore", message="The given buffer is not writable")
        return torch.frombuffer(view, dtype=dtype)
