import pytest
import torch

from suf.core.linalg import limb_matmul, limb_plan, ring_matmul

BITS = [1, 16, 17, 37, 50, 51, 63, 64]
SHAPES = [((3, 5), (5, 4)),            # plain
          ((4, 1), (1, 3)),            # K = 1
          ((1, 6), (6, 1)),            # row times column
          ((2, 3, 4, 5), (5, 2)),      # batch dims on a only
          ((4, 7), (3, 7, 2)),         # batch dims on b only
          ((2, 1, 3, 4), (3, 4, 2))]   # broadcast batch dims
MATMULS = [ring_matmul, limb_matmul]


def _full(shape, gen):
    return torch.randint(-2**63, 2**63 - 1, shape, dtype=torch.int64, generator=gen)


def _reference(a, b, bits):
    """(a @ b) mod 2^bits with Python ints, as int64 bit patterns."""
    batch = torch.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    xs = a.expand(*batch, m, k).reshape(-1, m, k).tolist()
    ys = b.expand(*batch, k, n).reshape(-1, k, n).tolist()
    vals = [sum(x[i][t] * y[t][j] for t in range(k)) % 2**bits
            for x, y in zip(xs, ys) for i in range(m) for j in range(n)]
    vals = [v - 2**64 if v >= 2**63 else v for v in vals]
    return torch.tensor(vals, dtype=torch.int64).reshape(*batch, m, n)


@pytest.mark.parametrize("matmul", MATMULS)
@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("sa,sb", SHAPES)
def test_random_any_int64_matches_python_ints(matmul, bits, sa, sb):
    gen = torch.Generator().manual_seed(bits * 1000 + len(sa) * 10 + sa[-1])
    a, b = _full(sa, gen), _full(sb, gen)
    assert torch.equal(matmul(a, b, bits), _reference(a, b, bits))


@pytest.mark.parametrize("matmul", MATMULS)
@pytest.mark.parametrize("bits", BITS)
def test_ring_elements_and_extremes(matmul, bits):
    gen = torch.Generator().manual_seed(bits)
    top = (1 << bits) - 1 if bits < 64 else -1          # 2^bits - 1 (all ones for 64)
    a = _full((3, 9), gen)
    b = _full((9, 4), gen)
    if bits < 64:
        a, b = a & top, b & top
    a[0], b[:, 0] = top, top                            # a full row/column of 2^bits - 1
    a[1, ::2] = 0
    out = matmul(a, b, bits)
    assert torch.equal(out, _reference(a, b, bits))
    assert int(out[0, 0]) == 9 % 2**bits              # 9·(2^n − 1)^2 = 9 mod 2^n
    if bits < 64:
        assert bool(((out >= 0) & (out <= top)).all())


@pytest.mark.parametrize("matmul", MATMULS)
@pytest.mark.parametrize("bits", [1, 37, 50, 64])
def test_non_contiguous_inputs(matmul, bits):
    gen = torch.Generator().manual_seed(7)
    a = _full((2, 8, 10), gen)[:, ::2, 1::3]            # (2, 4, 3), strided
    b = _full((5, 3), gen).t()[:, 1:]                   # (3, 4), transposed
    assert not a.is_contiguous() and not b.is_contiguous()
    assert torch.equal(matmul(a, b, bits), _reference(a, b, bits))
    assert torch.equal(matmul(a, b, bits), matmul(a.contiguous(), b.contiguous(), bits))


@pytest.mark.parametrize("matmul", MATMULS)
def test_empty_dimensions(matmul):
    a, b = torch.ones(4, 0, dtype=torch.int64), torch.ones(0, 3, dtype=torch.int64)
    assert torch.equal(matmul(a, b, 50), torch.zeros(4, 3, dtype=torch.int64))
    assert matmul(torch.ones(0, 2, dtype=torch.int64), torch.ones(2, 3, dtype=torch.int64),
                  50).shape == (0, 3)


