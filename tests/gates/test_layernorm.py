"""Secure rsqrt (one interval lookup) and secure LayerNorm: output == the cleartext references and
SIGMA's own ClearText vectors bit for bit; measured bytes / exchanges / key bytes == SIGMA's cost
model for the GPU part of LayerNorm, and == the fold of rsqrt's layout (== the closed formula of
docs/rsqrt.md) for the rsqrt, reported apart.

One rsqrt row costs 128(n-7) comparison walks (~0.1-0.2 M PRG blocks at n = 37-50), slow with the
torch ChaCha on this CPU: the default tests use few rows; the full sweeps are marked `cuda`."""
import math

import pytest
import torch

import sigma_cost_model as cm
import vectors
from harness import masked, run_gate
from suf.core.checks import RangeViolation
from suf.core.ring import low_mask, packed_size
from suf.fss import compare
from suf.gates import layernorm as ln
from suf.gates import rsqrt
from suf.mpc import gate as gate_api
from suf.prg import Stream

GEN = Stream(b"\x33" * 32)
F = 12


def edge_values(n, js):
    """V = a_j - 1 and a_j for the interval starts a_j, j in js (a_0 - 1 wraps to 2^n - 1)."""
    starts, _ = rsqrt.intervals(n)
    a = starts[torch.as_tensor(js)]
    return torch.cat([(a - 1) & low_mask(n), a])


# -- the interval partition ------------------------------------------------------------------
@pytest.mark.parametrize("n", [14, 37, 50, 63])
def test_intervals_are_the_maximal_runs_of_constant_index(n):
    starts, index = rsqrt.intervals(n)
    K = starts.numel()
    assert K == 128 * (n - 7)
    assert starts[0] == 0 and starts[-1] == 1 << (n - 1) and bool((starts[1:] > starts[:-1]).all())
    assert torch.equal(index, rsqrt.reference_rsqrt_index(starts, n))
    ends = torch.cat([starts[1:] - 1, torch.tensor([low_mask(n)])])  # last point of each
    assert torch.equal(rsqrt.reference_rsqrt_index(ends & low_mask(n), n), index)
    # maximal: the index changes at every start (j >= 1)
    assert bool((rsqrt.reference_rsqrt_index(starts[1:] - 1, n) != index[1:]).all())
    # random points lie in the interval whose index they have
    v = torch.cat([GEN.ring(4000, n), GEN.ring(4000, n) >> (GEN.ring(4000, 6) % n)])
    j = torch.searchsorted(starts, v, right=True) - 1
    assert torch.equal(rsqrt.reference_rsqrt_index(v, n), index[j])


# -- secure rsqrt ------------------------------------------------------------------------------
def secure_rsqrt(v, n, d, device="cpu"):
    ctx = {}

    def deal(dl):
        ctx["r"] = dl.mask(v.shape, n)
        ctx["out"] = rsqrt.keygen(dl, ctx["r"], n=n, d=d)
        return ctx

    run = run_gate(deal, lambda p, c: rsqrt.eval(p, masked(v.to(p.device), c["r"], n), n=n, d=d),
                   ring_bits=n, device=device)
    assert torch.equal(run.outputs[0], run.outputs[1])
    return ((run.outputs[0] - ctx["out"]) & low_mask(n)).cpu(), run


def rsqrt_formula(n, rows):
    """docs/rsqrt.md: (bytes one party sends, exchanges, key bytes) of `rows` rows: U^ and V^ in one
    exchange of n+1 bits, the select in n bits; comparison key + r_U bit + 5-word select key."""
    sent = packed_size(n + 1, rows) + packed_size(n, rows)
    return sent, 2, compare.payload_size(n, rows) + packed_size(1, rows) + 5 * 8 * rows


def check_rsqrt(v, n, d, device="cpu"):
    got, run = secure_rsqrt(v, n, d, device)
    violations = []  # V >= 2^(n-1) is outside LayerNorm's range: the reference's formula, T[0]
    ref = rsqrt.reference(v, n=n, d=d, violations=violations) & low_mask(n)
    assert torch.equal(got, ref)
    assert len(violations) == int((v >= 1 << (n - 1)).any())
    c = gate_api.cost("rsqrt", tuple(v.shape), n=n, d=d)
    assert (c.sent, c.exchanges, c.key) == rsqrt_formula(n, v.numel())
    for p in (0, 1):
        t = run.total(p)
        assert t.bytes_sent == c.sent and t.exchanges == c.exchanges == 2
        assert t.bytes_sent + t.bytes_recv == 2 * c.sent
        assert run.key_bytes[p] == c.key
    return got


