"""Mul (sigma_spec §3.5): the product of two masked values, elementwise with broadcasting (SIGMA's
`windowMul` broadcasts one operand per row or per column), opened.  Beaver key (suf.gates.beaver):
<r_x>, <r_y>, <r_x·r_y + r_out> as full words, so a window multiply's key is 2 words per element
+ 1 per row or column.  The product is at scale 2f; callers truncate it (TrWithSlack).
"""
from __future__ import annotations

import torch

from suf.core.ring import low_mask
from suf.gates import beaver
from suf.mpc.gate import Example, Gate, Input, Layout, Open, register


def _numel(shape) -> int:
    return int(torch.Size(shape).numel())


def layout(x_shape, y_shape, *, bits: int) -> Layout:
    out = torch.broadcast_shapes(tuple(x_shape), tuple(y_shape))
    return Layout([beaver.key(_numel(x_shape), _numel(y_shape), _numel(out), bits),
                   Open("out", _numel(out), bits)])


def keygen(dealer, r_x: torch.Tensor, r_y: torch.Tensor, *, bits: int, op: str = "mul",
           r_out: torch.Tensor | None = None) -> torch.Tensor:
    lay = layout(r_x.shape, r_y.shape, bits=bits)
    shape = torch.broadcast_shapes(r_x.shape, r_y.shape)
    if r_out is None:
        r_out = dealer.mask(shape, bits)
    elif r_out.shape != shape:
        raise ValueError(f"{op}: output mask shape {tuple(r_out.shape)} != {tuple(shape)}")
    beaver.deal(dealer, op, shape, lay.key(), r_x.flatten(), r_y.flatten(),
                (r_x * r_y + r_out).flatten())
    return r_out


def eval(party, x_hat: torch.Tensor, y_hat: torch.Tensor, *, bits: int,
         op: str = "mul") -> torch.Tensor:
    """The opened masked x·y + r_out (one exchange)."""
    lay = layout(x_hat.shape, y_hat.shape, bits=bits)
    shape = torch.broadcast_shapes(x_hat.shape, y_hat.shape)
    s = beaver.share(party, op, lay.key(), x_hat, y_hat, shape, torch.mul, bits)
    return party.open(s, lay.open("out"))


def reference(x: torch.Tensor, y: torch.Tensor, *, bits: int, layer=None,
              violations=None) -> torch.Tensor:
    return (x * y) & low_mask(bits)


def example(bits: int, count: int) -> Example:
    return Example((Input("x", 1, (count,), bits), Input("y", 0, (count,), bits)), {"bits": bits},
                   bits, lambda g: [g.ring(count, bits), g.ring(count, bits)])


GATE = register(Gate("mul", layout, keygen, eval, reference, example))
