"""Property-based fuzzing (hypothesis) of the three parsers that read bytes from outside: the key
file reader, the transport's handshake framing (magic, u32 length, JSON) and the hello comparison.

The property everywhere: any input is either accepted as exactly what was written, or refused
with a one-line SufError of the documented kind; never another exception, never a hang, never
an allocation sized by an unchecked length.  Bounded for CI: derandomized, a few hundred
examples per test (docs/security.md has the table)."""
import hashlib
import json
import os
import socket
import struct
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from suf.core.errors import HandshakeError, KeyFileError, PeerError, SufError
from suf.keys import KeyFileReader, KeyFileWriter, inspect_key_file
from suf.keys.keyfile import PREAMBLE_SIZE, _HEADER
from suf.net.transport import MAGIC, MAX_HELLO_BYTES, Transport, _hello_record

# 200 examples per property in CI; SUF_FUZZ_EXAMPLES=N for a long run (docs/security.md)
FUZZ = settings(max_examples=int(os.environ.get("SUF_FUZZ_EXAMPLES", "200")), deadline=None,
                derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
DEAL = bytes(range(16))
MODEL = bytes(range(100, 132))
# chunk sizes: 0, unaligned ones (alignment padding follows) and an aligned one
CHUNKS = [("a", (0,), b""), ("b", (5,), bytes(range(5))), ("c", (64,), bytes(range(64))),
          ("d", (2, 50), bytes(range(100)))]


def _one_line(e: BaseException) -> None:
    msg = str(e)
    assert msg and "\n" not in msg and len(msg) < 1000, repr(msg[:2000])


@pytest.fixture(scope="module")
def keyfile():
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "keys"
        with KeyFileWriter(path, 0, 50, DEAL, MODEL, {"model": "fuzz"}) as w:
            for op, shape, data in CHUNKS:
                w.add(op, shape, data)
        yield Path(d), path.read_bytes()


def _open_all(path: Path) -> list[bytes] | None:
    """Open, stamp and read every chunk (checksums verified); the chunks, or None if refused."""
    try:
        inspect_key_file(path)
        with KeyFileReader(path, 0, DEAL, MODEL, ring_bits=50) as r:
            return [bytes(r.next(op)) for op, _, _ in CHUNKS]
    except KeyFileError as e:
        _one_line(e)
        return None


def _check_mutant(keyfile, data: bytes) -> None:
    d, original = keyfile
    path = d / "mutant"
    path.write_bytes(data)
    got = _open_all(path)
    if got is not None:  # accepted: only if every chunk is what was written
        assert got == [c[2] for c in CHUNKS]
        assert len(data) == len(original)
        # the only bytes a reader may ignore: the used-at stamp (rewritten on open, refused if
        # set) and the zero padding between chunks, which holds no key material
        diff = [i for i in range(len(data)) if data[i] != original[i]]
        info = inspect_key_file(d / "mutant")
        ends = [c.offset + c.nbytes for c in info.chunks]
        padding = [(e, -e % 64 + e) for e in ends]
        assert all(any(a <= i < b for a, b in padding) for i in diff), diff


# -- key files ----------------------------------------------------------------------------------
def test_keyfile_every_truncation_is_refused(keyfile):
    d, original = keyfile
    path = d / "cut"
    for n in range(len(original)):
        path.write_bytes(original[:n])
        with pytest.raises(KeyFileError) as e:
            inspect_key_file(path)
        _one_line(e.value)


@FUZZ
@given(st.data())
def test_keyfile_bit_flips(keyfile, data):
    original = bytearray(keyfile[1])
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(0, len(original) - 1))
        original[pos] ^= 1 << data.draw(st.integers(0, 7))
    assume(bytes(original) != keyfile[1])
    _check_mutant(keyfile, bytes(original))


@FUZZ
@given(st.binary(max_size=2048), st.booleans())
def test_keyfile_random_bytes(keyfile, junk, keep_magic):
    data = (keyfile[1][:8] + junk) if keep_magic else junk
    _check_mutant(keyfile, data)


