"""Key files and in-memory keys: round trips through mmap, the one-time stamp, temp-then-rename,
lazy per-chunk checksums, and one test per refusal (each checks the message names the problem)."""
import mmap
import os
import threading
import weakref

import numpy as np
import pytest
import torch

from suf.keys import (KeyFileError, KeyFileReader, KeyFileWriter, MemoryKeys, inspect_key_file,
                      new_dealing_id, sigma_padded_size)
from suf.keys.keyfile import PREAMBLE_SIZE

DEAL = bytes(range(16))
MODEL = bytes(range(100, 132))


def _chunks(n=12, seed=0):
    """n chunks of assorted sizes (chunk 0 empty) as (op, shape, bytes)."""
    rng = np.random.default_rng(seed)
    sizes = [0, 1, 7, 8, 63, 64, 65, 4096] + [int(s) for s in rng.integers(0, 3000, n - 8)]
    return [(f"op{i}[n={s}]", (i, s), rng.bytes(s)) for i, s in enumerate(sizes)]


def _write(path, chunks, party=0, bits=50, meta=None):
    with KeyFileWriter(path, party, bits, DEAL, MODEL, meta or {"model": "test"}) as w:
        for op, shape, data in chunks:
            w.add(op, shape, data)
    return w


def _patch(path, offset, data):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def _flip(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x01]))


# -- round trips -------------------------------------------------------------------------------
def test_round_trip_many_chunks_and_a_large_one(tmp_path):
    path = tmp_path / "p0.keys"
    chunks = _chunks(200)
    big = torch.randint(0, 256, (50_000_000,), dtype=torch.uint8)
    words = torch.arange(-5, 1000, dtype=torch.int64)
    with KeyFileWriter(path, 0, 50, DEAL, MODEL, {"model": "bert", "seq": 128}) as w:
        for op, shape, data in chunks[:100]:
            w.add(op, shape, data)
        w.add("big", (50_000_000,), big)
        w.add("words", (1005,), words.view(torch.uint8))
        w.add("mv", (3,), memoryview(np.array([1, 2, 3], dtype=np.int32)))
        for op, shape, data in chunks[100:]:
            w.add(op, shape, bytearray(data))
    assert sorted(os.listdir(tmp_path)) == ["p0.keys"]
    total = sum(len(c[2]) for c in chunks) + big.numel() + 8 * 1005 + 12
    size = path.stat().st_size
    assert (w.payload_bytes, w.file_bytes, w.overhead_bytes) == (total, size, size - total)

    with KeyFileReader(path, 0, DEAL, MODEL, ring_bits=50) as r:
        assert (r.party, r.ring_bits, r.meta) == (0, 50, {"model": "bert", "seq": 128})
        assert (r.payload_bytes, r.overhead_bytes, r.remaining) == (total, size - total, 203)
        assert all(c.offset % 64 == 0 for c in r.chunks)
        for op, shape, data in chunks[:100]:
            assert r.peek().op == op
            view = r.next(op, shape=shape)
            assert isinstance(view.obj, mmap.mmap) and view.readonly  # a view into the mapping
            assert view == data
        got = r.next_tensor("big")
        assert torch.equal(got, big)
        w64 = r.next_tensor("words", torch.int64, shape=(1005,))
        assert w64.data_ptr() % 64 == 0 and torch.equal(w64, words)
        assert r.next_tensor("mv", torch.int32).tolist() == [1, 2, 3]
        for op, shape, data in chunks[100:]:
            assert r.next(op) == data
        assert r.remaining == 0 and r.peek() is None and r.position == 203
    assert got[-1] == big[-1]  # a tensor handed out outlives close(): the mapping stays while used


def test_empty_file_and_empty_chunks(tmp_path):
    path = tmp_path / "k"
    _write(path, [])
    info = inspect_key_file(path)
    assert (info.chunks, info.payload_bytes, info.used_at_ns) == ((), 0, 0)
    _write(tmp_path / "k2", [("e", (0,), b""), ("f", (), torch.empty(0, dtype=torch.uint8))])
    with KeyFileReader(tmp_path / "k2", 0) as r:
        assert r.next("e") == b""
        assert r.next_tensor("f", torch.int64).shape == (0,)


