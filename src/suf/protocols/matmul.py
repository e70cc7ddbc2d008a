"""Matmul of two masked operands (sigma_spec §3.6): X^ (..., M, K) times W^ (..., K, N), both public
masked values (W^ = W + r_W is published once per deployment by the model owner).

Key: shares of r_X, r_W and r_X·r_W + r_Z as full words.  Party 0 computes
c_0 + X^·(W^ - <r_W>_0) - <r_X>_0·W^ and party 1 c_1 - X^·<r_W>_1 - <r_X>_1·W^; they sum to
(X^ - r_X)(W^ - r_W) + r_Z = X·W + r_Z.  The product (scale 2f) is then opened and truncated by
the caller (TrFloor in SIGMA), see `suf.protocols.linear`.
"""
from __future__ import annotations

import torch

from suf.linalg import ring_matmul
from suf.ring import low_mask


def _out_shape(x_shape, w_shape):
    if len(x_shape) < 2 or len(w_shape) < 2 or x_shape[-1] != w_shape[-2]:
        raise ValueError(f"matmul: cannot multiply {tuple(x_shape)} by {tuple(w_shape)}")
    batch = torch.broadcast_shapes(x_shape[:-2], w_shape[:-2])
    return (*batch, x_shape[-2], w_shape[-1])


def keygen(dealer, r_x: torch.Tensor, r_w: torch.Tensor, bits: int, op: str = "matmul",
           r_out: torch.Tensor | None = None) -> torch.Tensor:
    shape = _out_shape(r_x.shape, r_w.shape)
    if r_out is None:
        r_out = dealer.mask(shape, bits)
    dealer.deal_words(op, shape, (r_x, r_w, ring_matmul(r_x, r_w, bits) + r_out), bits)
    return r_out


def share(party, x_hat: torch.Tensor, w_hat: torch.Tensor, bits: int,
          op: str = "matmul") -> torch.Tensor:
    """This party's additive share of X·W + r_out (no communication)."""
    shape = _out_shape(x_hat.shape, w_hat.shape)
    key = party.key(op)
    a = key.words(x_hat.numel()).view(x_hat.shape)
    b = key.words(w_hat.numel()).view(w_hat.shape)
    c = key.words(int(torch.Size(shape).numel())).view(shape)
    key.done()
    return (c + beaver_product(party.id, x_hat, w_hat, a, b, bits)) & low_mask(bits)


def beaver_product(party_id: int, x_hat: torch.Tensor, w_hat: torch.Tensor, r_x: torch.Tensor,
                   r_w: torch.Tensor, bits: int) -> torch.Tensor:
    """The masked-input part of a party's share of X·W from shares of the masks r_x, r_w:
    P0: X^(W^ - r_w) - r_x·W^, P1: -X^·r_w - r_x·W^.  The two sum to X·W - r_x·r_w, which the
    key's share of r_x·r_w (+ the output mask) completes."""
    if party_id == 0:
        return ring_matmul(x_hat, w_hat - r_w, bits) - ring_matmul(r_x, w_hat, bits)
    return -ring_matmul(x_hat, r_w, bits) - ring_matmul(r_x, w_hat, bits)


def reference(x: torch.Tensor, w: torch.Tensor, bits: int) -> torch.Tensor:
    return ring_matmul(x, w, bits)
