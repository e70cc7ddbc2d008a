"""Secure GeLU and SiLU (sigma_spec §3.7): output == the cleartext reference bit for bit on random
inputs and on the edges of the valid domain, and measured bytes / exchanges / key bytes == SIGMA's
cost model (tests/sigma_cost_model.py, the `act` parts of comm_layer / key_layer)."""
import pytest
import torch

import sigma_cost_model as cm
from harness import masked, run_gate
from suf.prg import Stream
from suf.gates import gelu, silu
from suf.mpc import gate as gate_api
from suf.core.ring import low_mask

GEN = Stream(b"\x33" * 32)
F = 12
GATES = {"gelu": (gelu, gelu.reference, 8), "silu": (silu, silu.reference, 10)}


def edges(n, clip_bits):
    """0, ±1, the truncation steps ±63..65, the clip c_max·64 (the last unclipped |floor(x/64)| is
    c_max - 1), ClearText's clip 2^14 (and 2^16) and the ends of the domain |x| < 2^(n-13)."""
    c = ((1 << clip_bits) - 1) * 64
    vals = [0, 1, 2, 63, 64, 65, 127, 128]
    for base in (c, 1 << 14, 1 << 16):
        vals += [base + d for d in (-65, -64, -63, -1, 0, 1, 63, 64)]
    vals += [v - 1 for v in vals]  # floor(x/64) differs from -floor(-x/64)
    bound = gelu.input_bound(n)
    vals = vals + [-v for v in vals] + [bound - 1, bound - 2, -bound, -bound + 1]
    return torch.tensor(vals) & low_mask(n)


def inputs(n, clip_bits, count=400):
    """Edges, then random values over the whole domain and over the table's range (|x| < 2^17)."""
    wide = GEN.ring(count // 2, 64) >> (64 - (n - F))      # |x| < 2^(n-13), signed
    near = GEN.ring(count - count // 2, 64) >> (64 - 18)   # |x| < 2^17
    return torch.cat([edges(n, clip_bits), torch.cat([wide, near]) & low_mask(n)])


def secure(mod, x, n, device="cpu"):
    ctx = {}

    def deal(d):
        ctx["r"] = d.mask(x.shape, n)
        ctx["out"] = mod.keygen(d, ctx["r"], n=n)
        ctx["headers"] = d.sigma_header_bytes
        return ctx

    run = run_gate(deal, lambda p, c: mod.eval(p, masked(x.to(device), c["r"], n), n=n),
                   device=device)
    assert torch.equal(run.outputs[0], run.outputs[1]), "parties disagree on the masked output"
    assert run.outputs[0].shape == x.shape
    return (run.outputs[0] - ctx["out"]) & low_mask(n), run, ctx["headers"]


def act_model(n, clip_bits, N):
    """The `act` part of sigma_cost_model's comm_layer / key_layer for N elements."""
    b, tc = n - 2 * F + 7, (1 if clip_bits <= 8 else 2)
    a = cm.Ctr()
    cm.c_trslack(a, b, N); a.x(1, 2 * cm.cdiv(N, 32) * 32); a.x(clip_bits, N, tc)
    cm.c_lut(a, n, N, False); a.x(n, N)
    key = (4 + cm.k_trslack(6, N) + cm.k_drelu(b, N) + cm.shares(N, 1) + 8 * N * tc
           + cm.k_lut(clip_bits, N) + cm.k_sel(N))
    return a, key


@pytest.mark.parametrize("n", [50, 37])
@pytest.mark.parametrize("name", ["gelu", "silu"])
def test_secure_equals_reference(name, n):
    mod, ref, clip_bits = GATES[name]
    x = inputs(n, clip_bits)
    got, _, _ = secure(mod, x, n)
    assert torch.equal(got, ref(x, n=n))


def test_any_shape():
    n = 50
    x = inputs(n, 8, count=40)[:60].view(3, 4, 5)
    got, _, _ = secure(gelu, x, n)
    assert torch.equal(got, gelu.reference(x, n=n))


@pytest.mark.parametrize("name", ["gelu", "silu"])
@pytest.mark.parametrize("N", [64, 333])
def test_cost_equals_sigma_model(name, N):
    mod, _, clip_bits = GATES[name]
    n = 50
    x = inputs(n, clip_bits)[:N]
    _, run, headers = secure(mod, x, n)
    model, key = act_model(n, clip_bits, N)
    for p in (0, 1):
        t = run.total(p)
        assert t.bytes_sent == t.bytes_recv == model.b and t.exchanges == model.r == 7
    assert run.stats[0].by_op()[name].exchanges == 7  # counted under the gate's scope
    assert run.key_bytes[0] == run.key_bytes[1]
    assert run.key_bytes[0] + headers == key
    if name == "gelu" and N == 64:  # whole 32-bit words: sigma_spec's per-element figures
        assert 8 * run.total().bytes_sent == 145 * N
        assert run.key_bytes[0] == 607.625 * N


def test_bad_input(monkeypatch):
    n = 50

    def deal(x):
        return lambda d: gelu.keygen(d, x, n=n)

    with pytest.raises(TypeError):
        run_gate(deal(torch.zeros(4, dtype=torch.int32)), None)
    with pytest.raises(ValueError):
        run_gate(deal(torch.zeros(0, dtype=torch.int64)), None)
    with pytest.raises(ValueError):
        run_gate(lambda d: gelu.keygen(d, torch.zeros(4, dtype=torch.int64), n=20), None)
    # values outside the ring are scanned for only in debug mode (a GPU sync per gate otherwise)
    monkeypatch.setenv("SUF_DEBUG", "1")
    with pytest.raises(ValueError):
        run_gate(deal(torch.tensor([1 << n])), None)


def test_layout_cost_equals_sigma_model():
    """The fold of the declared layout (suf.mpc.gate.cost) is SIGMA's `act` cost too."""
    n = 50
    for name in ("gelu", "silu"):
        for N in (1, 64, 333):
            c = gate_api.cost(name, (N,), n=n)
            model, key = act_model(n, GATES[name][2], N)
            assert (c.sent, c.exchanges) == (model.b, model.r)
            assert c.key + c.sigma_header == key


@pytest.fixture
def cuda():
    return torch.device("cuda")


@pytest.mark.cuda
@pytest.mark.parametrize("name", ["gelu", "silu"])
def test_cuda_bert_layer(cuda, name):
    """One BERT-base FFN activation (4·L·d = 393,216 elements at L = 128) on the GPU: equal to the
    CPU reference, and the comm / key bytes of comm_layer / key_layer's `act` part."""
    mod, ref, clip_bits = GATES[name]
    n, L, d, H = 50, 128, 768, 12
    N = 4 * L * d
    x = torch.cat([inputs(n, clip_bits), GEN.ring(N, 64) >> (64 - (n - F))]) & low_mask(n)
    x = x[:N].view(L, 4 * d)
    got, run, headers = secure(mod, x, n, device=cuda)
    assert torch.equal(got.cpu(), ref(x, n=n))
    comm = cm.comm_layer(n, F, L, d, H, False, act_bits=clip_bits)["act"]
    assert run.total().bytes_sent == comm.b and run.total().exchanges == comm.r
    assert run.key_bytes[0] + headers == cm.key_layer(n, F, L, d, H, False, clipBw=clip_bits)["act"]
