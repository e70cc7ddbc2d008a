"""The cleartext references of suf.gates against SIGMA's own ClearText vectors, bit for bit,
plus the range checks, the generalisations (any L, any d) and input validation."""
import math

import pytest
import torch

import vectors
from suf.gates import tables
from suf.core.checks import RangeViolation
from suf.gates import gelu, layernorm, rsqrt, silu, tr, tr_with_slack, trfloor
from suf.gates.layernorm import reference_layernorm_stats
from suf.gates.rsqrt import reference_rsqrt_index
from suf.gates.inverse import reference as reference_inverse
from suf.gates.nexp import reference as reference_nexp
from suf.gates.softmax import reference as reference_softmax
from suf.gates.softmax_max import reference as reference_softmax_max
from suf.core.ring import Ring


def ring_view(t, n):
    """The vectors hold sign-extended int64; the references take ring values."""
    return Ring(n).wrap(t)


# -- loader ----------------------------------------------------------------------------------
def test_checksums_cover_every_file():
    listed = (vectors.SIGMA_DIR / "SHA256SUMS").read_text().split()
    names = set(listed[1::2])
    on_disk = {p.name for p in vectors.SIGMA_DIR.iterdir()} - {"SHA256SUMS", "README.md"}
    assert names == on_disk
    assert vectors.verify_checksums() == len(names) == 57


def test_checksum_mismatch_is_detected(tmp_path, monkeypatch):
    for p in vectors.SIGMA_DIR.iterdir():
        (tmp_path / p.name).write_bytes(p.read_bytes())
    data = bytearray((tmp_path / "gelu_n37.out.bin").read_bytes())
    data[100] ^= 1
    (tmp_path / "gelu_n37.out.bin").write_bytes(bytes(data))
    monkeypatch.setattr(vectors, "SIGMA_DIR", tmp_path)
    with pytest.raises(RuntimeError, match="gelu_n37.out.bin"):
        vectors.verify_checksums.__wrapped__()


def test_loader_shapes_and_copies():
    c = vectors.load("layernorm_n50_d768")
    assert c["x"].shape == (128, 768) and c["x"].dtype == torch.int64
    assert c["rowstats"].shape == (128, 4) and c.meta["bitwidth_n"] == 50
    c["x"][0, 0] += 1
    assert not torch.equal(vectors.load("layernorm_n50_d768")["x"], c["x"])


# -- tables ----------------------------------------------------------------------------------
@pytest.mark.parametrize("case,build", [
    ("lut_gpu_reluSubGelu_8_6_12", lambda: tables.relu_sub_gelu(8, 6, 12)),
    ("lut_gpu_reluSubSilu_10_6_12", lambda: tables.relu_sub_silu(10, 6, 12)),
    ("lut_gpu_nExpLsb_8_12_12", lambda: tables.nexp_lsb(8, 12, 12)),
    ("lut_gpu_nExpMsb_8_4_12", lambda: tables.nexp_msb(8, 4, 12)),
    ("lut_gpu_inv_13_6_12", lambda: tables.inverse_for_length(128)),
])
def test_tables_equal_sigma_gpu_dumps(case, build):
    assert torch.equal(build(), vectors.load(case)["table"])


@pytest.mark.parametrize("length,bits", [(1, 6), (2, 7), (3, 8), (100, 13), (128, 13), (129, 14),
                                         (512, 15)])