def _forge(original: bytes, fields: dict, index: bytes | None = None) -> bytes:
    """The file with header fields replaced (and the index, if given), checksums recomputed."""
    head = list(_HEADER.unpack(original[:_HEADER.size]))
    pay_end = head[9] + head[10]
    if index is not None:
        head[11], head[12] = len(index), hashlib.blake2b(index, digest_size=32).digest()
    for i, v in fields.items():
        head[i] = v
    packed = _HEADER.pack(*head)
    pre = packed + hashlib.blake2b(packed, digest_size=32).digest()
    pre += original[len(pre):PREAMBLE_SIZE]
    return pre + original[PREAMBLE_SIZE:pay_end] + (original[pay_end:] if index is None else index)


# field number in _HEADER -> a strategy of values that fit its struct type
HEADER_FIELDS = {0: st.binary(min_size=8, max_size=8), 1: st.integers(0, 2**32 - 1),
                 2: st.integers(0, 2**32 - 1), 3: st.integers(0, 255), 4: st.integers(0, 255),
                 5: st.integers(0, 2**16 - 1), 6: st.integers(0, 2**32 - 1),
                 7: st.binary(min_size=16, max_size=16), 8: st.binary(min_size=32, max_size=32),
                 9: st.integers(0, 2**64 - 1), 10: st.integers(0, 2**64 - 1),
                 11: st.integers(0, 2**64 - 1)}


@FUZZ
@given(st.data())
def test_keyfile_forged_header_with_valid_checksum(keyfile, data):
    """Wrong magic or version, huge declared lengths and counts, other ids: refused even with a
    recomputed header checksum (the index checksum and the file size still tie it down)."""
    original = keyfile[1]
    head = _HEADER.unpack(original[:_HEADER.size])
    keys = data.draw(st.sets(st.sampled_from(sorted(HEADER_FIELDS)), min_size=1, max_size=3))
    fields = {k: data.draw(HEADER_FIELDS[k]) for k in keys}
    assume(any(head[k] != v for k, v in fields.items()))
    forged = _forge(original, fields)
    d = keyfile[0]
    (d / "mutant").write_bytes(forged)
    assert _open_all(d / "mutant") is None


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                    | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)


def _nested(depth: int, leaf="x") -> str:
    return "[" * depth + json.dumps(leaf) + "]" * depth


@FUZZ
@given(st.one_of(
    JSON.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"meta": JSON, "chunks": JSON}).map(lambda v: json.dumps(v).encode()),
    st.integers(1, 100_000).map(lambda n: ('{"meta":{},"chunks":' + _nested(n) + "}").encode()),
    st.integers(1, 100_000).map(lambda n: ('{"meta":' + _nested(n) + ',"chunks":[]}').encode()),
    st.binary(max_size=300)))
def test_keyfile_forged_index_with_valid_checksums(keyfile, index):
    """A forged index (random JSON, deep nesting, wrong types) under valid checksums: refused."""
    d, original = keyfile
    (d / "mutant").write_bytes(_forge(original, {}, index))
    assert _open_all(d / "mutant") is None


# -- the handshake framing and the hello ------------------------------------------------------
OURS = _hello_record(0, {"model": "fuzz", "dealing": "ab" * 8})


def _handshake_with(raw: bytes) -> dict | None:
    """Run P0's handshake against a peer that sends `raw` and closes; the peer hello if accepted,
    None if refused with a one-line PeerError or HandshakeError."""
    a, b = socket.socketpair()
    t = Transport(a, 0, timeout=5)
    try:
        b.sendall(raw)
        b.shutdown(socket.SHUT_WR)
        t._handshake(OURS)
        return t.peer_hello
    except (PeerError, HandshakeError) as e:
        _one_line(e)
        return None
    finally:
        t.close()
        b.close()


def _frame(body: bytes) -> bytes:
    return MAGIC + struct.pack("<I", len(body)) + body


GOOD = json.dumps({**OURS, "party": 1}).encode()


def test_handshake_accepts_the_matching_hello():
    assert _handshake_with(_frame(GOOD)) == {**OURS, "party": 1}


@pytest.mark.parametrize("field,value", [("party", True), ("party", 1.0), ("version", 1.0),
                                         ("version", True), ("party", "1"), ("party", None)])