def test_rsqrt_edges_and_sigma_vectors_n37(monkeypatch):
    """Edges a_j - 1, a_j of: j = 0 (V = 2^n - 1 and 0), j = 127 (127, 128), j = 767 (the first
    exponent with intervals of 2^5), j = K - 1 (2^(n-1) - 1 and 2^(n-1)), a random j; and V from
    SIGMA's ClearText invsqrt vectors, whose outputs must be reproduced.  Two rows per chunk."""
    n, d = 37, 128
    K = 128 * (n - 7)
    monkeypatch.setattr(rsqrt, "CHUNK_POINTS", 2 * K + 1)
    v = edge_values(n, [0, 127, 767, K - 1, int(GEN.ring(1, 32) % K)])
    case = vectors.load("invsqrt_n37_d128")
    pick = torch.tensor([0, 126, 4095, 5000, 5631])  # V = 1, 127, 4096, two large
    v = torch.cat([v, case["in"][pick]])
    got = check_rsqrt(v, n, d)
    assert torch.equal(got[-pick.numel():], case["out"][pick])
    # 1 <= V < 128: ClearText's (signed exponent) entries; SIGMA's GPU table has zeros there
    small = (v >= 1) & (v < 128)
    assert int(small.sum()) == 3 and bool((got[small] > 0).all())
    assert bool((case["llama_table"][rsqrt.reference_rsqrt_index(v[small], n)] == 0).all())


def test_rsqrt_edges_n50():
    n, d = 50, 768
    K = 128 * (n - 7)
    check_rsqrt(edge_values(n, [K - 1, int(GEN.ring(1, 32) % K)]), n, d)


@pytest.mark.cuda
@pytest.mark.parametrize("n,d", [(37, 128), (50, 768)])
def test_rsqrt_every_interval_edge_cuda(n, d):
    v = edge_values(n, list(range(128 * (n - 7))))
    check_rsqrt(v, n, d, device="cuda")


def test_rsqrt_cost_and_work():
    """The fold of the layout is docs/rsqrt.md's closed formula and its figures (n = 37: 555.875
    key bytes per row; BERT-base's 128 rows at n = 50: 97,984 key bytes, 1,616 B sent, 2
    exchanges); `work` counts K = 128(n-7) comparison walks per row of n - 7 PRG calls each."""
    for n in (14, 37, 50, 63):
        for rows in (1, 5, 33, 128):
            c = gate_api.cost("rsqrt", (rows,), n=n, d=128)
            assert (c.sent, c.exchanges, c.key) == rsqrt_formula(n, rows)
            assert c.sigma_header == 0 and c.by_gate["rsqrt"] == [c.sent, c.exchanges, c.key]
            walks = rows * 128 * (n - 7)
            assert rsqrt.work(n, rows) == {"rsqrt_tree_walks": walks,
                                           "rsqrt_prg_calls": walks * (n - 7)}
    assert gate_api.cost("rsqrt", (2, 4), n=50, d=768).key == gate_api.cost("rsqrt", (8,), n=50).key
    assert gate_api.cost("rsqrt", (1024,), n=37).key == 555.875 * 1024
    c = gate_api.cost("rsqrt", (128,), n=50, d=768)
    assert (c.key, c.sent, c.exchanges) == (97984, 1616, 2)
    assert rsqrt.work(50, 1) == {"rsqrt_tree_walks": 5504, "rsqrt_prg_calls": 236672}


def test_rsqrt_bad_input(monkeypatch):
    with pytest.raises(ValueError, match="row width d"):
        rsqrt.eval(None, torch.zeros(2, dtype=torch.int64), n=37, d=0)
    with pytest.raises(ValueError, match="at least one row"):
        rsqrt.eval(None, torch.zeros(0, dtype=torch.int64), n=37, d=128)
    with pytest.raises(ValueError, match="bitwidth"):
        rsqrt.intervals(13)
    with pytest.raises(ValueError, match="rows"):
        rsqrt.work(50, 0)
    with pytest.raises(ValueError, match="at least one row"):
        gate_api.cost("rsqrt", (0,), n=50, d=128)
    with pytest.raises(TypeError):
        rsqrt.keygen(None, torch.tensor([1], dtype=torch.int32), n=37)
    # values outside the ring are scanned for only in debug mode (a GPU sync per gate otherwise)
    monkeypatch.setenv("SUF_DEBUG", "1")
    with pytest.raises(ValueError):
        rsqrt.keygen(None, torch.tensor([1 << 37]), n=37)


