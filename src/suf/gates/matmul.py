"""Matmul (sigma_spec §3.6): X^ (..., M, K) times Y^ (..., K, N), both public masked values (a
weight W^ = W + r_W is published once per deployment by the model owner), then TrFloor(shift), as
SIGMA does after every matmul.  Beaver key (suf.gates.beaver) of r_X, r_Y, r_X·r_Y + r_P; the
product (scale 2f) is opened, then truncated.  `truncation="gap"` (part of the layout) truncates
with TrWithSlack instead (docs/truncation.md): exact while the product lies in [-2^(n-2), 2^(n-2)),
which its reference checks.
"""
from __future__ import annotations

import torch

from suf.core.checks import check_range
from suf.core.linalg import ring_matmul
from suf.core.ring import Ring, low_mask
from suf.gates import beaver, tr_with_slack, trfloor
from suf.mpc.gate import (Call, Example, Gate, Input, Layout, Open, get, register,
                          truncation_gate)


def out_shape(x_shape, w_shape) -> tuple:
    if len(x_shape) < 2 or len(w_shape) < 2 or x_shape[-1] != w_shape[-2]:
        raise ValueError(f"matmul: cannot multiply {tuple(x_shape)} by {tuple(w_shape)}")
    batch = torch.broadcast_shapes(tuple(x_shape[:-2]), tuple(w_shape[:-2]))
    return (*batch, x_shape[-2], w_shape[-1])


def _numel(shape) -> int:
    return int(torch.Size(shape).numel())


# -- the pipeline every product gate shares (matmul, causal_matmul, linear) --------------------
# Beaver key of r_X, r_Y and r_X·r_Y + r_P on the product's `opened` entries (all of them, or the
# packed lower triangle), the opened product, plus an optional public bias, then TrFloor(shift)
# (truncation "faithful") or TrWithSlack(shift) ("gap").

def product_layout(x_shape, y_shape, opened, out, *, bits: int, shift: int,
                   truncation: str = "faithful") -> Layout:
    return Layout([beaver.key(_numel(x_shape), _numel(y_shape), _numel(opened), bits, "matmul"),
                   Open("product", _numel(opened), bits),
                   Call("trfloor", truncation_gate(truncation), (opened,),
                        {"n": bits, "s": shift})], out=out)


def keygen_product(dealer, lay: Layout, r_x: torch.Tensor, r_y: torch.Tensor, opened, *,
                   bits: int, shift: int, op: str, pack=None, r_bias=None) -> torch.Tensor:
    """The keys of the pipeline; returns the mask of the truncated `opened` entries."""
    r_p = dealer.mask(opened, bits)
    full = ring_matmul(r_x, r_y, bits)
    beaver.deal(dealer, op, opened, lay.key("matmul"), r_x.flatten(), r_y.flatten(),
                ((full if pack is None else pack(full)) + r_p).flatten())
    r_in = r_p if r_bias is None else Ring(bits).wrap(r_p + r_bias)
    tr = lay.calls("trfloor")[0].gate
    return get(tr).keygen(dealer, r_in, n=bits, s=shift, op=f"{op}.{tr}")


def eval_product(party, lay: Layout, x_hat: torch.Tensor, y_hat: torch.Tensor, opened, *,
                 bits: int, shift: int, op: str, pack=None, bias=None) -> torch.Tensor:
    """One party's run of the pipeline: the masked truncated `opened` entries."""
    s = beaver.share(party, op, lay.key("matmul"), x_hat, y_hat, opened,
                     lambda a, b: ring_matmul(a, b, bits), bits, pack=pack)
    prod = party.open(s, lay.open("product"))
    if bias is not None:  # public: both parties add the published masked bias
        prod = Ring(bits).wrap(prod + bias)
    tr = lay.calls("trfloor")[0].gate
    return get(tr).eval(party, prod, n=bits, s=shift, op=f"{op}.{tr}")


def truncate_reference(x: torch.Tensor, *, n: int, s: int, truncation: str, what: str,
                       layer=None, violations=None) -> torch.Tensor:
    """The reference of truncation mode `truncation`; "gap" checks that `what` lies in
    TrWithSlack's gap (RangeViolation)."""
    if truncation_gate(truncation) == "trfloor":
        return trfloor.reference(x, n=n, s=s)
    return tr_with_slack.reference(x, n=n, s=s, op=f"{what} inside TrWithSlack's gap",
                                   layer=layer, violations=violations)


# -- the matmul gate ----------------------------------------------------------------------------
def layout(x_shape, y_shape, *, bits: int, shift: int, truncation: str = "faithful") -> Layout:
    out = out_shape(x_shape, y_shape)
    return product_layout(x_shape, y_shape, out, out, bits=bits, shift=shift,
                          truncation=truncation)


def keygen(dealer, r_x: torch.Tensor, r_y: torch.Tensor, *, bits: int, shift: int,
           truncation: str = "faithful", op: str = "matmul") -> torch.Tensor:
    lay = layout(r_x.shape, r_y.shape, bits=bits, shift=shift, truncation=truncation)
    return keygen_product(dealer, lay, r_x, r_y, lay.out, bits=bits, shift=shift, op=op)


def eval(party, x_hat: torch.Tensor, y_hat: torch.Tensor, *, bits: int, shift: int,
         truncation: str = "faithful", op: str = "matmul") -> torch.Tensor:
    lay = layout(x_hat.shape, y_hat.shape, bits=bits, shift=shift, truncation=truncation)
    return eval_product(party, lay, x_hat, y_hat, lay.out, bits=bits, shift=shift, op=op)


def check_product(x, y, bias, bits: int, op: str, layer=None, violations=None,
                  where=None) -> None:
    """The product (scale 2f) must not wrap in the ring: |x·y + bias| < 2^(bits-1), with the
    signed operands multiplied in float64 (ample precision for a bound)."""
    s = Ring(bits).signed
    prod = torch.matmul(s(x).to(torch.float64), s(y).to(torch.float64))
    if bias is not None:
        prod = prod + s(bias).to(torch.float64)
    half = 1 << (bits - 1)
    check_range(prod, -half, half, f"{op} product (scale 24) inside the ring", layer=layer,
                violations=violations, where=where)


def reference(x: torch.Tensor, y: torch.Tensor, *, bits: int, shift: int,
              truncation: str = "faithful", layer=None, violations=None) -> torch.Tensor:
    check_product(x, y, None, bits, "matmul", layer, violations)
    return truncate_reference(ring_matmul(x, y, bits), n=bits, s=shift, truncation=truncation,
                              what="matmul product", layer=layer, violations=violations)


def small_operands(gen, shape, bits: int, shift: int) -> torch.Tensor:
    """Test operands whose fixed-point products stay inside the ring."""
    small = bits - shift - 4
    return (gen.ring(shape, 64) >> (64 - small // 2)) & low_mask(bits)


def example(bits: int, count: int) -> Example:
    rows, inner, cols = 16, count // 16 or 1, 8
    shift = 12
    return Example((Input("x", 1, (rows, inner), bits), Input("w", 0, (inner, cols), bits)),
                   {"bits": bits, "shift": shift}, bits,
                   lambda g: [small_operands(g, (rows, inner), bits, shift),
                              small_operands(g, (inner, cols), bits, shift)])


GATE = register(Gate("matmul", layout, keygen, eval, reference, example))
