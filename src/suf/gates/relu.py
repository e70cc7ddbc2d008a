"""ReLU(m -> bits_out) (sigma_spec §3.3, `gpu_relu.cu`): DReLU_m (suf.gates.drelu), then
Select(d^, x^) on bits_out bits, opened (2 exchanges).
"""
from __future__ import annotations

import torch

from suf.core.ring import low_mask
from suf.gates import drelu, select
from suf.gates.tr_with_slack import signed_below
from suf.mpc.gate import Call, Example, Gate, Header, Input, Layout, register

SIGMA_HEADER = 12  # SIGMA's ReLU key starts with three ints


def layout(shape, *, m: int, bits_out: int, type_bytes: int = 8) -> Layout:
    return Layout([Call("drelu", "drelu", (shape,), {"m": m}), Header(SIGMA_HEADER),
                   Call("select", "select", (shape, shape),
                        {"bits": bits_out, "type_bytes": type_bytes})])


def keygen(dealer, r_in: torch.Tensor, *, m: int, bits_out: int, type_bytes: int = 8,
           op: str = "relu") -> torch.Tensor:
    """ReLU keys: DReLU_m on the input, then a select of the input itself on `bits_out` bits."""
    r_d = drelu.keygen(dealer, r_in, m=m, op=f"{op}.drelu")
    dealer.sigma_header_bytes += SIGMA_HEADER
    return select.keygen(dealer, r_d, r_in & low_mask(bits_out), bits=bits_out,
                         type_bytes=type_bytes, op=f"{op}.select")


def eval(party, x_hat: torch.Tensor, *, m: int, bits_out: int, type_bytes: int = 8,
         op: str = "relu") -> torch.Tensor:
    d_hat = drelu.eval(party, x_hat, m=m, op=f"{op}.drelu")
    return select.eval(party, d_hat, x_hat & low_mask(bits_out), bits=bits_out,
                       type_bytes=type_bytes, op=f"{op}.select")


def reference(x: torch.Tensor, *, m: int, bits_out: int, type_bytes: int = 8, layer=None,
              violations=None) -> torch.Tensor:
    return (drelu.reference(x, m=m) * x) & low_mask(bits_out)


def example(bits: int, count: int) -> Example:
    return Example((Input("x", 1, (count,), bits),), {"m": bits, "bits_out": bits}, bits,
                   lambda g: [signed_below(g, count, bits, bits - 3)])


GATE = register(Gate("relu", layout, keygen, eval, reference, example))
