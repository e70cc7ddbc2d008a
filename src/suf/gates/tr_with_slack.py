"""TrWithSlack(n -> bits_out, s) (sigma_spec §3.4, the paper's GapARS):
floor(signed(x)/2^s) mod 2^bits_out, exact for signed(x) in [-2^(n-2), 2^(n-2)) (the gap).

With x1 = x^ + 2^(n-2) = u + r mod 2^n (u = x + 2^(n-2) < 2^(n-1)), the wrap of u + r is
MSB(r)·(1 - MSB(x1)), so floor(u/2^s) = (x1 >> s) - (r >> s) - cmp + 2^(n-s)·wrap.
"""
from __future__ import annotations

import torch

from suf.core.checks import check_range, ring_input
from suf.core.ring import Ring, low_mask
from suf.gates import tr_gadget
from suf.mpc.dealer import sigma_dpf_header
from suf.mpc.gate import Example, Gate, Input, Layout, register

SIGMA_HEADER = 16  # SIGMA's TrWithSlack key header, before the comparison key's


def _bits_out(n: int, bits_out: int | None) -> int:
    bits_out = n if bits_out is None else bits_out
    if not isinstance(bits_out, int) or isinstance(bits_out, bool) or not 1 <= bits_out <= n:
        raise ValueError(f"bits_out must be an int in [1, {n}], got {bits_out!r}")
    return bits_out


def layout(shape, *, n: int, s: int, bits_out: int | None = None,
           type_bytes: int = 8) -> Layout:
    tr_gadget.check_shift(s, n)
    return Layout(tr_gadget.steps(int(torch.Size(shape).numel()), s, 3, _bits_out(n, bits_out),
                                  type_bytes, SIGMA_HEADER + sigma_dpf_header(s)))


def keygen(dealer, r_in: torch.Tensor, *, n: int, s: int, bits_out: int | None = None,
           type_bytes: int = 8, op: str = "trws",
           r_out: torch.Tensor | None = None) -> torch.Tensor:
    lay = layout(r_in.shape, n=n, s=s, bits_out=bits_out, type_bytes=type_bytes)
    bits_out = _bits_out(n, bits_out)
    flat = r_in.flatten()
    if r_out is None:
        r_out = dealer.mask(flat.shape, bits_out)
    q = r_out.flatten() - (flat >> s)
    wrap = ((flat >> (n - 1)) & 1) << (n - s)
    tr_gadget.deal(dealer, op, r_in.shape, lay.key(), flat & low_mask(s), s, [q, q - 1], [wrap])
    return r_out.view(r_in.shape)


def eval(party, x_hat: torch.Tensor, *, n: int, s: int, bits_out: int | None = None,
         type_bytes: int = 8, op: str = "trws") -> torch.Tensor:
    lay = layout(x_hat.shape, n=n, s=s, bits_out=bits_out, type_bytes=type_bytes)
    bits_out = _bits_out(n, bits_out)
    x1 = (x_hat.flatten() + (1 << (n - 2))) & low_mask(n)
    corr, (wrap,) = tr_gadget.choose(party, op, lay, x1 & low_mask(s), s)
    out = corr + wrap * (1 - (x1 >> (n - 1)))
    if party.id == 1:
        out = out + (x1 >> s) - (1 << (n - s - 2))
    return party.open(out & low_mask(bits_out), lay.open("out")).view(x_hat.shape)


def reference(x: torch.Tensor, *, n: int, s: int, bits_out: int | None = None,
              type_bytes: int = 8, op: str = "TrWithSlack", layer: str | None = None,
              violations: list | None = None) -> torch.Tensor:
    """floor(signed(x)/2^s) mod 2^bits_out.  The gadget adds 2^(n-2) and corrects one wrap, so it
    is exact only when signed(x) lies in [-2^(n-2), 2^(n-2)) (the gap); outside, its output depends
    on the dealer's mask.  That precondition is checked (RangeViolation).  When bits_out <= n - s
    the wrap term vanishes mod 2^bits_out and the gadget is an exact truncate-reduce for every x
    (nExp's 16 -> 8, the inverse's p -> p - 6, GeLU's n -> n - 17): no check is made then."""
    ring = ring_input(x, n)
    tr_gadget.check_shift(s, n)
    bits_out = _bits_out(n, bits_out)
    xs = ring.signed(x)
    if bits_out > n - s:
        check_range(xs, -(1 << (n - 2)), 1 << (n - 2), op, layer=layer, violations=violations)
    return Ring(bits_out).wrap(xs >> s)


def signed_below(gen, count: int, bits: int, limit_bits: int) -> torch.Tensor:
    """Test inputs |x| < 2^limit_bits in Z_{2^bits}, with 0, ±1 and both extremes first."""
    lim = 1 << limit_bits
    edges = torch.tensor([0, 1, -1, lim - 1, -lim])[:count]
    rnd = gen.ring(count - edges.numel(), 64) >> (64 - limit_bits - 1)
    return torch.cat([edges, rnd]) & low_mask(bits)


def example(bits: int, count: int) -> Example:
    return Example((Input("x", 1, (count,), bits),), {"n": bits, "s": 12}, bits,
                   lambda g: [signed_below(g, count, bits, bits - 3)])


GATE = register(Gate("tr_with_slack", layout, keygen, eval, reference, example))
