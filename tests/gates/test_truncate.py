"""TR, SignExtend, TrFloor and TrWithSlack: secure == reference on random inputs and on the edges
of each gadget's domain, and bytes / exchanges / key bytes == SIGMA's cost model."""
import pytest
import torch

import sigma_cost_model as cm
from harness import masked, run_gate
from suf.prg import Stream
from suf.gates import tr, tr_with_slack, trfloor
from suf.mpc.dealer import sigma_dpf_header
from suf.core.checks import RangeViolation
from suf.core.ring import low_mask

GEN = Stream(b"\x22" * 32)


def edges(n, s, limit_bits):
    """0, ±1, ±2^s ± 1, ±3·2^s, and the largest values allowed (|x| < 2^limit_bits)."""
    vals = [0, 1, -1, 2, -2]
    for base in (1 << s, 3 << s):
        vals += [base + d for d in (-1, 0, 1)] + [-base + d for d in (-1, 0, 1)]
    lim = 1 << limit_bits
    vals += [lim - 1, -lim, lim - 2, -lim + 1]
    as_int64 = [(v % 2**64) - (2**64 if v % 2**64 >= 2**63 else 0) for v in vals]
    return torch.tensor(as_int64) & low_mask(n)


def inputs(n, s, limit_bits, count=300):
    rnd = GEN.ring(count, 64) >> (63 - limit_bits)  # signed, |x| <= 2^limit_bits
    return torch.cat([edges(n, s, limit_bits), rnd & low_mask(n)])


def secure(keygen, evaluate, x, n, out_bits):
    ctx = {}

    def deal(d):
        r = d.mask(x.shape, n)
        ctx["r"], ctx["out"] = r, keygen(d, r)
        return ctx

    run = run_gate(deal, lambda p, c: evaluate(p, masked(x, c["r"], n)))
    assert torch.equal(run.outputs[0], run.outputs[1])
    return (run.outputs[0] - ctx["out"]) & low_mask(out_bits), run


@pytest.mark.parametrize("n,s", [(50, 12), (50, 15), (37, 12), (50, 6), (51, 12), (63, 12),
                                 (20, 3)])
def test_trfloor_any_input(n, s):
    x = inputs(n, s, n - 1)  # every ring element is valid, including -2^(n-1)
    got, run = secure(lambda d, r: trfloor.keygen(d, r, n=n, s=s),
                      lambda p, xh: trfloor.eval(p, xh, n=n, s=s), x, n, n)
    assert torch.equal(got, trfloor.reference(x, n=n, s=s))
    N = x.numel()
    c = cm.Ctr(); cm.c_trfloor(c, n, s, N)
    assert run.total().bytes_sent == c.b and run.total().exchanges == c.r == 4
    headers = 16 + sigma_dpf_header(s) + sigma_dpf_header(n - s)
    assert run.key_bytes[0] + headers == cm.k_trfloor(n, s, N)


@pytest.mark.parametrize("n,s", [(50, 12), (50, 8), (37, 5)])
def test_tr_unsigned(n, s):
    x = GEN.ring(200, n)
    got, run = secure(lambda d, r: tr.keygen(d, r, n=n, s=s),
                      lambda p, xh: tr.eval(p, xh, n=n, s=s), x, n, n - s)
    assert torch.equal(got, tr.reference(x, n=n, s=s))
    assert run.total().exchanges == 2


@pytest.mark.parametrize("n,s,bits_out,type_bytes", [(50, 12, 50, 8), (50, 6, 33, 8),
                                                     (16, 8, 8, 1), (19, 6, 13, 2),
                                                     (37, 12, 37, 8), (51, 12, 51, 8),
                                                     (63, 12, 63, 8)])
def test_tr_with_slack(n, s, bits_out, type_bytes):
    gap = bits_out <= n - s  # then an exact truncate-reduce for every x
    x = inputs(n, s, n - 1 if gap else n - 2)
    got, run = secure(lambda d, r: tr_with_slack.keygen(d, r, n=n, s=s, bits_out=bits_out, type_bytes=type_bytes),
                      lambda p, xh: tr_with_slack.eval(p, xh, n=n, s=s, bits_out=bits_out, type_bytes=type_bytes),
                      x, n, bits_out)
    assert torch.equal(got, tr_with_slack.reference(x, n=n, s=s, bits_out=bits_out))
    N = x.numel()
    c = cm.Ctr(); cm.c_trslack(c, bits_out, N, type_bytes)
    assert run.total().bytes_sent == c.b and run.total().exchanges == c.r == 2
    assert run.key_bytes[0] + 16 + sigma_dpf_header(s) == cm.k_trslack(s, N, type_bytes)


def test_tr_with_slack_outside_gap_is_reported_by_the_reference():
    n, s = 50, 12
    x = torch.tensor([1 << (n - 2)])  # just outside [-2^(n-2), 2^(n-2))
    with pytest.raises(RangeViolation):
        tr_with_slack.reference(x, n=n, s=s)