# -- secure LayerNorm --------------------------------------------------------------------------
def secure_layernorm(x, gamma, beta, n, device="cpu"):
    ctx = {}

    def deal(dl):
        r, rg, rb = (dl.mask(t.shape, n) for t in (x, gamma, beta))
        ctx.update(r=r, rg=rg, rb=rb, out=ln.keygen(dl, r, rg, rb, n=n),
                   headers=dl.sigma_header_bytes)
        return ctx

    def ev(p, c):
        xh, gh, bh = (masked(t.to(p.device), c[k], n) for t, k in ((x, "r"), (gamma, "rg"),
                                                                    (beta, "rb")))
        return ln.eval(p, xh, gh, bh, n=n)

    run = run_gate(deal, ev, ring_bits=n, device=device)
    assert torch.equal(run.outputs[0], run.outputs[1])
    return ((run.outputs[0] - ctx["out"]) & low_mask(n)).cpu(), run, ctx


def gpu_model(n, L, d):
    """SIGMA's cost model of LayerNorm's GPU part (tests/sigma_cost_model.py, comm_layer /
    key_layer 'ln'): the counter (bytes, exchanges) and the key bytes with SIGMA's headers."""
    g = cm.Ctr()
    cm.c_trfloor(g, n, cm.lnshift(d, F), L); g.x(n, L)
    g.x(n, L * d); cm.c_trslack(g, n, L * d); g.x(n, L * d); cm.c_trslack(g, n, L * d)
    key_gpu = (cm.k_trfloor(n, cm.lnshift(d, F), L) + 16 * L * d + cm.k_wmul(L * d, L, F)
               + cm.k_wmul(L * d, d, F))
    return g, key_gpu


def check_layernorm(x, gamma, beta, n, device="cpu"):
    got, run, ctx = secure_layernorm(x, gamma, beta, n, device)
    assert torch.equal(got, ln.reference(x, gamma, beta, n=n) & low_mask(n))
    L, d = x.numel() // x.shape[-1], x.shape[-1]
    g, key_gpu = gpu_model(n, L, d)
    # the rsqrt, apart: its own scope and the fold of its layout
    c = gate_api.cost("rsqrt", (L,), n=n, d=d)
    assert (c.sent, c.exchanges, c.key) == rsqrt_formula(n, L)
    whole = gate_api.cost("layernorm", tuple(x.shape), (d,), (d,), n=n)
    assert whole.by_gate["rsqrt"] == [c.sent, c.exchanges, c.key]
    assert ctx["headers"] == whole.sigma_header
    for p in (0, 1):
        ops = run.stats[p].by_op()
        gpu, rs = ops["-"], ops["rsqrt"]
        assert gpu.bytes_sent == g.b and gpu.exchanges == g.r == 11
        assert rs.bytes_sent == c.sent and rs.exchanges == c.exchanges
        assert run.total(p).exchanges == 13 == whole.exchanges
        assert run.total(p).bytes_sent == whole.sent
        assert run.key_bytes[p] == whole.key
        assert run.key_bytes[p] - c.key + ctx["headers"] == key_gpu
    return got


@pytest.mark.parametrize("n", [37, 50])
@pytest.mark.parametrize("d", [2, 8, 96, 128, 768])
def test_layernorm_layout_cost_equals_sigma_model(n, d):
    """Without running: the fold of LayerNorm's layout is SIGMA's cost model for the GPU part plus
    the rsqrt's closed formula (the rsqrt also reported apart in by_gate)."""
    for L in (1, 5, 64):
        c = gate_api.cost("layernorm", (L, d), (d,), (d,), n=n)
        g, key_gpu = gpu_model(n, L, d)
        rs = rsqrt_formula(n, L)
        assert c.by_gate["rsqrt"] == list(rs)
        assert (c.sent - rs[0], c.exchanges - rs[1]) == (g.b, g.r)
        assert c.key - rs[2] + c.sigma_header == key_gpu


def ln_params(d, n):
    """γ in [-2, 2) at scale 12 with γ[:3] = 1, -1, 0; β in [-2, 2) at scale 24."""
    gamma = (GEN.ring(d, 64) >> (64 - 14)) - (1 << 13)
    gamma[:3] = torch.tensor([1 << F, -(1 << F), 0])
    beta = (GEN.ring(d, 64) >> (64 - 26)) - (1 << 25)
    return gamma & low_mask(n), beta & low_mask(n)


def test_layernorm_sigma_vectors_n37_d128():
    """SIGMA's ClearText LayerNorm rows: a constant row (V = 0), rows with V = 1 and V = 21 (where
    SIGMA's GPU table gives 0), a row with outliers and a 15-bit uniform row; leading dims (2, 2)."""
    case = vectors.load("layernorm_n37_d128")
    n, rows = 37, [48, 64, 70, 16]
    stats = case["rowstats"][rows]
    assert stats[:, 2].tolist()[:3] == [0, 1, 21]
    m = low_mask(n)
    x = (case["x"][rows] & m).view(2, 2, 128)
    got = check_layernorm(x, case["gamma"] & m, case["beta"] & m, n)
    assert torch.equal(got, (case["out"][rows] & m).view(2, 2, 128))


