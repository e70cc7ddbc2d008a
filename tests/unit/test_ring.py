import random

import pytest
import torch

from suf.core.ring import Ring, pack, packed_size, unpack


def _stream_bytes(values, bits, size):
    stream = 0
    for i, v in enumerate(values):
        stream |= (v % 2**64) << (bits * i)
    return stream.to_bytes(size, "little")


@pytest.mark.parametrize("bits,type_bytes", [(1, 8), (2, 8), (3, 8), (7, 1), (8, 1), (8, 8),
                                             (13, 2), (16, 2), (31, 4), (32, 4), (33, 8),
                                             (37, 8), (50, 8), (57, 8), (58, 8), (63, 8),
                                             (64, 8)])
@pytest.mark.parametrize("n", [0, 1, 31, 32, 33, 100, 777])
def test_pack_is_little_endian_bit_stream(bits, type_bytes, n):
    x = torch.randint(-2**63, 2**63 - 1, (n,), dtype=torch.int64)
    if bits < 64:
        x &= (1 << bits) - 1
    buf = pack(x, bits, type_bytes)
    size = packed_size(bits, n, type_bytes)
    assert buf.dtype == torch.uint8 and buf.numel() == size
    assert bytes(buf.tolist()) == _stream_bytes(x.tolist(), bits, size)
    assert torch.equal(unpack(buf, bits, n, type_bytes), x)


def test_packed_sizes_follow_sigma_rule():
    # b in {1,2}: 32-bit words; 2 < b < 8|T|: 64-bit words; b = 8|T|: N|T| bytes (spec §1.5)
    assert packed_size(1, 33) == 8
    assert packed_size(2, 16) == 4
    assert packed_size(50, 3) == 24 and packed_size(50, 64) == 400
    assert packed_size(8, 5, 1) == 5 and packed_size(16, 5, 2) == 10 and packed_size(64, 5) == 40
    assert packed_size(8, 5, 8) == 8  # 8 bits in a u64 type are tight-packed in 64-bit words
    with pytest.raises(ValueError):
        packed_size(9, 4, 1)


def test_unpack_rejects_wrong_sizes():
    with pytest.raises(ValueError, match="expected"):
        unpack(torch.zeros(7, dtype=torch.uint8), 50, 2)
    with pytest.raises(TypeError):
        unpack(torch.zeros(8, dtype=torch.int64), 50, 1)


@pytest.mark.parametrize("bits", [1, 13, 37, 50, 63, 64])
def test_wrap_and_signed(bits):
    r = Ring(bits)
    vals = [0, 1, -1, 2**(bits - 1) - 1, -2**(bits - 1), 2**bits - 1 if bits < 64 else -1, 12345]
    x = torch.tensor([v % 2**64 - (2**64 if v % 2**64 >= 2**63 else 0) for v in vals])
    w = r.wrap(x)
    for got, v in zip(w.tolist(), vals):
        assert got % 2**64 == v % 2**bits or bits == 64
    for got, v in zip(r.signed(w).tolist(), vals):
        m = v % 2**bits
        assert got == (m - 2**bits if m >= 2**(bits - 1) else m)


def test_wrapping_arithmetic_matches_python_ints():
    r = Ring(50)
    a = [random.randrange(2**50) for _ in range(1000)]
    b = [random.randrange(2**50) for _ in range(1000)]
    ta, tb = torch.tensor(a), torch.tensor(b)
    assert r.wrap(ta * tb).tolist() == [(x * y) % 2**50 for x, y in zip(a, b)]
    assert r.wrap(ta - tb).tolist() == [(x - y) % 2**50 for x, y in zip(a, b)]


def test_fixed_point_floor_semantics():
    r = Ring(50)
    enc = r.encode(torch.tensor([1.5, -1.5, -0.0001, 0.0001, -3.0]), 12)
    assert r.signed(enc).tolist() == [6144, -6144, -1, 0, -12288]
    assert r.decode(enc, 12).tolist() == [1.5, -1.5, -1 / 4096, 0.0, -3.0]
    with pytest.raises(ValueError):
        r.encode(torch.tensor([2.0**40]), 12)
    with pytest.raises(ValueError):
        Ring(65)
    with pytest.raises(TypeError):
        r.wrap(torch.zeros(3, dtype=torch.int32))


@pytest.mark.cuda
def test_pack_kernels_equal_the_torch_packing():
    """On CUDA, widths that are not whole bytes pack and unpack through suf.core.ring_kernels: same
    bytes as the CPU's torch code for every width and awkward counts, also from misaligned
    slices of a larger buffer (as a key parser hands them out)."""
    gen = torch.Generator().manual_seed(5)
    for bits in range(1, 65):
        for count in (0, 1, 2, 31, 32, 33, 63, 64, 65, 1000, 4097):
            x = torch.randint(-2**63, 2**63 - 1, (count,), dtype=torch.int64, generator=gen)
            want = pack(x, bits)
            got = pack(x.cuda(), bits)
            assert torch.equal(got.cpu(), want), (bits, count)
            back = unpack(got, bits, count)
            assert torch.equal(back.cpu(), unpack(want, bits, count)), (bits, count)
            assert torch.equal(back.cpu(), x & ((1 << bits) - 1) if bits < 64 else x)
            shifted = torch.cat([torch.zeros(3, dtype=torch.uint8), want]).cuda()[3:]
            assert torch.equal(unpack(shifted, bits, count).cpu(), back.cpu())