@pytest.mark.parametrize("bits", range(1, 65))
@pytest.mark.parametrize("k", [1, 64, 768, 3072, 4096, 10**5, 10**7])
def test_plan_is_exact_and_uses_fewest_limbs(bits, k):
    limbs, width, chunk = limb_plan(bits, k)
    assert width * limbs >= bits and width * (limbs - 1) < bits
    assert limbs * chunk * ((1 << width) - 1) ** 2 <= 2**53 < limbs * (chunk + 1) * ((1 << width) - 1) ** 2
    widest = -(-bits // 16)
    assert 1 <= limbs <= widest
    assert chunk >= k or limbs == widest
    if limbs > 1:  # one limb fewer would not have fit k in one chunk
        w = -(-bits // (limbs - 1))
        assert (limbs - 1) * k * ((1 << w) - 1) ** 2 > 2**53


def test_plan_for_bert_shapes():
    assert limb_plan(50, 768)[:2] == (3, 17) and limb_plan(50, 3072)[:2] == (3, 17)  # 6 products
    assert limb_plan(37, 3072)[:2] == (2, 19)                                         # 3 products
    assert limb_plan(64, 768)[:2] == (4, 16)                                          # 10 products


@pytest.mark.parametrize("bits", [16, 64])
def test_chunked_k_at_the_exactness_bound(bits):
    # K beyond one chunk, every limb at its maximum: the float64 sums sit right at 2^53
    limbs, width, chunk = limb_plan(bits, 2**22)
    k = chunk + 5
    assert limb_plan(bits, k) == (limbs, width, chunk) and chunk < k
    top = (1 << bits) - 1 if bits < 64 else -1
    a = torch.full((2, k), top, dtype=torch.int64)
    b = torch.full((k, 2), top, dtype=torch.int64)
    a[1, ::3] = 12345
    out = limb_matmul(a, b, bits)
    assert torch.equal(out, ring_matmul(a, b, bits))
    assert int(out[0, 0]) % 2**bits == k % 2**bits      # k·(2^n − 1)^2 = k mod 2^n


@pytest.mark.parametrize("matmul", MATMULS)
def test_bad_input(matmul):
    a, b = torch.zeros(2, 3, dtype=torch.int64), torch.zeros(3, 4, dtype=torch.int64)
    with pytest.raises(TypeError, match="a must be a torch.Tensor"):
        matmul([[1]], b, 50)
    with pytest.raises(TypeError, match="b must have dtype torch.int64"):
        matmul(a, b.float(), 50)
    with pytest.raises(ValueError, match="bits must be an int"):
        matmul(a, b, 50.0)
    with pytest.raises(ValueError, match="bits must be an int"):
        matmul(a, b, True)
    for bits in (0, 65, -1):
        with pytest.raises(ValueError, match=r"bits must be an int in \[1, 64\]"):
            matmul(a, b, bits)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        matmul(a[0], b, 50)
    with pytest.raises(ValueError, match="inner dimensions differ"):
        matmul(a, b[:2], 50)
    with pytest.raises(ValueError, match="batch dimensions do not broadcast"):
        matmul(a.expand(2, 2, 3), b.expand(3, 3, 4), 50)
    with pytest.raises(ValueError, match="a is on cpu but b is on meta"):
        matmul(a, b.to("meta"), 50)
    with pytest.raises(ValueError, match="inner size k"):
        limb_plan(50, -1)


# -- CUDA: the float64 limb path must equal the CPU int64 product bit for bit -----------------

@pytest.fixture
def cuda():
    return torch.device("cuda")  # the tests are marked `cuda`: the conftest hook skips them


@pytest.mark.cuda
@pytest.mark.parametrize("bits", [37, 50, 51, 64])
@pytest.mark.parametrize("sa,sb", [((128, 768), (768, 2304)),     # BERT-base QKV
                                   ((128, 768), (768, 3072)),     # FFN1
                                   ((128, 3072), (3072, 768)),    # FFN2
                                   ((12, 128, 64), (12, 64, 128))])  # attention scores
def test_cuda_equals_cpu_on_bert_shapes(cuda, bits, sa, sb):
    gen = torch.Generator().manual_seed(bits + sa[-1])
    a, b = _full(sa, gen), _full(sb, gen)
    out = ring_matmul(a.to(cuda), b.to(cuda), bits)
    assert out.device.type == "cuda"
    assert torch.equal(out.cpu(), ring_matmul(a, b, bits))


@pytest.mark.cuda
def test_cuda_extremes_chunks_and_broadcast(cuda):
    gen = torch.Generator().manual_seed(3)
    for bits in (1, 50, 64):
        top = (1 << bits) - 1 if bits < 64 else -1
        a = torch.full((128, 3072), top, dtype=torch.int64)
        b = torch.full((3072, 768), top, dtype=torch.int64)
        assert torch.equal(ring_matmul(a.to(cuda), b.to(cuda), bits).cpu(), ring_matmul(a, b, bits))
    a, b = _full((2, 1, 5, 64), gen), _full((3, 64, 14), gen)[..., ::2]  # broadcast, strided
    assert torch.equal(ring_matmul(a.to(cuda), b.to(cuda), 50).cpu(), ring_matmul(a, b, 50))
    k = limb_plan(64, 2**22)[2] + 5                       # two K chunks
    a, b = _full((3, k), gen), _full((k, 2), gen)
    assert torch.equal(ring_matmul(a.to(cuda), b.to(cuda), 64).cpu(), ring_matmul(a, b, 64))
