"""Linear layer (sigma_spec §3.6): X^·W^ + b^, then TrFloor(shift).  The matmul of suf.gates.matmul
with the published masked bias added to the opened product (public, local) before the truncation.
"""
from __future__ import annotations

import torch

from suf.core.linalg import ring_matmul
from suf.core.ring import Ring
from suf.gates import beaver, trfloor
from suf.gates.matmul import check_product, out_shape, small_operands
from suf.mpc.gate import Call, Example, Gate, Input, Layout, Open, register


def layout(x_shape, w_shape, b_shape, *, bits: int, shift: int) -> Layout:
    out = out_shape(x_shape, w_shape)
    count = int(torch.Size(out).numel())
    return Layout([beaver.key(int(torch.Size(x_shape).numel()), int(torch.Size(w_shape).numel()),
                              count, bits, "matmul"),
                   Open("product", count, bits),
                   Call("trfloor", "trfloor", (out,), {"n": bits, "s": shift})], out=out)


def keygen(dealer, r_x: torch.Tensor, r_w: torch.Tensor, r_b: torch.Tensor, *, bits: int,
           shift: int, op: str = "linear") -> torch.Tensor:
    lay = layout(r_x.shape, r_w.shape, r_b.shape, bits=bits, shift=shift)
    shape = out_shape(r_x.shape, r_w.shape)
    r_p = dealer.mask(shape, bits)
    beaver.deal(dealer, op, shape, lay.key("matmul"), r_x.flatten(), r_w.flatten(),
                (ring_matmul(r_x, r_w, bits) + r_p).flatten())
    return trfloor.keygen(dealer, Ring(bits).wrap(r_p + r_b), n=bits, s=shift,
                          op=f"{op}.trfloor")


def eval(party, x_hat: torch.Tensor, w_hat: torch.Tensor, b_hat: torch.Tensor, *, bits: int,
         shift: int, op: str = "linear") -> torch.Tensor:
    lay = layout(x_hat.shape, w_hat.shape, b_hat.shape, bits=bits, shift=shift)
    s = beaver.share(party, op, lay.key("matmul"), x_hat, w_hat,
                     out_shape(x_hat.shape, w_hat.shape), lambda a, b: ring_matmul(a, b, bits),
                     bits)
    # the opened product is public: both parties add the published masked bias
    prod = Ring(bits).wrap(party.open(s, lay.open("product")) + b_hat)
    return trfloor.eval(party, prod, n=bits, s=shift, op=f"{op}.trfloor")


def reference(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, *, bits: int, shift: int,
              layer=None, violations=None) -> torch.Tensor:
    check_product(x, w, b, bits, "linear", layer, violations)
    return trfloor.reference(Ring(bits).wrap(ring_matmul(x, w, bits) + b), n=bits, s=shift)


def example(bits: int, count: int) -> Example:
    rows, inner, cols, shift = 16, count // 16 or 1, 8, 12
    return Example((Input("x", 1, (rows, inner), bits), Input("w", 0, (inner, cols), bits),
                    Input("b", 0, (cols,), bits)), {"bits": bits, "shift": shift}, bits,
                   lambda g: [small_operands(g, (rows, inner), bits, shift),
                              small_operands(g, (inner, cols), bits, shift),
                              small_operands(g, (cols,), bits, 2 * shift)])


GATE = register(Gate("linear", layout, keygen, eval, reference, example))
