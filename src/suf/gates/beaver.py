"""Beaver products of two masked operands (sigma_spec §3.5-3.6), the formula every product gate
shares (mul, matmul, causal_matmul, linear, LayerNorm's square).

Both operands are public masked values x^ = x + r_x, y^ = y + r_y; the key holds shares of r_x,
r_y and of r_x·r_y + r_out ("c").  Party 0's share is c_0 + x^·(y^ - <r_y>_0) - <r_x>_0·y^ and
party 1's c_1 - x^·<r_y>_1 - <r_x>_1·y^; they sum to (x^ - r_x)(y^ - r_y) + r_out = x·y + r_out.
`product` is the bilinear map: elementwise (torch.mul, broadcasting) or the ring matmul.
"""
from __future__ import annotations

import torch

from suf.core.ring import low_mask
from suf.mpc.gate import Key, Words


def key(x_count: int, y_count: int, out_count: int, bits: int, op: str = "") -> Key:
    """The Beaver key of one product, written under `<gate op>.<op>`."""
    return Key(op, (Words("r_x", x_count, bits), Words("r_y", y_count, bits),
                    Words("c", out_count, bits)))


def deal(dealer, op: str, shape, key: Key, r_x, r_y, r_xy_plus_out) -> None:
    dealer.deal(op, shape, key, {"r_x": r_x, "r_y": r_y, "c": r_xy_plus_out})


def masked_part(party_id: int, x_hat, y_hat, r_x, r_y, product) -> torch.Tensor:
    """The masked-input part of a party's share of x·y from its shares of r_x, r_y:
    P0: x^(y^ - r_y) - r_x·y^, P1: -x^·r_y - r_x·y^; the two sum to x·y - r_x·r_y."""
    if party_id == 0:
        return product(x_hat, y_hat - r_y) - product(r_x, y_hat)
    return -product(x_hat, r_y) - product(r_x, y_hat)


def share(party, op: str, key: Key, x_hat, y_hat, out_shape, product, bits: int,
          pack=None) -> torch.Tensor:
    """This party's additive share of x·y + r_out (no communication); `pack` maps the full
    product onto the key's output layout (e.g. the lower triangle)."""
    k = party.read(op, key)
    part = masked_part(party.id, x_hat, y_hat, k["r_x"].view(x_hat.shape),
                       k["r_y"].view(y_hat.shape), product)
    if pack is not None:
        part = pack(part)
    return (k["c"].view(out_shape) + part) & low_mask(bits)
