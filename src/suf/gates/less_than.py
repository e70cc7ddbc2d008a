"""LessThan: the masked bit 1{x < β} for a public threshold β, exact over the whole signed n-bit
ring, from ONE comparison key and one exchange.  It is the predicate "x < β" of the SUF IR
(suf_spec.md §2.1) and the comparison behind every interval of a piecewise function.

Let u = x + 2^(n-1) mod 2^n (the signed order as the unsigned one) and b = β + 2^(n-1), so that
x < β ⟺ u ∈ [0, b).  Both parties know y = u^ = u + R mod 2^n (R: x's mask).  With one comparison
key for α = R (suf.fss.compare: lt(z) = XOR-shares of 1{z < R}) and y_0 = y, y_1 = y - b mod 2^n:
    u ∈ [0, b)  ⟺  R ∈ (y_1, y_0] cyclically  =  lt(y_0) ^ lt(y_1) ^ 1{y_1 > y_0}
(the last term, public, marks the arc that wraps through 0; party 1 adds it): the same interval
rule as the rsqrt lookup (docs/rsqrt.md), with one interval.  Key: the comparison key (n bits) and
an XOR-shared bit r_out; the opened bit is 1{x < β} ^ r_out.  Needs -2^(n-1) < β < 2^(n-1), so
that the interval is neither empty nor the whole ring.
"""
from __future__ import annotations

import torch

from suf.core.checks import check_bits, check_gate_input, ring_input
from suf.core.ring import low_mask
from suf.fss import compare
from suf.gates.tr_with_slack import signed_below
from suf.mpc.dealer import sigma_dpf_header
from suf.mpc.gate import Bits, Example, Gate, Input, Key, Layout, Open, Raw, register


def _bound(n: int, beta: int) -> int:
    """b = β + 2^(n-1), the threshold in the unsigned order; ValueError unless 0 < b < 2^n."""
    check_bits(n, 8)
    half = 1 << (n - 1)
    if not isinstance(beta, int) or isinstance(beta, bool) or not -half < beta < half:
        raise ValueError(f"less_than: beta must be an int in (-2^{n - 1}, 2^{n - 1}), got {beta!r}")
    return beta + half


def layout(shape, *, n: int, beta: int) -> Layout:
    _bound(n, beta)
    count = int(torch.Size(shape).numel())
    return Layout([Key("", (Raw("cmp", compare.payload_size(n, count)), Bits("r_out", count)),
                       sigma_dpf_header(n)),
                   Open("bit", count, 1)])


def keygen(dealer, r_in: torch.Tensor, *, n: int, beta: int, op: str = "less_than") -> torch.Tensor:
    """Keys of 1{x < β} for x masked with r_in (Z_{2^n}); returns the output bit mask."""
    lay = layout(r_in.shape, n=n, beta=beta)
    k0, k1 = compare.keygen(r_in.flatten() & low_mask(n), n, dealer.stream)
    r_out = dealer.mask(r_in.shape, 1)
    dealer.deal(op, r_in.shape, lay.key(),
                {"cmp": (compare.to_payload(k0), compare.to_payload(k1)), "r_out": r_out})
    return r_out


def eval(party, x_hat: torch.Tensor, *, n: int, beta: int, op: str = "less_than") -> torch.Tensor:
    """The opened masked bit 1{x < β} ^ r_out (one exchange of one bit per element)."""
    lay = layout(x_hat.shape, n=n, beta=beta)
    b = _bound(n, beta)
    ring = check_gate_input(x_hat, n, "x_hat")
    k = party.read(op, lay.key())
    count = x_hat.numel()
    cmp_key = compare.from_payload(k["cmp"], n, count, party.id, party.device)
    y0 = ring.wrap(x_hat.flatten() + (1 << (n - 1)))
    y1 = ring.wrap(y0 - b)
    lt = compare.eval_lt(cmp_key, torch.stack([y0, y1]))
    bit = lt[0] ^ lt[1] ^ k["r_out"]
    if party.id == 1:
        bit = bit ^ (y1 > y0).to(torch.int64)
    return party.open(bit, lay.open("bit")).view(x_hat.shape)


def reference(x: torch.Tensor, *, n: int, beta: int, layer=None, violations=None) -> torch.Tensor:
    _bound(n, beta)
    ring = ring_input(x, n)
    return (ring.signed(x) < beta).to(torch.int64)


def example(bits: int, count: int) -> Example:
    beta = -(1 << (bits - 14)) + 5  # a negative threshold with a small odd offset
    return Example((Input("x", 1, (count,), bits),), {"n": bits, "beta": beta}, 1,
                   lambda g: [signed_below(g, count, bits, bits - 12)])


GATE = register(Gate("less_than", layout, keygen, eval, reference, example))
