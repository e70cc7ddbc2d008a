"""Select, Beaver products, matmul, DReLU/ReLU and LUT: secure output == reference, and measured
bytes / exchanges / key bytes == SIGMA's cost model (tests/sigma_cost_model.py)."""
import pytest
import torch

import sigma_cost_model as cm
from harness import masked, run_gate
from suf.prg import Stream
from suf.core.linalg import ring_matmul
from suf.gates import beaver, lut, matmul, mul, relu, select
from suf.mpc.gate import Open
from suf.core.ring import low_mask

GEN = Stream(b"\x11" * 32)


def rnd(shape, bits):
    return GEN.ring(shape, bits)


def sent(run, party=0):
    return run.total(party).bytes_sent


def _unmask(run, r_out, bits):
    assert torch.equal(run.outputs[0], run.outputs[1]), "parties disagree on the masked output"
    return (run.outputs[0] - r_out) & low_mask(bits)


@pytest.mark.parametrize("bits,type_bytes", [(50, 8), (16, 2), (37, 8), (51, 8), (64, 8)])
def test_select(bits, type_bytes):
    N = 300
    b, y = rnd(N, 1), rnd(N, bits)
    b[:2] = torch.tensor([0, 1]); y[:2] = low_mask(bits)

    def deal(d):
        r_b, r_y = d.mask(N, 1), d.mask(N, bits)
        return r_b, r_y, select.keygen(d, r_b, r_y, bits=bits, type_bytes=type_bytes)

    def ev(p, ctx):
        r_b, r_y, _ = ctx
        return select.eval(p, b ^ r_b, masked(y, r_y, bits), bits=bits, type_bytes=type_bytes)

    ctx = {}
    run = run_gate(lambda d: ctx.setdefault("c", deal(d)), ev)
    assert torch.equal(_unmask(run, ctx["c"][2], bits), select.reference(b, y, bits=bits))
    c = cm.Ctr(); c.x(bits, N, type_bytes)
    assert sent(run) == c.b and run.total().exchanges == c.r == 1
    assert run.key_bytes[0] == cm.k_sel(N, type_bytes)


def test_mul_elementwise_and_window():
    bits, rows, cols = 50, 6, 10
    x, y, w = rnd((rows, cols), bits), rnd((rows, cols), bits), rnd((rows, 1), bits)
    for other in (y, w):
        def deal(d, other=other):
            rx, ro = d.mask(x.shape, bits), d.mask(other.shape, bits)
            return rx, ro, mul.keygen(d, rx, ro, bits=bits)

        def ev(p, ctx, other=other):
            rx, ro, _ = ctx
            return mul.eval(p, masked(x, rx, bits), masked(other, ro, bits), bits=bits)

        ctx = {}
        run = run_gate(lambda d: ctx.setdefault("c", deal(d)), ev)
        assert torch.equal(_unmask(run, ctx["c"][2], bits), mul.reference(x, other, bits=bits))
        assert run.key_bytes[0] == 8 * (x.numel() + other.numel() + x.numel())
        assert run.total().exchanges == 1 and sent(run) == cm.rec(bits, x.numel())


@pytest.mark.parametrize("xs,ws", [((5, 7), (7, 3)), ((2, 5, 7), (2, 7, 4)), ((1, 1), (1, 1))])
@pytest.mark.parametrize("bits", [37, 50, 51, 64])
def test_beaver_matmul_product(xs, ws, bits):
    """The Beaver product of any two ring matrices (wrapping products included), opened."""
    x, w = rnd(xs, bits), rnd(ws, bits)
    x.view(-1)[0] = low_mask(bits)
    out = matmul.out_shape(xs, ws)
    count = int(torch.Size(out).numel())
    key = beaver.key(x.numel(), w.numel(), count, bits)

    def deal(d):
        rx, rw, ro = d.mask(xs, bits), d.mask(ws, bits), d.mask(out, bits)
        beaver.deal(d, "matmul", out, key, rx.flatten(), rw.flatten(),
                    (ring_matmul(rx, rw, bits) + ro).flatten())
        return rx, rw, ro

    def ev(p, ctx):
        rx, rw, _ = ctx
        s = beaver.share(p, "matmul", key, masked(x, rx, bits), masked(w, rw, bits), out,
                         lambda a, b: ring_matmul(a, b, bits), bits)
        return p.open(s, Open("product", count, bits))

    ctx = {}
    run = run_gate(lambda d: ctx.setdefault("c", deal(d)), ev)
    ref = ring_matmul(x, w, bits)
    assert torch.equal(_unmask(run, ctx["c"][2], bits), ref)
    assert run.key_bytes[0] == 8 * (x.numel() + w.numel() + ref.numel())


@pytest.mark.parametrize("m,bits_out,type_bytes", [(39, 40, 8), (40, 16, 2), (8, 50, 8), (5, 8, 1),
                                                   (37, 37, 8), (50, 50, 8), (51, 51, 8)])
def test_drelu_relu(m, bits_out, type_bytes):
    N = 400
    lim = 1 << (m - 3)  # callers keep |x| well inside 2^(m-1)
    x = (GEN.ring(N, 64) % (2 * lim)) - lim
    x[:6] = torch.tensor([0, 1, -1, lim - 1, -lim, 2])
    R = max(m, bits_out)  # the input's ring; DReLU reads its low m bits, select its low bits_out
    x = x & low_mask(R)

    def deal(d):
        r = d.mask(N, R)
        return r, relu.keygen(d, r, m=m, bits_out=bits_out, type_bytes=type_bytes)

    def ev(p, ctx):
        return relu.eval(p, masked(x, ctx[0], R), m=m, bits_out=bits_out, type_bytes=type_bytes)

    ctx = {}
    run = run_gate(lambda d: ctx.setdefault("c", deal(d)), ev)
    want = relu.reference(x, m=m, bits_out=bits_out)
    assert torch.equal(_unmask(run, ctx["c"][1], bits_out), want)
    c = cm.Ctr(); cm.c_relu(c, bits_out, N, type_bytes)
    assert sent(run) == c.b and run.total().exchanges == c.r == 2
    assert run.key_bytes[0] + 12 + (8 if m - 1 <= 7 else 24) == cm.k_relu(m, N, type_bytes)


@pytest.mark.parametrize("k,bits", [(8, 50), (10, 37), (6, 50), (13, 50), (8, 51)])
def test_lut(k, bits):
    N = 64 if k == 13 else 200
    table = rnd(1 << k, bits)
    x = rnd(N, k)
    x[:3] = torch.tensor([0, 1, (1 << k) - 1])

    def deal(d):
        r = d.mask(N, k)
        return r, lut.keygen(d, r, k=k, bits=bits)

    def ev(p, ctx):
        return lut.eval(p, masked(x, ctx[0], k), table, k=k, bits=bits)

    ctx = {}
    run = run_gate(lambda d: ctx.setdefault("c", deal(d)), ev)
    assert torch.equal(_unmask(run, ctx["c"][1], bits), lut.reference(x, table, k=k))
    c = cm.Ctr(); cm.c_lut(c, bits, N)
    assert sent(run) == c.b and run.total().exchanges == c.r == 3
    if k > 7:
        assert run.key_bytes[0] + 4 + 24 == cm.k_lut(k, N)
