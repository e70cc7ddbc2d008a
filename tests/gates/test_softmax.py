"""Secure softmax (sigma_spec §3.8): tournament max, nExp, inverse and normalisation, full and
causal rows of any length.  Output == softmax.reference bit for bit, and measured bytes /
exchanges / key bytes == SIGMA's cost model (comm_layer's `softmax` part, key_layer's smx_*)."""
import pytest
import torch

import sigma_cost_model as cm
from harness import masked, run_gate
from suf.prg import Stream
from suf.gates import inverse, nexp, softmax, softmax_max
from suf.gates.tables import ceil_log2
from suf.core.ring import Ring, low_mask

GEN = Stream(b"\x44" * 32)
F = 12
PARTS = ("max", "nexp", "inverse", "normalise")


# -- SIGMA's cost model for given rows ---------------------------------------------------------
def relus_per_level(L, counts):
    """ReLUs of tournament level i: a row of k entries has ceil(k/2^i) candidates and takes
    ceil(k/2^(i+1)) ReLUs (an odd leftover gets a dummy ReLU of 0)."""
    return [sum(-(-k // 2 ** (i + 1)) for k in counts) for i in range(ceil_log2(L))]


def smx_model(n, L, counts):
    """comm_layer's softmax part (per step) and key_layer's smx_* keys, written from the same
    c_*/k_* blocks for rows of `counts` entries (row length L); the model's own per-level ReLU
    count formula holds only for L a power of two, this one for any L."""
    red, N, rows, binv = n - F + 2, sum(counts), len(counts), F + ceil_log2(L)
    c = {p: cm.Ctr() for p in PARTS}
    key = {"max": 4}
    for r in relus_per_level(L, counts):
        cm.c_relu(c["max"], red, r)
        key["max"] += cm.k_relu(red - 1, r)
    x = c["nexp"]
    cm.c_relu(x, 16, N, 2); cm.c_lut(x, n, N); cm.c_trslack(x, 8, N, 1); cm.c_lut(x, n, N)
    x.x(n, N); cm.c_trslack(x, n, N)
    key["nexp"] = (cm.k_relu(red, N, 2) + cm.k_lut(8, N) + cm.k_trslack(8, N, 1) + cm.k_lut(8, N)
                   + 24 * N + cm.k_trslack(F, N))
    cm.c_trslack(c["inverse"], binv - 6, rows, 2); cm.c_lut(c["inverse"], n, rows)
    key["inverse"] = cm.k_trslack(6, rows, 2) + cm.k_lut(binv - 6, rows)
    c["normalise"].x(n, N); cm.c_trslack(c["normalise"], n, N)
    key["normalise"] = cm.k_wmul(N, rows, F)
    return c, key


def head_counts(H, L, causal):
    return [i + 1 for _ in range(H) for i in range(L)] if causal else [L] * (H * L)


@pytest.mark.parametrize("L", [1, 2, 8, 64, 128, 512])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("H", [1, 3, 12])
def test_model_helper_is_sigma_model(H, L, causal):
    """For L a power of two the helper gives exactly comm_layer's softmax part and the smx_* keys
    of key_layer (the tournament's ReLU counts included)."""
    n = 50
    c, key = smx_model(n, L, head_counts(H, L, causal))
    model = cm.comm_layer(n, F, L, 64 * H, H, causal)["softmax"]
    assert sum(x.b for x in c.values()) == model.b and sum(x.r for x in c.values()) == model.r
    k = cm.key_layer(n, F, L, 64 * H, H, causal)
    assert sum(key.values()) == k["smx_max"] + k["smx_nexp"] + k["smx_inv"] + k["smx_wmul"]
    for i, r in enumerate(relus_per_level(L, head_counts(H, L, causal))):
        assert r == (H * ((L * L) // (1 << (i + 2)) + L // 2) if causal
                     else H * L * (L // (1 << (i + 1))))


# -- inputs ------------------------------------------------------------------------------------
def edge_rows(n, L):
    """Rows whose max - x hits the clip edges 0, 255, 256, 65535, 65536, constant rows, the
    largest allowed spread 2^(n-f) - 1 and logit levels at both ends of the ring."""
    top, spread = (1 << (n - 1)) - 1, (1 << (n - F)) - 1
    patterns = [[0, 255, 256, 65535, 65536, 65534, 1, 4096], [0] * 8,
                [0, spread, spread - 1, 65536, 255, 0, spread, 12345]]
    rows = []
    for level in (0, 1 << 20, -(1 << 20), top, -top - 1 + spread, 77):
        for p in patterns:
            row = (p * L)[:L]
            rows.append([level - d for d in row])
    for v in (0, 5, -(1 << 30), top, -top - 1):
        rows.append([v] * L)  # constant rows
    return torch.tensor(rows) & low_mask(n)


def random_rows(n, count, L):
    """Logits at a random level with a spread below 2^(n-f), some of them small (|x| < 16); no
    row wraps past ±2^(n-1) (its signed spread would be ~2^n: outside the precondition)."""
    half, wide_half = 1 << (n - 1), 1 << (n - F - 1)
    level = (Ring(n).signed(GEN.ring((count, 1), 64) >> 1)).clamp(-half + wide_half,
                                                                   half - wide_half - (1 << 17))
    wide = GEN.ring((count, L), 64) >> (64 - (n - F))
    small = GEN.ring((count, L), 64) >> (64 - 17)
    x = torch.where(torch.arange(count).unsqueeze(-1) % 2 == 0, wide, small)
    return (level + x) & low_mask(n)


def inputs(n, L, causal, blocks=2):
    if causal:
        # a causal block's rows see growing prefixes: use edge rows as the blocks' rows
        rows = torch.cat([edge_rows(n, L), random_rows(n, blocks * L, L)])
        return rows[torch.randperm(rows.shape[0], generator=torch.Generator().manual_seed(L))
                    [:blocks * L]].view(blocks, L, L)
    edge = edge_rows(n, L)  # then random rows up to whole heads of L rows
    return torch.cat([edge, random_rows(n, -(-(edge.shape[0] + 4) // L) * L - edge.shape[0], L)])


def secure(x, n, causal, device="cpu"):
    ctx = {}

    def deal(d):
        ctx["r"] = d.mask(x.shape, n)
        ctx["out"] = softmax.keygen(d, ctx["r"], n=n, causal=causal)
        ctx["headers"] = d.sigma_header_bytes
        return ctx

    def ev(p, c):
        return softmax.eval(p, masked(x.to(device), c["r"], n), n=n, causal=causal)

    run = run_gate(deal, ev, device=device, timeout=300.0)
    assert torch.equal(run.outputs[0], run.outputs[1]), "parties disagree on the masked output"
    return (run.outputs[0] - ctx["out"]) & low_mask(n), run, ctx["headers"]


def check_cost(run, headers, n, L, counts, causal):
    c, key = smx_model(n, L, counts)
    if L & (L - 1) == 0 and len(counts) % L == 0:  # whole heads: the model's own numbers too
        H = len(counts) // L
        model = cm.comm_layer(n, F, L, 64 * H, H, causal)["softmax"]
        assert (sum(x.b for x in c.values()), sum(x.r for x in c.values())) == (model.b, model.r)
    for p in (0, 1):
        ops = run.stats[p].by_op()
        for part in PARTS:
            got = ops[f"softmax.{part}"]
            assert (got.bytes_sent, got.bytes_recv, got.exchanges) == (c[part].b, c[part].b,
                                                                       c[part].r), part
    assert run.key_bytes[0] == run.key_bytes[1]
    assert run.key_bytes[0] + headers == sum(key.values())


# -- secure == reference, cost == model --------------------------------------------------------
@pytest.mark.parametrize("n,L,causal", [(50, 8, False), (50, 5, False), (50, 6, True),
                                        (37, 3, False), (37, 7, True), (50, 1, False),
                                        (50, 1, True)])
def test_secure_equals_reference(n, L, causal):
    x = inputs(n, L, causal)
    got, run, headers = secure(x, n, causal)
    want = softmax.reference(x, n=n, causal=causal)
    assert torch.equal(got, want)
    if causal:
        assert not bool(got[..., ~torch.ones(L, L, dtype=torch.bool).tril()].any())
    rows = x.numel() // L
    check_cost(run, headers, n, L, [i % L + 1 for i in range(rows)] if causal else [L] * rows,
               causal)


def test_max_nexp_inverse_parts():
    """The sub-gates alone: the tournament on rows of mixed lengths (packed), nExp at the clip
    edges, and the inverse over its whole index range."""
    n, red = 50, softmax_max.reduced_bits(50)
    counts = (1, 2, 3, 4, 5, 7, 8)
    L = max(counts)
    x = (GEN.ring((len(counts), L), 64) >> (64 - (n - F))) & low_mask(n)
    x[3] = torch.tensor([5, 5, 5, 5, 0, 0, 0, 0])
    packed = torch.cat([x[i, :k] for i, k in enumerate(counts)])
    d = torch.tensor([0, 1, 255, 256, 65534, 65535, 65536, 65537, (1 << (n - F)) - 1, 1 << 20])
    top = 1 << (F + ceil_log2(L))  # row sums reach L·2^f (every entry 1.0): the wrap entry
    s_range = torch.cat([torch.arange(0, top, 997), torch.tensor([top, top - 1, 1, 63, 64])])
    ctx = {}

    def deal(dl):
        ctx["r"] = [dl.mask(packed.shape, n), dl.mask(d.shape, red), dl.mask(s_range.shape, n)]
        r_x, r_d, r_s = ctx["r"]
        ctx["out"] = [softmax_max.keygen(dl, r_x, n=n, counts=counts), nexp.keygen(dl, r_d, n=n),
                      inverse.keygen(dl, r_s, n=n, length=L)]
        return ctx

    def ev(p, c):
        r_x, r_d, r_s = c["r"]
        return [softmax_max.eval(p, masked(packed, r_x, n), n=n, counts=counts),
                nexp.eval(p, masked(d, r_d, red), n=n),
                inverse.eval(p, masked(s_range, r_s, n), n=n, length=L)]

    run = run_gate(deal, ev)
    assert all(torch.equal(a, b) for a, b in zip(*run.outputs))
    m, e, inv = [(o - r) & low_mask(b) for o, r, b in zip(run.outputs[0], ctx["out"], (red, n, n))]
    assert torch.equal(m, softmax_max.reference(packed, n=n, counts=counts))
    assert torch.equal(m, softmax_max.tournament(x, n=n, count=torch.tensor(counts)))
    assert torch.equal(e, nexp.reference(d, n=n))
    assert torch.equal(inv, inverse.reference(s_range, n=n, length=L))


def test_cost_at_L128():
    """H = 1 head of GPT-2's causal attention at L = 128: 35 exchanges, and bytes and key bytes
    equal to comm_layer(...)['softmax'] and key_layer's smx_* parts (the model's own numbers)."""
    n, L, H, causal = 50, 128, 1, True
    x = random_rows(n, H * L, L).view(H, L, L)
    got, run, headers = secure(x, n, causal)
    assert torch.equal(got, softmax.reference(x, n=n, causal=causal))
    model = cm.comm_layer(n, F, L, 64 * H, H, causal)["softmax"]
    t = run.total()
    assert t.bytes_sent == t.bytes_recv == model.b and t.exchanges == model.r == 35
    k = cm.key_layer(n, F, L, 64 * H, H, causal)
    assert run.key_bytes[0] + headers == k["smx_max"] + k["smx_nexp"] + k["smx_inv"] + k["smx_wmul"]


def test_bad_input():
    n = 50

    def keygen(x, **kw):
        return run_gate(lambda d: softmax.keygen(d, x, n=n, **kw), None)

    with pytest.raises(ValueError, match="square"):
        keygen(torch.zeros(2, 3, 4, dtype=torch.int64), causal=True)
    with pytest.raises(ValueError, match="at least one entry"):
        keygen(torch.zeros(3, 0, dtype=torch.int64))
    with pytest.raises(TypeError):
        keygen(torch.zeros(3, 4, dtype=torch.float32))
    with pytest.raises(ValueError):
        keygen(torch.full((3, 4), 1 << n))
    for counts, err in (((2, 3), ValueError), ((4, 0), ValueError), ((), ValueError),
                        (((4,),), TypeError), ((3.0, 1.0), TypeError),
                        (torch.tensor([4]), TypeError)):
        with pytest.raises(err, match="counts"):
            run_gate(lambda d: softmax_max.keygen(d, torch.zeros(4, dtype=torch.int64), n=n,
                                                  counts=counts), None)
    with pytest.raises(ValueError, match="flat packed rows"):  # the rows of a 2-D input
        run_gate(lambda d: softmax_max.keygen(d, torch.zeros(1, 4, dtype=torch.int64), n=n,
                                              counts=(4,)), None)


@pytest.mark.cuda
@pytest.mark.parametrize("causal", [False, True])
def test_cuda_bert_gpt2_attention(causal):
    """One layer's softmax of BERT-base (H = 12, L = 128, full) / GPT-2 (causal) on the GPU:
    equal to the CPU reference, and the model's comm / key bytes for that layer."""
    n, L, H = 50, 128, 12
    x = random_rows(n, H * L, L).view(H, L, L)
    got, run, headers = secure(x, n, causal, device=torch.device("cuda"))
    assert torch.equal(got.cpu(), softmax.reference(x, n=n, causal=causal))
    model = cm.comm_layer(n, F, L, 64 * H, H, causal)["softmax"]
    assert run.total().bytes_sent == model.b and run.total().exchanges == model.r == 35
    k = cm.key_layer(n, F, L, 64 * H, H, causal)
    assert run.key_bytes[0] + headers == k["smx_max"] + k["smx_nexp"] + k["smx_inv"] + k["smx_wmul"]
