"""suf.graph.cost predicts each gate's bytes, exchanges and key bytes exactly: checked against the
transport's counters and the dealt keys."""
import pytest
import torch

from harness import masked, run_gate
from suf.graph import cost
from suf.prg import Stream
from suf.gates import gelu, layernorm, relu, silu, softmax, truncate
from suf.core.ring import low_mask

GEN = Stream(b"\x44" * 32)


def _small(shape, n, limit_bits):
    return (GEN.ring(shape, 64) >> (63 - limit_bits)) & low_mask(n)


def _check(keygen, evaluate, x, n, predicted: cost.Cost, extra_masks=()):
    ctx = {}

    def deal(d):
        ctx["r"] = d.mask(x.shape, n)
        ctx["extra"] = [d.mask(e.shape, n) for e in extra_masks]
        ctx["out"] = keygen(d, ctx["r"], *ctx["extra"])
        ctx["hdr"] = d.sigma_header_bytes
        return ctx

    def ev(p, c):
        hats = [masked(e, m, n) for e, m in zip(extra_masks, c["extra"])]
        return evaluate(p, masked(x, c["r"], n), *hats)

    run = run_gate(deal, ev)
    for party in (0, 1):
        tot = run.total(party)
        assert (tot.bytes_sent, tot.exchanges) == (predicted.sent, predicted.exchanges)
        assert run.key_bytes[party] == predicted.key
    assert ctx["hdr"] == predicted.sigma_header


@pytest.mark.parametrize("n,s,N", [(50, 12, 100), (37, 15, 33), (50, 6, 10)])
def test_truncations(n, s, N):
    x = _small(N, n, n - 3)
    _check(lambda d, r: truncate.keygen_trfloor(d, r, n, s),
           lambda p, xh: truncate.eval_trfloor(p, xh, n, s), x, n, cost.trfloor(n, s, N))
    _check(lambda d, r: truncate.keygen_tr_with_slack(d, r, n, s),
           lambda p, xh: truncate.eval_tr_with_slack(p, xh, n, s), x, n,
           cost.tr_with_slack(n, s, N))


def test_relu():
    n, N = 40, 77
    _check(lambda d, r: relu.keygen(d, r, n - 1, n), lambda p, xh: relu.eval(p, xh, n - 1, n),
           _small(N, n, n - 4), n, cost.relu(n - 1, n, N))


@pytest.mark.parametrize("gate,fn", [(gelu, cost.gelu), (silu, cost.silu)])
def test_gelu_silu(gate, fn):
    n, N = 50, 70
    _check(lambda d, r: gate.keygen(d, r, n), lambda p, xh: gate.eval(p, xh, n),
           _small(N, n, 20), n, fn(n, N))


@pytest.mark.parametrize("L,causal", [(6, False), (5, True), (1, False)])
def test_softmax(L, causal):
    n, H = 50, 2
    x = _small((H, L, L), n, 16)
    _check(lambda d, r: softmax.keygen(d, r, n, causal=causal),
           lambda p, xh: softmax.eval(p, xh, n, causal=causal), x, n,
           cost.softmax(n, H * L, L, causal))


def test_layernorm():
    n, rows, d = 37, 3, 12
    x = _small((rows, d), n, 14)
    gamma, beta = _small((d,), n, 12), _small((d,), n, 20)
    predicted = cost.layernorm(n, rows, d)
    _check(lambda dl, r, rg, rb: layernorm.keygen(dl, r, rg, rb, n),
           lambda p, xh, gh, bh: layernorm.eval(p, xh, gh, bh, n), x, n, predicted,
           extra_masks=(gamma, beta))
    assert predicted.rsqrt["rsqrt_exchanges"] == 2