def test_sigma_padded_size():
    assert [sigma_padded_size(n) for n in (0, 1, 4095, 4096, 4097)] == [4096] * 3 + [8192] * 2
    # sigma_spec §5.2: BERT-base-128 pads 352 bytes, GPT-2-128 1504 bytes
    assert sigma_padded_size(18_075_947_008 - 352) == 18_075_947_008
    assert sigma_padded_size(15_346_094_080 - 1504) == 15_346_094_080
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="payload_bytes"):
            sigma_padded_size(bad)


# -- one-time use ------------------------------------------------------------------------------
def test_used_stamp_is_on_disk_and_refuses_a_second_open(tmp_path):
    path = tmp_path / "k"
    _write(path, _chunks())
    assert inspect_key_file(path).used_at_ns == 0
    r = KeyFileReader(path, 0)
    stamp = inspect_key_file(path).used_at_ns  # stamped at open, before any chunk was read
    assert stamp > 0 and r.position == 0
    r.close()
    for _ in range(2):
        with pytest.raises(KeyFileError, match=r"was already used on \d{4}-.*keys are one-time"):
            KeyFileReader(path, 0)
    with open(path, "rb") as f:  # a fresh handle sees the same stamp
        assert int.from_bytes(f.read(PREAMBLE_SIZE)[160:168], "little") == stamp
    with pytest.warns(UserWarning, match="INSECURE"), \
            KeyFileReader(path, 0, insecure_allow_reuse=True) as r:  # benchmarks only
        assert r.used_before_ns == stamp and r.next("op0[n=0]") == b""
    assert inspect_key_file(path).used_at_ns == stamp  # the first use is kept


def test_deployment_files_are_reused_one_time_files_are_not(tmp_path):
    """A deployment file (masks reused by design) opens any number of times, unstamped; each
    kind of reader refuses the other kind of file."""
    dep, keys = tmp_path / "dep", tmp_path / "keys"
    with KeyFileWriter(dep, 0, 50, DEAL, MODEL, {"names": ["w"]}, kind="deployment") as w:
        w.add("weight-masks", (2,), bytes(16))
    _write(keys, _chunks())
    assert inspect_key_file(dep).meta == {"names": ["w"], "kind": "deployment"}
    for _ in range(3):
        with KeyFileReader(dep, 0, kind="deployment") as r:
            assert r.used_before_ns == 0 and r.next("weight-masks") == bytes(16)
    assert inspect_key_file(dep).used_at_ns == 0  # never stamped
    with pytest.raises(KeyFileError, match="is a deployment file .* not one-time keys"):
        KeyFileReader(dep, 0)
    with pytest.raises(KeyFileError, match="holds one-time keys, not a deployment"):
        KeyFileReader(keys, 0, kind="deployment")
    assert inspect_key_file(keys).used_at_ns == 0  # the refusal left it unused
    KeyFileReader(keys, 0).close()
    with pytest.raises(KeyFileError, match="already used"):
        KeyFileReader(keys, 0)
    with pytest.raises(ValueError, match="kind"):
        KeyFileWriter(tmp_path / "x", 0, 50, DEAL, MODEL, {"kind": "deployment"})
    with pytest.raises(ValueError, match="kind must be"):
        KeyFileReader(keys, 0, kind="reusable")


