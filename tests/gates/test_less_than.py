"""LessThan (suf.gates.less_than) against its reference: exhaustive on an 8-bit ring for thresholds
at the edges and inside, randomized on 50 bits; and its declared cost equals the measured one."""
from __future__ import annotations

import pytest
import torch

from harness import masked, run_gate
from suf.core.ring import low_mask
from suf.gates import less_than
from suf.mpc import gate as gates
from suf.prg import Stream


def _secure(x: torch.Tensor, n: int, beta: int):
    ctx = {}

    def deal(dealer):
        ctx["r"] = dealer.mask(x.shape, n)
        ctx["r_out"] = less_than.keygen(dealer, ctx["r"], n=n, beta=beta)
        return ctx

    def evaluate(party, c):
        return less_than.eval(party, masked(x, c["r"], n), n=n, beta=beta)

    run = run_gate(deal, evaluate, ring_bits=n)
    y0, y1 = run.outputs
    assert torch.equal(y0, y1)
    return y0 ^ ctx["r_out"], run


@pytest.mark.parametrize("beta", [-127, -1, 0, 1, 77, 127])
def test_exhaustive_8_bits(beta):
    n = 8
    x = torch.arange(1 << n, dtype=torch.int64)
    got, run = _secure(x, n, beta)
    want = less_than.reference(x, n=n, beta=beta)
    assert torch.equal(got, want)
    assert int(want.sum()) == beta + 128  # the signed values below beta
    c = gates.cost("less_than", tuple(x.shape), n=n, beta=beta)
    assert run.total(0).bytes_sent == c.sent and run.total(0).exchanges == c.exchanges == 1
    assert run.key_bytes == [c.key, c.key]


def test_randomized_50_bits_around_the_threshold():
    n, beta = 50, 123456789
    g = Stream(b"less-than".ljust(32, b"\0"))
    near = beta + (g.ring(300, 8) - 128)  # around β
    far = g.ring(300, n)  # anywhere in the ring
    x = torch.cat([near & low_mask(n), far, torch.tensor([(1 << 49), (1 << 49) - 1])])
    got, _ = _secure(x, n, beta)
    assert torch.equal(got, less_than.reference(x, n=n, beta=beta))
    assert 0 < int(got.sum()) < x.numel()


def test_bad_threshold_is_refused():
    with pytest.raises(ValueError, match="beta"):
        less_than.layout((4,), n=8, beta=128)
    with pytest.raises(ValueError, match="beta"):
        less_than.layout((4,), n=8, beta=-128)
