"""TrFloor(n -> n, s) (sigma_spec §3.4): TR_{n,s} then SignExtend(n-s -> n), i.e.
floor(signed(x)/2^s) mod 2^n for every x (no precondition).  It follows every matmul in SIGMA.
"""
from __future__ import annotations

import torch

from suf.core.checks import ring_input
from suf.gates import sign_extend, tr, tr_gadget
from suf.gates.tr_with_slack import signed_below
from suf.mpc.gate import Call, Example, Gate, Header, Input, Layout, register

SIGMA_HEADER = 16  # SIGMA's TrFloor key header


def layout(shape, *, n: int, s: int) -> Layout:
    tr_gadget.check_shift(s, n)
    return Layout([Header(SIGMA_HEADER), Call("tr", "tr", (shape,), {"n": n, "s": s}),
                   Call("signext", "sign_extend", (shape,), {"m": n - s, "n": n})])


def keygen(dealer, r_in: torch.Tensor, *, n: int, s: int, op: str = "trfloor",
           r_out: torch.Tensor | None = None) -> torch.Tensor:
    layout(r_in.shape, n=n, s=s)
    dealer.sigma_header_bytes += SIGMA_HEADER
    r_mid = tr.keygen(dealer, r_in, n=n, s=s, op=f"{op}.tr")
    return sign_extend.keygen(dealer, r_mid, m=n - s, n=n, op=f"{op}.signext", r_out=r_out)


def eval(party, x_hat: torch.Tensor, *, n: int, s: int, op: str = "trfloor") -> torch.Tensor:
    mid = tr.eval(party, x_hat, n=n, s=s, op=f"{op}.tr")
    return sign_extend.eval(party, mid, m=n - s, n=n, op=f"{op}.signext")


def reference(x: torch.Tensor, *, n: int, s: int, layer=None, violations=None) -> torch.Tensor:
    ring = ring_input(x, n)
    tr_gadget.check_shift(s, n)
    return ring.wrap(ring.signed(x) >> s)


def example(bits: int, count: int) -> Example:
    return Example((Input("x", 1, (count,), bits),), {"n": bits, "s": 12}, bits,
                   lambda g: [signed_below(g, count, bits, bits - 1)])


GATE = register(Gate("trfloor", layout, keygen, eval, reference, example))
