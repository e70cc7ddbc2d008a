"""Linear layer (sigma_spec §3.6): X^·W^ + b^, then TrFloor(shift) (TrWithSlack with
`truncation="gap"`).  The matmul of suf.gates.matmul with the published masked bias added to the
opened product (public, local) before the truncation.
"""
from __future__ import annotations

import torch

from suf.core.linalg import ring_matmul
from suf.core.ring import Ring
from suf.gates.matmul import (check_product, eval_product, keygen_product, out_shape,
                              product_layout, small_operands, truncate_reference)
from suf.mpc.gate import Example, Gate, Input, Layout, register


def layout(x_shape, w_shape, b_shape, *, bits: int, shift: int,
           truncation: str = "faithful") -> Layout:
    out = out_shape(x_shape, w_shape)
    return product_layout(x_shape, w_shape, out, out, bits=bits, shift=shift,
                          truncation=truncation)


def keygen(dealer, r_x: torch.Tensor, r_w: torch.Tensor, r_b: torch.Tensor, *, bits: int,
           shift: int, truncation: str = "faithful", op: str = "linear") -> torch.Tensor:
    lay = layout(r_x.shape, r_w.shape, r_b.shape, bits=bits, shift=shift, truncation=truncation)
    return keygen_product(dealer, lay, r_x, r_w, lay.out, bits=bits, shift=shift, op=op,
                          r_bias=r_b)


def eval(party, x_hat: torch.Tensor, w_hat: torch.Tensor, b_hat: torch.Tensor, *, bits: int,
         shift: int, truncation: str = "faithful", op: str = "linear") -> torch.Tensor:
    lay = layout(x_hat.shape, w_hat.shape, b_hat.shape, bits=bits, shift=shift,
                 truncation=truncation)
    return eval_product(party, lay, x_hat, w_hat, lay.out, bits=bits, shift=shift, op=op,
                        bias=b_hat)


def reference(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, *, bits: int, shift: int,
              truncation: str = "faithful", layer=None, violations=None) -> torch.Tensor:
    check_product(x, w, b, bits, "linear", layer, violations)
    return truncate_reference(Ring(bits).wrap(ring_matmul(x, w, bits) + b), n=bits, s=shift,
                              truncation=truncation, what="linear product + bias", layer=layer,
                              violations=violations)


def example(bits: int, count: int) -> Example:
    rows, inner, cols, shift = 16, count // 16 or 1, 8, 12
    return Example((Input("x", 1, (rows, inner), bits), Input("w", 0, (inner, cols), bits),
                    Input("b", 0, (cols,), bits)), {"bits": bits, "shift": shift}, bits,
                   lambda g: [small_operands(g, (rows, inner), bits, shift),
                              small_operands(g, (inner, cols), bits, shift),
                              small_operands(g, (cols,), bits, 2 * shift)])


GATE = register(Gate("linear", layout, keygen, eval, reference, example))
