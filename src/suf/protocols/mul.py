"""Beaver-style product of two masked values (sigma_spec §3.5): elementwise `Mul` and SIGMA's
`windowMul`, where one operand is broadcast per row or per column.

Both operands are public masked values x^ = x + r_x, y^ = y + r_y (shapes broadcastable).
Key: <r_x>, <r_y>, <r_x·r_y + r_z> as full words (so a window multiply's key is 2 words per
element + 1 per row/column).  Share: P1·x^·y^ - x^·<r_y> - <r_x>·y^ + <r_x·r_y + r_z>, which sums
to (x^ - r_x)(y^ - r_y) + r_z = x·y + r_z.  The product is at scale 2f; callers open it and
truncate (TrWithSlack) or keep the share.
"""
from __future__ import annotations

import torch

from suf.ring import low_mask


def keygen(dealer, r_x: torch.Tensor, r_y: torch.Tensor, bits: int, op: str = "mul",
           r_out: torch.Tensor | None = None) -> torch.Tensor:
    shape = torch.broadcast_shapes(r_x.shape, r_y.shape)
    if r_out is None:
        r_out = dealer.mask(shape, bits)
    elif r_out.shape != shape:
        raise ValueError(f"{op}: output mask shape {tuple(r_out.shape)} != {tuple(shape)}")
    dealer.deal_words(op, shape, (r_x, r_y, r_x * r_y + r_out), bits)
    return r_out


def share(party, x_hat: torch.Tensor, y_hat: torch.Tensor, bits: int,
          op: str = "mul") -> torch.Tensor:
    """This party's additive share of x·y + r_out (no communication)."""
    shape = torch.broadcast_shapes(x_hat.shape, y_hat.shape)
    key = party.key(op)
    a = key.words(x_hat.numel()).view(x_hat.shape)
    b = key.words(y_hat.numel()).view(y_hat.shape)
    c = key.words(int(torch.Size(shape).numel())).view(shape)
    key.done()
    s = c - x_hat * b - a * y_hat
    if party.id == 1:
        s = s + x_hat * y_hat
    return s & low_mask(bits)


def reference(x: torch.Tensor, y: torch.Tensor, bits: int) -> torch.Tensor:
    return (x * y) & low_mask(bits)