def test_layernorm_sigma_vectors_n50_d768():
    """d = 768 (mean by 5/4096): a row with V = 1 and a large gaussian row, as SIGMA's vectors."""
    case = vectors.load("layernorm_n50_d768")
    n, rows = 50, [64, 100]
    m = low_mask(n)
    got = check_layernorm(case["x"][rows] & m, case["gamma"] & m, case["beta"] & m, n)
    assert torch.equal(got, case["out"][rows] & m)


@pytest.mark.parametrize("d", [96, 64])
def test_layernorm_extremes_n37(d):
    """Zeros (V = 0); a constant row (V = 0 when d is a power of two); a few ±1 (1 <= V < 128);
    ±a with the largest a such that V = d·a² < 2^(n-1), which falls in the last interval below
    2^(n-1).  d = 96 = 3·2^5 is 768-like (mean by floor(2^12/d)); random rows are in the tests
    with SIGMA's vectors."""
    n = 37
    a = math.isqrt(((1 << (n - 1)) - 1) // d)
    alt = torch.tensor([a, -a] * (d // 2))
    sparse = torch.zeros(d, dtype=torch.int64)
    sparse[[3, 7, 11]] = torch.tensor([1, -1, 1])
    rows = torch.stack([torch.zeros(d, dtype=torch.int64), torch.full((d,), -7 << F), sparse, alt])
    x = rows & low_mask(n)
    _, _, v, _ = ln.reference_layernorm_stats(x, n)
    starts, _ = rsqrt.intervals(n)
    assert starts[-2] <= v[3] < starts[-1] == 1 << (n - 1)
    assert 0 < v[2] < 128 and v[0] == 0 and (v[1] == 0) == (d & (d - 1) == 0)
    check_layernorm(x, *ln_params(d, n), n)


@pytest.mark.cuda
def test_layernorm_bert_base_shape_cuda():
    """128 rows of width 768 at n = 50 on the GPU, against the reference and the cost model."""
    n, d = 50, 768
    case = vectors.load("layernorm_n50_d768")
    m = low_mask(n)
    got = check_layernorm(case["x"] & m, case["gamma"] & m, case["beta"] & m, n, device="cuda")
    assert torch.equal(got, case["out"] & m)
    gamma, beta = ln_params(d, n)
    x = ((GEN.ring((4, 32, d), 64) >> (64 - 19)) - (1 << 18)) & m  # |x| < 64: V < 2^(n-1)
    check_layernorm(x, gamma, beta, n, device="cuda")


def test_layernorm_bad_input(monkeypatch):
    n = 37
    x = torch.zeros(2, 8, dtype=torch.int64)
    g = torch.zeros(8, dtype=torch.int64)
    with pytest.raises(ValueError, match="gamma_hat must have shape"):
        ln.eval(None, x, torch.zeros(7, dtype=torch.int64), g, n=n)
    with pytest.raises(ValueError, match="r_beta must have shape"):
        ln.keygen(None, x, g, torch.zeros(2, 8, dtype=torch.int64), n=n)
    with pytest.raises(ValueError, match="at least one row"):
        ln.eval(None, torch.zeros(0, 8, dtype=torch.int64), g, g, n=n)
    with pytest.raises(ValueError, match="d >= 2"):
        ln.keygen(None, torch.zeros(3, 1, dtype=torch.int64), g[:1], g[:1], n=n)
    with pytest.raises(ValueError, match="gamma must have shape"):
        gate_api.cost("layernorm", (2, 8), (7,), (8,), n=n)
    with pytest.raises(TypeError):
        ln.eval(None, x.to(torch.int32), g, g, n=n)
    # values outside the ring are scanned for only in debug mode (a GPU sync per gate otherwise)
    monkeypatch.setenv("SUF_DEBUG", "1")
    with pytest.raises(ValueError):
        ln.eval(None, x | (1 << n), g, g, n=n)  # not a ring element of Z_{2^n}


def test_layernorm_range_is_the_references():
    """V >= 2^(n-1) is outside SIGMA's LayerNorm: the reference reports it (here V = 2^(n-1))."""
    n, d = 37, 64
    x = torch.tensor([1 << 15, -(1 << 15)] * (d // 2)) & low_mask(n)
    with pytest.raises(RangeViolation):
        ln.reference(x, *ln_params(d, n), n=n)
