"""TR_{n,s} (truncate-reduce, sigma_spec §3.4): floor(x/2^s) of the unsigned value, in Z_{2^(n-s)}.

cmp = 1{x^ mod 2^s < r mod 2^s} is the borrow: x >> s = (x^ >> s) - (r >> s) - cmp.  Exact for
every x; it equals TrFloor(x, n, s) mod 2^(n-s).
"""
from __future__ import annotations

import torch

from suf.core.checks import ring_input
from suf.core.ring import low_mask
from suf.gates import tr_gadget
from suf.mpc.gate import Example, Gate, Input, Layout, register


def layout(shape, *, n: int, s: int) -> Layout:
    tr_gadget.check_shift(s, n)
    return Layout(tr_gadget.steps(int(torch.Size(shape).numel()), s, 2, n - s))


def keygen(dealer, r_in: torch.Tensor, *, n: int, s: int, op: str = "tr",
           r_out: torch.Tensor | None = None) -> torch.Tensor:
    lay = layout(r_in.shape, n=n, s=s)
    flat = r_in.flatten()
    if r_out is None:
        r_out = dealer.mask(flat.shape, n - s)
    q = r_out.flatten() - (flat >> s)
    tr_gadget.deal(dealer, op, r_in.shape, lay.key(), flat & low_mask(s), s, [q, q - 1], [])
    return r_out.view(r_in.shape)


def eval(party, x_hat: torch.Tensor, *, n: int, s: int, op: str = "tr") -> torch.Tensor:
    lay = layout(x_hat.shape, n=n, s=s)
    flat = x_hat.flatten()
    corr, _ = tr_gadget.choose(party, op, lay, flat & low_mask(s), s)
    if party.id == 1:
        corr = corr + (flat >> s)
    return party.open(corr & low_mask(n - s), lay.open("out")).view(x_hat.shape)


def reference(x: torch.Tensor, *, n: int, s: int, layer=None, violations=None) -> torch.Tensor:
    ring_input(x, n)
    tr_gadget.check_shift(s, n)
    return x >> s


def example(bits: int, count: int) -> Example:
    s = 12
    return Example((Input("x", 1, (count,), bits),), {"n": bits, "s": s}, bits - s,
                   lambda g: [g.ring(count, bits)])


GATE = register(Gate("tr", layout, keygen, eval, reference, example))
