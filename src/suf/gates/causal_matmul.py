"""Causal matmul (SIGMA's `cIsLowerTriangular`): the lower triangle of A^·B^ ((..., L, L), the
attention logits of a decoder), then TrFloor(shift) (or TrWithSlack: `truncation`); zeros above
the diagonal, with mask 0.

The Beaver key (suf.gates.beaver) holds shares of r_A and r_B in full and of r_A·r_B + r_P on the
packed triangle only (row by row, L(L+1)/2 entries per block), which is all that is opened and
truncated.
"""
from __future__ import annotations

import torch

from suf.core.linalg import ring_matmul
from suf.gates.matmul import (check_product, eval_product, keygen_product, out_shape,
                              product_layout, small_operands, truncate_reference)
from suf.mpc.gate import Example, Gate, Input, Layout, register


def _tril(length: int, device) -> torch.Tensor:
    """Flat indices of the lower triangle (j <= i) of an L x L block, row by row."""
    rows, cols = torch.tril_indices(length, length, device=device)
    return rows * length + cols


def pack_tril(x: torch.Tensor) -> torch.Tensor:
    """(..., L, L) -> (..., L(L+1)/2): the lower triangle, row by row (SIGMA's causal packing)."""
    return x.flatten(-2)[..., _tril(x.shape[-1], x.device)]


def unpack_tril(p: torch.Tensor, length: int) -> torch.Tensor:
    """The inverse of pack_tril, with zeros above the diagonal."""
    out = torch.zeros((*p.shape[:-1], length * length), dtype=p.dtype, device=p.device)
    out[..., _tril(length, p.device)] = p
    return out.view(*p.shape[:-1], length, length)


def _packed_shape(x_shape, y_shape) -> tuple:
    full = out_shape(x_shape, y_shape)
    if full[-1] != full[-2]:
        raise ValueError(f"causal matmul: the product {full} is not square")
    return (*full[:-2], full[-1] * (full[-1] + 1) // 2)


def layout(x_shape, y_shape, *, bits: int, shift: int, truncation: str = "faithful") -> Layout:
    return product_layout(x_shape, y_shape, _packed_shape(x_shape, y_shape),
                          out_shape(x_shape, y_shape), bits=bits, shift=shift,
                          truncation=truncation)


def keygen(dealer, r_x: torch.Tensor, r_y: torch.Tensor, *, bits: int, shift: int,
           truncation: str = "faithful", op: str = "causal_matmul") -> torch.Tensor:
    lay = layout(r_x.shape, r_y.shape, bits=bits, shift=shift, truncation=truncation)
    r_t = keygen_product(dealer, lay, r_x, r_y, _packed_shape(r_x.shape, r_y.shape), bits=bits,
                         shift=shift, op=op, pack=pack_tril)
    return unpack_tril(r_t, r_x.shape[-2])


def eval(party, x_hat: torch.Tensor, y_hat: torch.Tensor, *, bits: int, shift: int,
         truncation: str = "faithful", op: str = "causal_matmul") -> torch.Tensor:
    lay = layout(x_hat.shape, y_hat.shape, bits=bits, shift=shift, truncation=truncation)
    t = eval_product(party, lay, x_hat, y_hat, _packed_shape(x_hat.shape, y_hat.shape),
                     bits=bits, shift=shift, op=op, pack=pack_tril)
    return unpack_tril(t, x_hat.shape[-2])


def reference(x: torch.Tensor, y: torch.Tensor, *, bits: int, shift: int,
              truncation: str = "faithful", layer=None, violations=None) -> torch.Tensor:
    length = x.shape[-2]
    lower = torch.ones(length, length, dtype=torch.bool, device=x.device).tril()
    check_product(x, y, None, bits, "causal matmul", layer, violations, where=lower)
    prod = ring_matmul(x, y, bits)
    full = truncate_reference(torch.where(lower, prod, torch.zeros_like(prod)), n=bits, s=shift,
                              truncation=truncation, what="causal matmul product", layer=layer,
                              violations=violations)
    return torch.where(lower, full, torch.zeros_like(full))


def example(bits: int, count: int) -> Example:
    length, inner, shift = 8, max(1, count // 64), 12
    return Example((Input("q", 1, (2, length, inner), bits), Input("k", 1, (2, inner, length), bits)),
                   {"bits": bits, "shift": shift}, bits,
                   lambda g: [small_operands(g, (2, length, inner), bits, shift),
                              small_operands(g, (2, inner, length), bits, shift)])


GATE = register(Gate("causal_matmul", layout, keygen, eval, reference, example))