def test_concurrent_opens_one_wins(tmp_path):
    path = tmp_path / "k"
    _write(path, _chunks())
    results = []

    def opener():
        try:
            KeyFileReader(path, 0).close()
            results.append("ok")
        except KeyFileError:
            results.append("refused")
    threads = [threading.Thread(target=opener) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["ok"] + ["refused"] * 7


def test_refusals_at_open_leave_the_file_unused(tmp_path):
    path = tmp_path / "k"
    _write(path, _chunks(), party=1)
    with pytest.raises(KeyFileError, match="holds party 1's keys, this is party 0"):
        KeyFileReader(path, 0)
    with pytest.raises(KeyFileError, match="another dealing"):
        KeyFileReader(path, 1, dealing_id=bytes(16))
    with pytest.raises(KeyFileError, match="another model"):
        KeyFileReader(path, 1, model_hash=bytes(32))
    with pytest.raises(KeyFileError, match="50-bit ring, expected 37"):
        KeyFileReader(path, 1, ring_bits=37)
    assert inspect_key_file(path).used_at_ns == 0
    with KeyFileReader(path, 1, DEAL, MODEL, ring_bits=50) as r:
        assert r.remaining == 12


# -- temp-then-rename --------------------------------------------------------------------------
def test_unclosed_writer_leaves_no_key_file(tmp_path):
    path = tmp_path / "k"
    w = KeyFileWriter(path, 0, 50, DEAL, MODEL, {})
    w.add("a", (1,), b"x" * 100)
    w._f.flush()
    assert not path.exists()
    (partial,) = tmp_path.iterdir()
    assert partial.name.startswith(".k.") and partial.name.endswith(".partial")
    with pytest.raises(KeyFileError, match="not a suf key file"):
        inspect_key_file(partial)  # a crashed dealer's leftover never looks complete
    w.abort()
    assert list(tmp_path.iterdir()) == []


def test_writer_raising_inside_with_removes_everything(tmp_path):
    path = tmp_path / "k"
    with pytest.raises(RuntimeError, match="dealer crashed"):
        with KeyFileWriter(path, 0, 50, DEAL, MODEL, {}) as w:
            w.add("a", (1,), b"x")
            raise RuntimeError("dealer crashed")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(KeyFileError, match="closed"):
        w.add("b", (1,), b"y")


def test_writer_refuses_to_overwrite(tmp_path):
    path = tmp_path / "k"
    _write(path, _chunks())
    with pytest.raises(FileExistsError, match="overwrite=True"):
        KeyFileWriter(path, 0, 50, DEAL, MODEL, {})
    with KeyFileWriter(path, 1, 37, DEAL, MODEL, {}, overwrite=True) as w:
        w.add("z", (), b"z")
    assert inspect_key_file(path).party == 1


def test_writer_bad_arguments(tmp_path):
    p = tmp_path / "k"
    for args, exc, msg in [((2, 50, DEAL, MODEL), ValueError, "party"),
                           ((True, 50, DEAL, MODEL), ValueError, "party"),
                           ((0, 65, DEAL, MODEL), ValueError, "ring_bits"),
                           ((0, 50, DEAL[:15], MODEL), ValueError, "dealing_id must be 16"),
                           ((0, 50, "x" * 16, MODEL), TypeError, "dealing_id"),
                           ((0, 50, DEAL, MODEL[:31]), ValueError, "model_hash must be 32")]:
        with pytest.raises(exc, match=msg):
            KeyFileWriter(p, *args)
    with pytest.raises(TypeError, match="JSON"):
        KeyFileWriter(p, 0, 50, DEAL, MODEL, {"w": object()})
    assert list(tmp_path.iterdir()) == []
    with KeyFileWriter(p, 0, 50, DEAL, MODEL) as w:
        with pytest.raises(TypeError, match="torch.uint8"):
            w.add("a", (1,), torch.zeros(2, dtype=torch.int64))
        with pytest.raises(TypeError, match="payload must be"):
            w.add("a", (1,), [1, 2])
        with pytest.raises(TypeError, match="op signature"):
            w.add("", (1,), b"")
        with pytest.raises(TypeError, match="shape"):
            w.add("a", (-1,), b"")
    assert inspect_key_file(p).chunks == ()


# -- damaged files -----------------------------------------------------------------------------
def test_not_a_key_file(tmp_path):
    for name, data in [("text", b"hello world\n" * 100), ("empty", b""), ("tiny", b"\x89SU")]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(KeyFileError, match="not a suf key file"):
            KeyFileReader(tmp_path / name, 0)


def test_other_version(tmp_path):
    path = tmp_path / "k"
    _write(path, _chunks())
    _patch(path, 8, (2).to_bytes(4, "little"))
    with pytest.raises(KeyFileError, match="format version 2; this suf reads version 1"):
        KeyFileReader(path, 0)


def test_damaged_header_and_index(tmp_path):
    head, index = tmp_path / "head", tmp_path / "index"
    _write(head, _chunks())
    _flip(head, 30)  # inside the dealing id
    with pytest.raises(KeyFileError, match="damaged header"):
        KeyFileReader(head, 0)
    _write(index, _chunks())
    _flip(index, index.stat().st_size - 5)  # inside the JSON index
    with pytest.raises(KeyFileError, match="damaged index"):
        KeyFileReader(index, 0)


def test_truncated_or_extended_file_is_refused_from_its_size(tmp_path):
    src = tmp_path / "k"
    _write(src, _chunks())
    data = src.read_bytes()
    for cut in (100, PREAMBLE_SIZE, 300, len(data) // 2, len(data) - 1):
        path = tmp_path / f"cut{cut}"
        path.write_bytes(data[:cut])
        with pytest.raises(KeyFileError, match="truncated"):
            KeyFileReader(path, 0)
        assert path.read_bytes() == data[:cut]  # untouched, not stamped
    path = tmp_path / "long"
    path.write_bytes(data + b"\0")
    with pytest.raises(KeyFileError, match=f"{len(data) + 1} bytes, its header says {len(data)}"):
        KeyFileReader(path, 0)


def test_damaged_chunk_is_found_only_when_read(tmp_path):
    path = tmp_path / "k"
    chunks = _chunks()
    _write(path, chunks)
    _flip(path, inspect_key_file(path).chunks[3].offset + 2)
    with KeyFileReader(path, 0) as r:  # opening does not hash the payload
        for op, _, data in chunks[:3]:
            assert r.next(op) == data
        with pytest.raises(KeyFileError, match=r"chunk 3 \(op3\[n=8\]\) is damaged"):
            r.next("op3[n=8]")
        assert r.position == 3


def test_load_reads_every_chunk_into_memory_and_verifies_it(tmp_path):
    path = tmp_path / "k"
    chunks = _chunks()
    _write(path, chunks)
    r = KeyFileReader(path, 0)
    assert r.next(chunks[0][0]) == chunks[0][2]  # load takes what is left
    keys = r.load("cpu")
    with pytest.raises(KeyFileError, match="closed"):
        r.next(chunks[1][0])
    assert (keys.dealing_id, keys.model_hash, keys.meta) == (DEAL, MODEL, {"model": "test"})
    for op, shape, data in chunks[1:]:
        assert bytes(keys.next_tensor(op, shape=shape).numpy()) == data
    assert keys.remaining == 0
    with pytest.raises(KeyFileError, match="already used"):
        KeyFileReader(path, 0)  # the file stays used
    with pytest.warns(UserWarning, match="INSECURE"):
        r = KeyFileReader(path, 0, insecure_allow_reuse=True)
    for op, _, _ in chunks:
        r.next(op)
    assert r.load("cpu").remaining == 0  # nothing left to load
    damaged = tmp_path / "d"
    _write(damaged, chunks)
    _flip(damaged, inspect_key_file(damaged).chunks[5].offset)
    with pytest.raises(KeyFileError, match=r"chunk 5 \(op5\[n=64\]\) is damaged"):
        KeyFileReader(damaged, 0).load("cpu")


# -- reading out of order ----------------------------------------------------------------------
def test_op_mismatch_shape_mismatch_and_reading_past_the_end(tmp_path):
    path = tmp_path / "k"
    _write(path, [("gelu[n=50]", (4, 8), b"a" * 20), ("trunc", (4,), b"b" * 8)])
    with KeyFileReader(path, 0) as r:
        with pytest.raises(KeyFileError, match=r"chunk 0 is op 'gelu\[n=50\]', expected 'silu"):
            r.next("silu[n=50]")
        with pytest.raises(KeyFileError, match=r"input shape \(4, 8\), expected \(8, 4\)"):
            r.next("gelu[n=50]", shape=(8, 4))
        with pytest.raises(KeyFileError, match="20 bytes, not a whole number of torch.int64"):
            r.next_tensor("gelu[n=50]", torch.int64)
        assert r.position == 0  # refusals consume nothing
        assert r.next_tensor("gelu[n=50]", torch.int32).numel() == 5
        assert r.next("trunc") == b"b" * 8
        with pytest.raises(KeyFileError, match="reading past the end: all 2 chunks were used"):
            r.next("trunc")
    with pytest.raises(KeyFileError, match="closed"):
        r.next("trunc")


# -- in memory ---------------------------------------------------------------------------------
def test_memory_keys_round_trip_without_copies():
    meta = {"m": 1, 2: [0.5]}
    keys = MemoryKeys(1, 50, DEAL, MODEL, meta)
    meta["m"] = 3
    assert keys.meta == {"m": 1, "2": [0.5]}  # a JSON copy, as a key file stores it
    t = torch.arange(64, dtype=torch.int64).view(torch.uint8)
    keys.add("a", (2,), b"hello")
    keys.add("b", (8,), t)
    keys.add("c", (0,), memoryview(b""))
    keys.close()
    assert (keys.payload_bytes, keys.overhead_bytes, keys.remaining) == (5 + 512, 0, 3)
    with pytest.raises(KeyFileError, match="closed for writing"):
        keys.add("d", (), b"")
    assert keys.open(1, DEAL, MODEL, ring_bits=50) is keys
    assert keys.next("a", shape=(2,)) == b"hello"
    got = keys.next_tensor("b", torch.int64)
    assert got.data_ptr() == t.data_ptr() and torch.equal(got, torch.arange(64))
    ref = weakref.ref(t)
    del t, got
    assert ref() is None  # the store let go of the chunk once it was handed out
    assert keys.next("c") == b""
    with pytest.raises(KeyFileError, match="reading past the end"):
        keys.next("c")


def test_memory_keys_refusals():
    keys = MemoryKeys(0, 37, DEAL, MODEL)
    keys.add("a", (1,), b"x")
    with pytest.raises(KeyFileError, match="not open"):
        keys.next("a")
    with pytest.raises(KeyFileError, match="still being written"):
        keys.open(0)
    keys.close()
    with pytest.raises(KeyFileError, match="not party 1's keys"):
        keys.open(1)
    with pytest.raises(KeyFileError, match="another dealing"):
        keys.open(0, dealing_id=new_dealing_id())
    with pytest.raises(KeyFileError, match="another model"):
        keys.open(0, model_hash=bytes(32))
    with pytest.raises(KeyFileError, match="37-bit ring"):
        keys.open(0, ring_bits=50)
    keys.open(0)
    with pytest.raises(KeyFileError, match="chunk 0 is op 'a', expected 'b'"):
        keys.next("b")
    with pytest.raises(KeyFileError, match="already used on .*keys are one-time"):
        keys.open(0)
    assert keys.next("a") == b"x"


@pytest.mark.cuda
def test_cuda_payloads(tmp_path):
    dev = torch.device("cuda")
    t = torch.randint(0, 256, (1 << 20,), dtype=torch.uint8, device=dev)
    keys = MemoryKeys(0, 50, DEAL, MODEL)
    keys.add("g", (1,), t)
    keys.add("h", (1,), t)
    keys.close()
    keys.open(0)
    got = keys.next_tensor("g", torch.int64)
    assert got.device.type == "cuda" and got.data_ptr() == t.data_ptr()
    with pytest.raises(TypeError, match="use next_tensor"):
        keys.next("h")
    assert torch.equal(keys.next_tensor("h"), t)  # the refused call consumed nothing
    with KeyFileWriter(tmp_path / "k", 0, 50, DEAL, MODEL) as w:
        w.add("g", (1,), t)
    with KeyFileReader(tmp_path / "k", 0) as r:
        assert torch.equal(r.next_tensor("g").to(dev), t)
    with KeyFileWriter(tmp_path / "l", 0, 50, DEAL, MODEL) as w:
        w.add("g", (1,), t)
        w.add("h", (2,), t[:5])
    loaded = KeyFileReader(tmp_path / "l", 0).load(dev)
    got = loaded.next_tensor("g")
    assert got.device.type == "cuda" and torch.equal(got, t)
    assert torch.equal(loaded.next_tensor("h", shape=(2,)), t[:5])


def test_reserved_at_open_spent_before_the_online_phase(tmp_path):
    """spend_at_open=False (what a serving party uses): the open locks the file against other
    openers and leaves it unstamped; closing without spend() gives it back usable; spend()
    stamps it; load() carries the reservation to the in-memory keys."""
    path = tmp_path / "k"
    _write(path, _chunks())
    r = KeyFileReader(path, 0, spend_at_open=False)
    assert inspect_key_file(path).used_at_ns == 0
    with pytest.raises(KeyFileError, match="in use by another process"):
        KeyFileReader(path, 0)
    r.close()
    assert inspect_key_file(path).used_at_ns == 0  # a failure before use: still usable
    r = KeyFileReader(path, 0, spend_at_open=False)
    keys = r.load("cpu")
    assert inspect_key_file(path).used_at_ns == 0
    keys.spend()
    stamp = inspect_key_file(path).used_at_ns
    assert stamp > 0
    keys.spend()  # idempotent
    assert inspect_key_file(path).used_at_ns == stamp
    keys.reservation.release()
    with pytest.raises(KeyFileError, match="was already used"):
        KeyFileReader(path, 0, spend_at_open=False)