def test_hello_fixed_fields_must_have_the_right_type(field, value):
    # 1.0 == True == 1 in Python: these were accepted as party 1 / version 1
    assert _handshake_with(_frame(json.dumps({**OURS, "party": 1, field: value}).encode())) is None


@pytest.mark.parametrize("depth", [900, 990, 1000, 5000, 30_000])
def test_hello_nesting_around_the_recursion_limit(depth):
    body = '{"protocol":"suf.net","version":1,"party":1,"model":' + _nested(depth) + "}"
    assert _handshake_with(_frame(body.encode())) is None


@FUZZ
@given(st.one_of(
    st.binary(max_size=600),                                            # garbage
    st.binary(max_size=200).map(lambda b: MAGIC + b),                   # magic, then garbage
    st.integers(0, len(_frame(GOOD)) - 1).map(lambda n: _frame(GOOD)[:n]),  # truncated frames
    st.tuples(st.integers(0, 2 * len(GOOD)), st.binary(max_size=50)).map(  # wrong lengths
        lambda t: MAGIC + struct.pack("<I", t[0]) + GOOD[:t[0]] + t[1])))
def test_handshake_frame_garbage_is_refused(raw):
    got = _handshake_with(raw)
    assert got is None or json.dumps(got, sort_keys=True) == json.dumps({**OURS, "party": 1},
                                                                        sort_keys=True)


@FUZZ
@given(st.integers(MAX_HELLO_BYTES + 1, 2**32 - 1))
def test_handshake_huge_length_is_refused_before_allocating(size):
    # were the length trusted, the record buffer would be up to 4 GiB; it is refused at once
    a, b = socket.socketpair()
    t = Transport(a, 0, timeout=5)
    try:
        b.sendall(MAGIC + struct.pack("<I", size))
        with pytest.raises(HandshakeError, match="more than") as e:
            t._handshake(OURS)
        _one_line(e.value)
    finally:
        t.close()
        b.close()


@FUZZ
@given(st.one_of(
    JSON,                                                              # any JSON value
    st.dictionaries(st.sampled_from(["protocol", "version", "party", "model", "dealing", "x"]),
                    JSON, max_size=6),                                 # right keys, wrong types
    st.fixed_dictionaries({"protocol": st.just("suf.net"), "version": st.just(1),
                           "party": st.just(1), "model": JSON}),        # one field differs
    st.integers(1, 30_000).map(lambda n: json.loads(_nested(min(n, 500)))),
    st.text(min_size=1000, max_size=20_000)))                          # huge strings
def test_hello_values_are_refused_in_one_line(peer):
    body = json.dumps(peer).encode()
    assume(len(body) <= MAX_HELLO_BYTES)
    got = _handshake_with(_frame(body))
    assert got is None or json.dumps(got, sort_keys=True) == json.dumps({**OURS, "party": 1},
                                                                        sort_keys=True)


@FUZZ
@given(st.integers(1, MAX_HELLO_BYTES // 2 - 20), st.sampled_from("[{"),
       st.booleans())
def test_hello_deep_nesting_is_refused(depth, bracket, in_field):
    """Issue 18: a deeply nested hello raised RecursionError; now a HandshakeError."""
    inner = "[" * depth + "]" * depth if bracket == "[" else '{"a":' * depth + "1" + "}" * depth
    body = ('{"protocol":"suf.net","version":1,"party":1,"model":' + inner + "}"
            if in_field else inner).encode()
    assume(len(body) <= MAX_HELLO_BYTES)
    assert _handshake_with(_frame(body)) is None


@pytest.mark.parametrize("field", ["model", "party"])
def test_hello_value_too_deep_to_show_is_refused_in_one_line(field):
    """Found by the long run (SUF_FUZZ_EXAMPLES=12500): json's C decoder reads a value nested
    1986 deep, but json.dumps cannot show it in the mismatch message (RecursionError)."""
    inner = "[" * 1986 + "]" * 1986
    fields = {"protocol": '"suf.net"', "version": "1", "party": "1", "model": '"x"', field: inner}
    body = ("{" + ",".join(f'"{k}":{v}' for k, v in fields.items()) + "}").encode()
    assert _handshake_with(_frame(body)) is None