def test_inverse_table_any_length(length, bits):
    t = tables.inverse_for_length(length)
    assert tables.inverse_bits(length) == bits and t.shape == (2**bits,)
    assert t[0] == 2**18 // 2**bits  # the wrap entry: 1/L at scale 12 when L = 2^(bits-6)
    i = torch.arange(1, 2**bits)
    assert torch.equal(t[1:], 2**18 // i)  # exact powers of two: the double formula is exact


def test_tables_are_fresh_copies():
    t = tables.nexp_lsb()
    t[0] = -1
    assert tables.nexp_lsb()[0] == 4096


@pytest.mark.parametrize("case,d", [("invsqrt_n50_d768", 768), ("invsqrt_n37_d128", 128)])
def test_rsqrt_table_vs_sigma_gpu_table(case, d):
    """SIGMA's GPU/LLAMA table wraps the exponent e - 7 in uint64: exactly its 896 entries with
    e < 7 are 0; ours (ClearText's) hold 2^24/sqrt(((m+128)·2^(e-7))/d).  All others agree."""
    ours, llama = tables.rsqrt(d), vectors.load(case)["llama_table"]
    e = torch.arange(8192) % 64
    differ = ours != llama
    assert int(differ.sum()) == 896
    assert torch.equal(differ, e < 7)
    assert bool((llama[e < 7] == 0).all()) and bool((ours[e < 7] > 0).all())
    m = torch.arange(8192) >> 6
    expect = [int(2.0**24 / math.sqrt((mm + 128) * 2.0 ** (ee - 7) / d))
              for mm, ee in zip(m.tolist(), e.tolist())]
    assert ours.tolist() == expect


# -- GeLU / SiLU -----------------------------------------------------------------------------
@pytest.mark.parametrize("op,fn", [("gelu", gelu.reference), ("silu", silu.reference)])
@pytest.mark.parametrize("n", [50, 37])
def test_gelu_silu_vectors(op, fn, n):
    c = vectors.load(f"{op}_n{n}")
    assert torch.equal(fn(ring_view(c["in"], n), n=n), ring_view(c["out"], n))


# -- softmax ---------------------------------------------------------------------------------
@pytest.mark.parametrize("case,n", [("softmax_n50", 50), ("softmax_n37", 37)])
def test_softmax_vectors(case, n):
    c = vectors.load(case)
    assert torch.equal(reference_softmax(ring_view(c["in"], n), n=n), ring_view(c["out"], n))


def test_causal_softmax_vectors():
    c = vectors.load("softmax_causal_n50")
    x = ring_view(c["in"], 50)
    expect = ring_view(c["out"], 50)
    assert torch.equal(reference_softmax(x, n=50, causal=True), expect)
    # entries above the diagonal are ignored ...
    upper = torch.triu(torch.ones(128, 128, dtype=torch.bool), 1)
    scrambled = torch.where(upper, torch.randint(0, 2**50, x.shape), x)
    assert torch.equal(reference_softmax(scrambled, n=50, causal=True), expect)
    # ... and equal the upstream test's construction: fill them with -2^37, full softmax
    filled = torch.where(upper, ring_view(torch.tensor(-2**37), 50), x)
    assert torch.equal(reference_softmax(filled, n=50), expect)


def _softmax_by_formula(row, n):
    """SIGMA ClearText's softmax_sirnn_2part_lut on Python ints (one row, signed n-bit)."""
    lsb, msb = tables.nexp_lsb().tolist(), tables.nexp_msb().tolist()
    m = max(row)
    e = []
    for x in row:
        d = min(m - x, 2**16 - 1)
        e.append(lsb[d % 256] * msb[d // 256] >> 12)
    den = sum(e) // 64
    inv = int((1.0 / (den / 64.0)) * 4096)
    return [(v * inv >> 12) % 2**n for v in e]


@pytest.mark.parametrize("length", [1, 2, 3, 5, 7, 100, 127])
def test_softmax_any_length(length):
    n = 50
    g = torch.Generator().manual_seed(length)
    x = torch.randint(-2**17, 2**17, (6, length), generator=g)
    x[0] = 12345  # a constant row (every e = 4096)
    got = reference_softmax(ring_view(x, n), n=n)
    assert got.tolist() == [_softmax_by_formula(r, n) for r in x.tolist()]
    # causal: row i is the softmax of its first i + 1 entries, zeros after
    xs = torch.randint(-2**17, 2**17, (2, length, length), generator=g)
    got = reference_softmax(ring_view(xs, n), n=n, causal=True).tolist()
    for h in range(2):
        for i in range(length):
            row = xs[h, i, : i + 1].tolist()
            assert got[h][i] == _softmax_by_formula(row, n) + [0] * (length - i - 1)


def test_tournament_max_any_count():
    n, rb = 50, 40
    g = torch.Generator().manual_seed(7)
    x = torch.randint(-2**37, 2**37, (50, 13), generator=g)
    count = torch.randint(1, 14, (50,), generator=g)
    counts = tuple(count.tolist())  # the rows packed one after the other
    packed = torch.cat([r[:k] for r, k in zip(x, counts)])
    got = reference_softmax_max(ring_view(packed, n), n=n, counts=counts)
    expect = [max(r[:k]) % 2**rb for r, k in zip(x.tolist(), count.tolist())]
    assert got.tolist() == expect


def test_nexp_and_inverse_steps():
    n = 50
    d = torch.tensor([0, 1, 255, 256, 4095, 4096, 65534, 65535, 65536, 2**20, 2**38])
    lsb, msb = tables.nexp_lsb(), tables.nexp_msb()
    c = d.clamp(max=65535)
    assert torch.equal(reference_nexp(d, n=n), lsb[c & 255] * msb[c >> 8] >> 12)
    assert reference_nexp(torch.tensor([0]), n=n).item() == 4096
    # S = L·4096 wraps to index 0: the inverse is 1/L; otherwise 2^18 // (S >> 6)
    s = torch.tensor([128 * 4096, 4096, 100 * 4096 + 63, 5000])
    assert reference_inverse(s, n=n, length=128).tolist() == [32, 4096, 2**18 // 6400, 2**18 // 78]
    assert reference_inverse(torch.tensor([100 * 4096]), n=n, length=100).item() == 2**18 // 6400


# -- LayerNorm -------------------------------------------------------------------------------
@pytest.mark.parametrize("case,n", [("layernorm_n50_d768", 50), ("layernorm_n37_d128", 37)])
def test_layernorm_vectors(case, n):
    c = vectors.load(case)
    x, gamma, beta = (ring_view(c[k], n) for k in ("x", "gamma", "beta"))
    assert torch.equal(layernorm.reference(x, gamma, beta, n=n), ring_view(c["out"], n))
    s, mu, v, r = reference_layernorm_stats(x, n)
    st = c["rowstats"]
    assert torch.equal(s, ring_view(st[:, 0], n))
    assert torch.equal(mu, ring_view(st[:, 1], n))
    assert torch.equal(v, ring_view(st[:, 2], n))
    zero = v == 0  # ClearText's rsqrt(0) is undefined (its rowstats hold INT64_MIN there)
    assert 0 < int(zero.sum()) < 128
    assert torch.equal(r[~zero], st[~zero, 3])
    d = x.shape[-1]
    assert bool((r[zero] == tables.rsqrt(d)[0]).all()) and tables.rsqrt(d)[0] == int(2**24 * d**0.5)


def test_layernorm_mean_is_0_9375_of_the_mean_at_d_768():
    n = 50
    x = torch.full((1, 768), 100 * 4096)
    _, mu, v, _ = reference_layernorm_stats(ring_view(x, n), n)
    assert mu.item() == 100 * 4096 * 15 // 16
    assert v.item() == 768 * (100 * 4096 // 16) ** 2  # the constant row gets a "variance"
    _, mu, _, _ = reference_layernorm_stats(ring_view(torch.full((1, 1024), -7), n), n)
    assert mu.item() == 2**50 - 7  # power of two: exact floor mean


# -- truncation ------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [50, 37])
def test_truncation_vectors_all_shifts(n):
    c = vectors.load(f"truncate_ars_n{n}")
    x = ring_view(c["in"], n)
    gap = c["in"].abs() < 2**(n - 2)
    gap |= c["in"] == -2**(n - 2)
    assert 0 < int((~gap).sum())
    for k, s in enumerate(c.meta["params"]["shifts"]):
        expect = ring_view(c["out"][k], n)
        assert torch.equal(trfloor.reference(x, n=n, s=s), expect)
        assert torch.equal(tr.reference(x, n=n, s=s), expect % 2**(n - s))
        assert torch.equal(tr_with_slack.reference(x[gap], n=n, s=s), expect[gap])
        assert torch.equal(tr_with_slack.reference(x, n=n, s=s, bits_out=n - s), expect % 2**(n - s))
        with pytest.raises(RangeViolation):
            tr_with_slack.reference(x, n=n, s=s)


# -- rsqrt -----------------------------------------------------------------------------------
@pytest.mark.parametrize("case,n,d", [("invsqrt_n50_d768", 50, 768), ("invsqrt_n37_d128", 37, 128)])
def test_rsqrt_vectors(case, n, d):
    c = vectors.load(case)
    assert torch.equal(rsqrt.reference(ring_view(c["in"], n), n=n, d=d), c["out"])


@pytest.mark.parametrize("n", [50, 37, 63])
def test_rsqrt_index_full_range(n):
    g = torch.Generator().manual_seed(n)
    k = torch.randint(0, n - 1, (4000,), generator=g)
    v = torch.randint(0, 2**62, (4000,), generator=g) % (2**k) + 2**k  # leading one at bit k
    v = torch.cat([v, torch.arange(1, 300), 2**torch.arange(n - 1), 2**torch.arange(1, n) - 1])
    idx = reference_rsqrt_index(v, n).tolist()
    for vv, i in zip(v.tolist(), idx):
        kk = vv.bit_length() - 1
        m7 = (vv << 7 >> kk) & 127  # the 7 bits after the leading one, zero-filled below bit 0
        assert i == m7 * 64 + kk
    # no leading one below 2^(n-1): V = 0 and every V >= 2^(n-1) give index 0
    assert reference_rsqrt_index(torch.tensor([0, 2**(n - 1), 2**n - 1]), n).tolist() == [0, 0, 0]


# -- range checks ----------------------------------------------------------------------------
@pytest.mark.parametrize("fn,op", [(gelu.reference, "gelu"), (silu.reference, "silu")])
@pytest.mark.parametrize("n", [50, 37])
def test_gelu_silu_range(fn, op, n):
    b = 2**(n - 13)
    fn(ring_view(torch.tensor([-b, b - 1]), n), n=n)
    for bad in (b, -b - 1):
        with pytest.raises(RangeViolation) as e:
            fn(ring_view(torch.tensor([[0, 1], [bad, 0]]), n), n=n, layer="ffn.3")
        err = e.value
        assert (err.op, err.layer, err.index, err.value, err.bound) == (op, "ffn.3", (1, 0), bad,
                                                                       (-b, b))
        assert "ffn.3" in str(err) and f"2^{n - 13}" in str(err)


def test_softmax_range():
    n = 50
    lim = 2**38
    ok = torch.tensor([[2**40, 2**40 - lim + 1, 2**40 - 7]])  # the level does not matter
    out = reference_softmax(ring_view(ok, n), n=n)
    assert out.tolist() == [_softmax_by_formula(ok[0].tolist(), n)]
    with pytest.raises(RangeViolation) as e:
        reference_softmax(ring_view(torch.tensor([[0, 5, 3], [7, 7 - lim, 7]]), n), n=n)
    assert (e.value.index, e.value.value, e.value.bound) == ((1, 0), lim, (0, lim))
    assert e.value.op.startswith("softmax")
    # causal: only the lower triangle is checked
    x = torch.tensor([[0, 2**45], [1, 2]])
    reference_softmax(ring_view(x, n), n=n, causal=True)
    with pytest.raises(RangeViolation):
        reference_softmax(ring_view(x, n), n=n)


def test_layernorm_range():
    n = 50
    # V = 2a² for the row [a, -a]: a = 2^24 gives V = 2^49 = 2^(n-1), just outside
    gamma, beta = torch.tensor([4096, 4096]), torch.tensor([0, 0])
    inside = layernorm.reference(ring_view(torch.tensor([[2**24 - 1, 1 - 2**24]]), n), gamma, beta, n=n)
    assert inside.tolist() == [[4095, ring_view(torch.tensor(-4096), n).item()]]
    with pytest.raises(RangeViolation) as e:
        layernorm.reference(ring_view(torch.tensor([[0, 0], [2**24, -2**24]]), n), gamma, beta, n=n,
                            layer="h.0.ln_1")
    err = e.value
    assert err.op.startswith("layernorm V") and err.layer == "h.0.ln_1"
    assert (err.index, err.value, err.bound) == ((1,), 2**49, (0, 2**49))
    with pytest.raises(RangeViolation) as e:
        rsqrt.reference(torch.tensor([2**49 - 1, 2**49]), n=n, d=2)
    assert (e.value.op, e.value.index, e.value.value) == ("rsqrt", (1,), 2**49)
    # t = 1.0 (4096) in column 0; t·γ + β must stay inside TrWithSlack's gap [-2^48, 2^48)
    x = ring_view(torch.tensor([[4096, -4096]]), n)
    layernorm.reference(x, torch.tensor([2**36 - 1, 1]), beta, n=n)
    with pytest.raises(RangeViolation) as e:
        layernorm.reference(x, torch.tensor([2**36, 1]), beta, n=n)
    assert e.value.op == "layernorm y * gamma + beta"
    assert (e.value.index, e.value.value, e.value.bound) == ((0, 0), 2**48, (-2**48, 2**48))


@pytest.mark.parametrize("n", [50, 37])
def test_tr_with_slack_gap(n):
    q = 2**(n - 2)
    for ok in (q - 1, -q, 0):
        assert tr_with_slack.reference(ring_view(torch.tensor([ok]), n), n=n, s=12).tolist() == \
            [ring_view(torch.tensor([ok >> 12]), n).item()]
    for bad in (q, -q - 1):
        with pytest.raises(RangeViolation) as e:
            tr_with_slack.reference(ring_view(torch.tensor([5, bad]), n), n=n, s=12, op="qkv")
        assert (e.value.op, e.value.index, e.value.value, e.value.bound) == ("qkv", (1,), bad,
                                                                             (-q, q))


def test_collect_mode_reports_first_violation_and_continues():
    n = 37
    b = 2**(n - 13)
    x = ring_view(torch.tensor([0, b + 5, -b - 9, 4096]), n)
    found = []
    out = gelu.reference(x, n=n, violations=found)
    assert len(found) == 1 and found[0].index == (1,) and found[0].value == b + 5
    assert out[0] == 0 and out[3] == gelu.reference(x[3:], n=n)[0]


# -- input validation ------------------------------------------------------------------------
def test_bad_inputs():
    with pytest.raises(TypeError):
        gelu.reference(torch.zeros(3), n=50)
    with pytest.raises(ValueError, match=r"outside \[0, 2\^50\)"):
        gelu.reference(torch.tensor([-1]), n=50)
    with pytest.raises(ValueError, match="bitwidth"):
        gelu.reference(torch.tensor([1]), n=20)
    with pytest.raises(ValueError, match="shift"):
        trfloor.reference(torch.tensor([1]), n=50, s=50)
    with pytest.raises(ValueError, match="square"):
        reference_softmax(torch.zeros(2, 3, dtype=torch.int64), n=50, causal=True)
    with pytest.raises(ValueError, match="gamma"):
        layernorm.reference(torch.zeros(2, 4, dtype=torch.int64), torch.zeros(3, dtype=torch.int64),
                            torch.zeros(4, dtype=torch.int64), n=50)
    with pytest.raises(ValueError, match="row width"):
        tables.rsqrt(0)
    with pytest.raises(ValueError, match="count"):
        reference_softmax_max(torch.zeros(3, dtype=torch.int64), n=50, counts=(1, 4))


# -- CUDA ------------------------------------------------------------------------------------
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")
def test_references_on_cuda_match_vectors():
    dev = torch.device("cuda")
    for n in (50, 37):
        c = vectors.load(f"gelu_n{n}")
        assert torch.equal(gelu.reference(ring_view(c["in"], n).to(dev), n=n).cpu(),
                           ring_view(c["out"], n))
        c = vectors.load(f"silu_n{n}")
        assert torch.equal(silu.reference(ring_view(c["in"], n).to(dev), n=n).cpu(),
                           ring_view(c["out"], n))
    for case, n, causal in (("softmax_n50", 50, False), ("softmax_n37", 37, False),
                            ("softmax_causal_n50", 50, True)):
        c = vectors.load(case)
        assert torch.equal(reference_softmax(ring_view(c["in"], n).to(dev), n=n, causal=causal).cpu(),
                           ring_view(c["out"], n))
    for case, n in (("layernorm_n50_d768", 50), ("layernorm_n37_d128", 37)):
        c = vectors.load(case)
        x, gamma, beta = (ring_view(c[k], n).to(dev) for k in ("x", "gamma", "beta"))
        assert torch.equal(layernorm.reference(x, gamma, beta, n=n).cpu(), ring_view(c["out"], n))
    for case, n, d in (("invsqrt_n50_d768", 50, 768), ("invsqrt_n37_d128", 37, 128)):
        c = vectors.load(case)
        assert torch.equal(rsqrt.reference(ring_view(c["in"], n).to(dev), n=n, d=d).cpu(), c["out"])
    c = vectors.load("truncate_ars_n50")
    for k, s in enumerate(c.meta["params"]["shifts"]):
        assert torch.equal(trfloor.reference(ring_view(c["in"], 50).to(dev), n=50, s=s).cpu(),
                           ring_view(c["out"][k], 50))
