"""SignExtend(m -> n) (sigma_spec §3.4): the m-bit two's-complement value as an n-bit one.

With Y = x^ + 2^(m-1) mod 2^m = u + r mod 2^m (u = x + 2^(m-1) in [0, 2^m)),
u = Y - r + 2^m·1{Y < r}: one comparison on the full m bits.
"""
from __future__ import annotations

import torch

from suf.core.checks import ring_input
from suf.core.ring import Ring, low_mask
from suf.gates import tr_gadget
from suf.mpc.gate import Example, Gate, Input, Layout, register


def layout(shape, *, m: int, n: int) -> Layout:
    return Layout(tr_gadget.steps(int(torch.Size(shape).numel()), m, 2, n))


def keygen(dealer, r_in: torch.Tensor, *, m: int, n: int, op: str = "signext",
           r_out: torch.Tensor | None = None) -> torch.Tensor:
    lay = layout(r_in.shape, m=m, n=n)
    flat = r_in.flatten()
    if r_out is None:
        r_out = dealer.mask(flat.shape, n)
    q = r_out.flatten() - flat
    tr_gadget.deal(dealer, op, r_in.shape, lay.key(), flat, m, [q, q + (1 << m)], [])
    return r_out.view(r_in.shape)


def eval(party, x_hat: torch.Tensor, *, m: int, n: int, op: str = "signext") -> torch.Tensor:
    lay = layout(x_hat.shape, m=m, n=n)
    y = (x_hat.flatten() + (1 << (m - 1))) & low_mask(m)
    corr, _ = tr_gadget.choose(party, op, lay, y, m)
    if party.id == 1:
        corr = corr + y - (1 << (m - 1))
    return party.open(corr & low_mask(n), lay.open("out")).view(x_hat.shape)


def reference(x: torch.Tensor, *, m: int, n: int, layer=None, violations=None) -> torch.Tensor:
    ring_input(x, m)
    return Ring(n).wrap(Ring(m).signed(x))


def example(bits: int, count: int) -> Example:
    m = bits - 12
    return Example((Input("x", 1, (count,), m),), {"m": m, "n": bits}, bits,
                   lambda g: [g.ring(count, m)])


GATE = register(Gate("sign_extend", layout, keygen, eval, reference, example))
