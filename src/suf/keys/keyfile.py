"""Key files: one party's FSS keys for a sequence of gates, one chunk per gate.

Layout (little-endian; docs/keyfiles.md has the full table):
  [0, 256)             preamble: magic, version, party, ring bits, ids, sizes, index checksum,
                       header checksum, and the used-at stamp (the one field written after close)
  [256, 256 + P)       payload: the chunks, each starting at a multiple of 64 bytes
  [256 + P, end)       index: UTF-8 JSON {"meta": ..., "chunks": [{op, shape, offset, length,
                       blake2b}, ...]}, checksummed in the preamble

The writer streams chunks to a temporary file in the target directory, patches the preamble at
`close()` and only then renames the file into place.  The reader refuses a file whose size does not
match its preamble, marks the file used on disk (flushed) before it maps any key material, and
checks each chunk's blake2b-256 when the chunk is handed out.

Two kinds of file, named in the index's meta ("kind", checksummed with the index):
  one-time     (the default; no "kind" in the meta) FSS keys and masks of one dealing: the reader
               stamps the file used and refuses it ever after
  deployment   masks reused by design by every inference of a deployment (a model's weight masks
               r_W, suf.runtime.deployment): opened any number of times, never stamped
A reader asks for the kind it expects and refuses the other one, so a deployment file is never
taken for keys, nor one-time keys for a deployment.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import mmap
import os
import secrets
import struct
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch

from suf.core.checks import check_party
from suf.keys.format import (ChunkInfo, ChunkReader, KeyFileError, check_id, check_meta,
                             check_op, check_ring_bits, check_shape, describe_ids,
                             format_time, payload_buffer, view_bytes)

MAGIC = b"\x89SUFKEY\n"  # high bit and newline catch 7-bit and text-mode mangling
VERSION = 1
PREAMBLE_SIZE = 256
ALIGN = 64  # chunk offsets are multiples of this: viewable as int64 / uint32 tensors in place
DIGEST = 32  # blake2b-256

# magic, version, preamble size, party, ring bits, alignment, chunk count, dealing id,
# model hash, payload offset, payload length, index length, index checksum: bytes [0, 128)
_HEADER = struct.Struct("<8sIIBBHI16s32sQQQ32s")
_HEADER_SUM = slice(_HEADER.size, _HEADER.size + DIGEST)  # blake2b-256 of bytes [0, 128)
_USED_AT = struct.Struct("<Q")  # ns since the epoch of the first use; 0 = never used
_USED_AT_OFFSET = _HEADER_SUM.stop
ONE_TIME, DEPLOYMENT = "one-time", "deployment"  # the kinds of key file
KINDS = (ONE_TIME, DEPLOYMENT)
assert _HEADER.size == 128 and _USED_AT_OFFSET + _USED_AT.size <= PREAMBLE_SIZE


def _digest(data) -> bytes:
    return hashlib.blake2b(data, digest_size=DIGEST).digest()


def _hash_pool() -> ThreadPoolExecutor:
    """Threads that checksum chunks while the caller writes or copies others (hashlib releases
    the GIL): a GPU dealing makes tens of GB of keys, more than one core hashes in seconds."""
    return ThreadPoolExecutor(max_workers=max(1, min(8, (os.cpu_count() or 2) // 2)))


def _check_kind(kind) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return kind


def file_kind(meta: dict) -> str:
    """The kind of a key file from its meta: "deployment" when it says so, else "one-time"."""
    return DEPLOYMENT if meta.get("kind") == DEPLOYMENT else ONE_TIME


def new_dealing_id() -> bytes:
    """A fresh random 16-byte dealing id (both parties' files of one dealing share it)."""
    return os.urandom(16)


# -- writing -----------------------------------------------------------------------------------
def partial_path(path: Path) -> Path:
    """Where a file is written before its rename into place: hidden, named after the writing
    process (so that `sweep_partials` knows when its writer is gone) and a random tag."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.partial")


def open_private(path: Path):
    """A new file (never an existing one) for writing, readable and writable by its owner only
    (mode 0600: key material)."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


def sweep_partials(directory) -> list[Path]:
    """Remove the partial files in `directory` whose writing process is gone (a dealer killed
    while writing); returns what was removed.  Those of a live process are left alone."""
    removed = []
    for f in Path(directory).glob(".*.partial"):
        parts = f.name.split(".")
        pid = int(parts[-3]) if len(parts) >= 4 and parts[-3].isdigit() else None
        if pid is not None and _alive(pid):
            continue
        f.unlink(missing_ok=True)
        removed.append(f)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


class KeyFileWriter:
    """Streams one party's key chunks into `path`; the file appears only when `close()` succeeds.

    Use it as a context manager: leaving the block by an exception deletes the temporary file.
    An existing `path` is refused unless `overwrite=True`.  `kind`: "one-time" (keys) or
    "deployment" (masks every inference of a deployment reuses; recorded in the meta)."""

    def __init__(self, path, party: int, ring_bits: int, dealing_id: bytes, model_hash: bytes,
                 meta: dict | None = None, *, overwrite: bool = False, kind: str = ONE_TIME):
        self.path = Path(path)
        self.party = check_party(party)
        self.ring_bits = check_ring_bits(ring_bits)
        self.dealing_id = check_id(dealing_id, 16, "dealing_id")
        self.model_hash = check_id(model_hash, 32, "model_hash")
        meta = check_meta({} if meta is None else meta)
        if "kind" in meta:
            raise ValueError("the meta key 'kind' is the file's kind: pass kind= instead")
        self.kind = _check_kind(kind)
        self.meta = {**meta, "kind": kind} if kind == DEPLOYMENT else meta
        self.overwrite = bool(overwrite)
        if not overwrite and self.path.exists():
            raise FileExistsError(f"{self.path} exists; pass overwrite=True to replace it")
        self.tmp_path = partial_path(self.path)
        self._f = open_private(self.tmp_path)
        self._f.write(bytes(PREAMBLE_SIZE))  # no magic until close(): a partial file is no key file
        self._pos = PREAMBLE_SIZE
        self._chunks: list[dict] = []
        self._sums: list = []  # each chunk's checksum, computed by the hash pool
        self._pool = _hash_pool()
        self.payload_bytes = 0
        self.file_bytes: int | None = None

    @property
    def overhead_bytes(self) -> int | None:
        """Preamble, alignment padding and index: file bytes that are not key material."""
        return None if self.file_bytes is None else self.file_bytes - self.payload_bytes

    def add(self, op: str, shape, payload) -> int:
        """Append one gate's key (op signature, the gate's input shape, bytes); return its index."""
        if self._f is None:
            raise KeyFileError(f"key file writer for {self.path} is closed")
        check_op(op)
        shape = check_shape(shape)
        buf = payload_buffer(payload)
        if isinstance(buf, torch.Tensor):
            buf = memoryview(buf.cpu().numpy())
        self._write(bytes(-self._pos % ALIGN))
        entry = {"op": op, "shape": list(shape), "offset": self._pos, "length": buf.nbytes}
        self._sums.append(self._pool.submit(_digest, buf))
        self._write(buf)
        self._chunks.append(entry)
        self.payload_bytes += buf.nbytes
        return len(self._chunks) - 1

    def _write(self, data) -> None:
        self._f.write(data)
        self._pos += memoryview(data).nbytes

    def close(self) -> None:
        """Write the index and the preamble, flush to disk, and rename the file into place."""
        if self._f is None:
            raise KeyFileError(f"key file writer for {self.path} is closed")
        try:
            for entry, digest in zip(self._chunks, self._sums):
                entry["blake2b"] = digest.result().hex()
            self._pool.shutdown()
            self._write(bytes(-self._pos % ALIGN))
            index = json.dumps({"meta": self.meta, "chunks": self._chunks}, allow_nan=False,
                               separators=(",", ":")).encode()
            self._write(index)
            header = _HEADER.pack(MAGIC, VERSION, PREAMBLE_SIZE, self.party, self.ring_bits, ALIGN,
                                  len(self._chunks), self.dealing_id, self.model_hash,
                                  PREAMBLE_SIZE, self._pos - len(index) - PREAMBLE_SIZE,
                                  len(index), _digest(index))
            self._f.seek(0)
            self._f.write(header + _digest(header) + _USED_AT.pack(0))
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
            self._f = None
            if not self.overwrite and self.path.exists():
                raise FileExistsError(f"{self.path} appeared while writing; nothing replaced")
            os.replace(self.tmp_path, self.path)
        except BaseException:
            self.abort()
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # make the rename durable
        finally:
            os.close(dir_fd)
        self.file_bytes = self._pos

    def abort(self) -> None:
        """Drop the partial file (nothing is left under `path`)."""
        self._pool.shutdown(cancel_futures=True)
        if self._f is not None:
            self._f.close()
            self._f = None
        self.tmp_path.unlink(missing_ok=True)

    def __enter__(self) -> KeyFileWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        elif self._f is not None:
            self.close()


# -- reading -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeyFileInfo:
    """A validated key file's header and index (no key material)."""
    path: Path
    version: int
    party: int
    ring_bits: int
    dealing_id: bytes
    model_hash: bytes
    meta: dict
    chunks: tuple
    file_bytes: int
    payload_bytes: int
    used_at_ns: int  # 0 if never opened for use

    @property
    def overhead_bytes(self) -> int:
        return self.file_bytes - self.payload_bytes


def _read_info(f, path: Path) -> KeyFileInfo:
    """Validate preamble, size and index of an open key file; reads the index, not the payload."""
    size = os.fstat(f.fileno()).st_size
    f.seek(0)
    pre = f.read(PREAMBLE_SIZE)
    if pre[:len(MAGIC)] != MAGIC:
        raise KeyFileError(f"{path} is not a suf key file (bad magic)")
    if len(pre) < _HEADER.size:
        raise KeyFileError(f"key file {path} is truncated: {size} bytes, shorter than its header")
    (_, version, pre_size, party, bits, align, count, dealing_id, model_hash, pay_off, pay_len,
     idx_len, idx_sum) = _HEADER.unpack(pre[:_HEADER.size])
    if version != VERSION:
        raise KeyFileError(f"key file {path} has format version {version}; this suf reads "
                           f"version {VERSION}")
    if len(pre) < PREAMBLE_SIZE:
        raise KeyFileError(f"key file {path} is truncated: {size} bytes, shorter than its preamble")
    if _digest(pre[:_HEADER.size]) != pre[_HEADER_SUM]:
        raise KeyFileError(f"key file {path} has a damaged header (checksum mismatch)")
    if any(pre[_USED_AT_OFFSET + _USED_AT.size:]):  # reserved: no checksum, so must be zero
        raise KeyFileError(f"key file {path} has a damaged preamble (bytes "
                           f"{_USED_AT_OFFSET + _USED_AT.size}..{PREAMBLE_SIZE - 1} are not zero)")
    if pre_size != PREAMBLE_SIZE or align != ALIGN or pay_off != PREAMBLE_SIZE or pay_len % ALIGN:
        raise KeyFileError(f"key file {path} has an unsupported layout (preamble {pre_size}, "
                           f"alignment {align}, payload at {pay_off}+{pay_len})")
    expected = pay_off + pay_len + idx_len
    if size < expected:
        raise KeyFileError(f"key file {path} is truncated: {size} bytes, its header says "
                           f"{expected}")
    if size > expected:
        raise KeyFileError(f"key file {path} is damaged: {size} bytes, its header says {expected}")
    f.seek(pay_off + pay_len)
    index = f.read(idx_len)
    if _digest(index) != idx_sum:
        raise KeyFileError(f"key file {path} has a damaged index (checksum mismatch)")
    meta, chunks = _parse_index(index, count, pay_off, pay_off + pay_len, path)
    used_at, = _USED_AT.unpack_from(pre, _USED_AT_OFFSET)
    return KeyFileInfo(path, version, party, bits, dealing_id, model_hash, meta, chunks, size,
                       sum(c.nbytes for c in chunks), used_at)


def _parse_index(index: bytes, count: int, start: int, end: int, path: Path):
    def bad(why):
        return KeyFileError(f"key file {path} has an invalid index: {why}")
    try:
        doc = json.loads(index.decode())
        meta, entries = doc["meta"], doc["chunks"]
        chunks = tuple(ChunkInfo(e["op"], tuple(e["shape"]), e["length"], e["offset"],
                                 bytes.fromhex(e["blake2b"])) for e in entries)
    except (ValueError, KeyError, TypeError, RecursionError) as e:  # RecursionError: deep nesting
        raise bad(f"{type(e).__name__}: {e}") from None
    if not isinstance(meta, dict):
        raise bad(f"meta is a {type(meta).__name__}, not a dict")
    if len(chunks) != count:
        raise bad(f"{len(chunks)} chunks listed, header says {count}")
    pos = start
    for i, c in enumerate(chunks):
        ints = (c.offset, c.nbytes, *c.shape)
        if (not isinstance(c.op, str) or not all(type(v) is int and v >= 0 for v in ints)
                or len(c.checksum) != DIGEST or c.offset % ALIGN or c.offset < pos
                or c.offset + c.nbytes > end):
            raise bad(f"chunk {i} entry {c}")
        pos = c.offset + c.nbytes
    return meta, chunks


def inspect_key_file(path) -> KeyFileInfo:
    """Validate a key file and return its header and index, without using (consuming) it."""
    path = Path(path)
    with open(path, "rb") as f:
        return _read_info(f, path)


def _stamp(f) -> None:
    """Write the used-at stamp (now) and flush it to disk."""
    f.seek(_USED_AT_OFFSET)
    f.write(_USED_AT.pack(time.time_ns()))
    f.flush()
    os.fsync(f.fileno())


class Reservation:
    """A one-time key file opened but not yet spent: its open handle holds the exclusive lock
    (no other process can open it meanwhile); `spend()` stamps it used, `release()` gives it
    back unused (a failure before the first online exchange leaves the keys usable)."""

    def __init__(self, f, name: str):
        self._f, self._name = f, name
        self.spent = False

    def spend(self) -> None:
        if not self.spent:
            _stamp(self._f)
            self.spent = True

    def release(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


class KeyFileReader(ChunkReader):
    """One party's view of a key file: memory-mapped, one-time, chunks handed out in order.

    Opening validates the file (magic, version, party, ring bits and ids if given, index checksum,
    size) and then stamps it used on disk before any key material is returned; a second open is
    refused.  `kind="deployment"` opens a deployment file (masks reused by design), which is
    never stamped; each kind refuses a file of the other.  `insecure_allow_reuse=True`
    (benchmarks only: re-using FSS keys leaks the difference of the inputs they were used on)
    opens a used one-time file anyway, with a warning.
    """

    def __init__(self, path, party: int, dealing_id: bytes | None = None,
                 model_hash: bytes | None = None, *, ring_bits: int | None = None,
                 insecure_allow_reuse: bool = False, kind: str = ONE_TIME,
                 spend_at_open: bool = True):
        path = Path(path)
        check_party(party)
        _check_kind(kind)
        self._name = f"key file {path}"
        self._pos = 0
        self._closed = True
        self.reservation: Reservation | None = None
        try:
            f = open(path, "r+b")
        except PermissionError:
            raise KeyFileError(f"{self._name} is not writable: cannot mark it used") from None
        with contextlib.ExitStack() as keep:
            keep.enter_context(f)
            info = _read_info(f, path)
            if info.party != party:
                raise KeyFileError(f"{self._name} holds party {info.party}'s keys, this is "
                                   f"party {party}")
            if ring_bits is not None and info.ring_bits != check_ring_bits(ring_bits):
                raise KeyFileError(f"{self._name} is for a {info.ring_bits}-bit ring, expected "
                                   f"{ring_bits}")
            if dealing_id is not None and info.dealing_id != check_id(dealing_id, 16, "dealing_id"):
                raise KeyFileError(f"{self._name} is from another dealing "
                                   f"({info.dealing_id.hex()}, expected {dealing_id.hex()})")
            if model_hash is not None and info.model_hash != check_id(model_hash, 32, "model_hash"):
                raise KeyFileError(f"{self._name} is for another model ({info.model_hash.hex()}, "
                                   f"expected {model_hash.hex()})")
            have = file_kind(info.meta)
            if have != kind:
                raise KeyFileError(
                    f"{self._name} is a deployment file (masks reused by design), not one-time "
                    "keys" if have == DEPLOYMENT else
                    f"{self._name} holds one-time keys, not a deployment")
            self.kind = kind
            self.used_before_ns = 0
            if kind == ONE_TIME:
                self.used_before_ns = self._reserve(f, insecure_allow_reuse)
                if spend_at_open:
                    if not self.used_before_ns:  # a reused file keeps its first stamp
                        _stamp(f)
                else:  # the caller spends it (spend()) right before the first online exchange
                    self.reservation = Reservation(f, self._name)
                    self.reservation.spent = bool(self.used_before_ns)
                    keep.pop_all()
            self._mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        if len(self._mm) != info.file_bytes:
            self._mm.close()
            if self.reservation is not None:
                self.reservation.release()
            raise KeyFileError(f"{self._name} changed size while being opened")
        self._view = memoryview(self._mm)
        self.info = info
        self._chunks = list(info.chunks)
        self._closed = False

    def _reserve(self, f, allow_reuse: bool) -> int:
        """Take the file's exclusive lock (released when f closes; another process holding it is
        refused at once) and refuse a used file; return its earlier stamp."""
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise KeyFileError(f"{self._name} is in use by another process") from None
        f.seek(_USED_AT_OFFSET)
        used_at, = _USED_AT.unpack(f.read(_USED_AT.size))
        if used_at and not allow_reuse:
            raise KeyFileError(f"{self._name} was already used on {format_time(used_at)}; keys are "
                               "one-time (deal fresh keys)")
        if used_at:
            warnings.warn(f"INSECURE: {self._name} was already used on {format_time(used_at)} "
                          "and is opened again (insecure_allow_reuse): reusing one-time keys "
                          "reveals the difference of the inputs; benchmarks only", stacklevel=3)
        return used_at

    def spend(self) -> None:
        """Stamp the file used now (opened with spend_at_open=False; idempotent)."""
        if self.reservation is not None:
            self.reservation.spend()

    # the header, for the caller's own checks
    party = property(lambda self: self.info.party)
    ring_bits = property(lambda self: self.info.ring_bits)
    dealing_id = property(lambda self: self.info.dealing_id)
    model_hash = property(lambda self: self.info.model_hash)
    meta = property(lambda self: self.info.meta)
    chunks = property(lambda self: self.info.chunks)
    payload_bytes = property(lambda self: self.info.payload_bytes)
    overhead_bytes = property(lambda self: self.info.overhead_bytes)

    def load(self, device) -> ChunkReader:
        """Read every remaining chunk now, checksums verified, into memory on `device` (a GPU
        party's keys then sit in GPU memory and the online phase touches no file), and close
        this reader.  Returns the keys as an opened `MemoryKeys`, read in the same order."""
        from suf.keys.memory import MemoryKeys

        self._check_open()
        device = torch.device(device)
        store = MemoryKeys(self.party, self.ring_bits, self.dealing_id, self.model_hash,
                           self.meta, device=device)
        first, todo = self._pos, self._chunks[self._pos:]
        views = [self._view[c.offset:c.offset + c.nbytes] for c in todo]
        v = data = None
        with _hash_pool() as pool:  # checksums in the background while the chunks are copied
            sums = [pool.submit(_digest, v) for v in views]
            for c, v in zip(todo, views):
                data = view_bytes(v, torch.uint8)
                store.add(c.op, c.shape, data.clone() if device.type == "cpu" else data)
            for i, (c, digest) in enumerate(zip(todo, sums)):
                if digest.result() != c.checksum:
                    raise KeyFileError(f"{self._name}: chunk {first + i} ({c.op}) is damaged "
                                       "(checksum mismatch)")
        del views, v, data  # the views of the mapping, before close() unmaps it
        self._pos = len(self._chunks)
        store.close()
        store.reservation, self.reservation = self.reservation, None  # the lock goes along
        self.close()
        return store.open(self.party)

    def _take(self, i: int, info: ChunkInfo, cpu: bool) -> memoryview:
        view = self._view[info.offset:info.offset + info.nbytes]
        if _digest(view) != info.checksum:
            raise KeyFileError(f"{self._name}: chunk {i} ({info.op}) is damaged (checksum "
                               "mismatch)")
        return view

    def close(self) -> None:
        """Unmap the file (the mapping lives on while chunks handed out are still referenced);
        an unspent reservation is released: the keys stay usable."""
        if self.reservation is not None:
            self.reservation.release()
            self.reservation = None
        if self._closed:
            return
        self._closed = True
        self._view.release()
        try:
            self._mm.close()
        except BufferError:
            pass  # views handed out still export the mapping; it is unmapped when they are freed
        self._mm = None

    def __enter__(self) -> KeyFileReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        i = self.info
        return (f"KeyFileReader({i.path}, party {i.party}, {i.ring_bits}-bit, "
                f"{describe_ids(i.dealing_id, i.model_hash)}, "
                f"{self.position}/{len(i.chunks)} chunks read)")
