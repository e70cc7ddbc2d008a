"""Select: from an opened masked bit b^ = b XOR r_b and an opened masked value y^ = y + r_y, the
masked product b·y + r_out (sigma_spec §3.2, `gpu_select.cu`).

Key (5 words of the output type, additive shares mod 2^bits):
  a = <r_b>, c0 = <r_y>, c = <r_b·r_y + r_out>, d1 = <2·r_b>, d2 = <-2·r_b·r_y>.
Share: -a·y^ - c0·b^ + c + [b^ = 0]·(y^·d1 + d2) + P1·b^·y^.
Why: b = b^ + r_b - 2·b^·r_b; expanding b·(y^ - r_y) for b^ = 0 and b^ = 1 gives exactly the
shares above (the [b^ = 0] term carries the -2·b^·r_b part).
"""
from __future__ import annotations

import torch

from suf.ring import low_mask


def keygen(dealer, r_bit: torch.Tensor, r_y: torch.Tensor, bits: int, type_bytes: int = 8,
           op: str = "select", r_out: torch.Tensor | None = None) -> torch.Tensor:
    """Write both parties' select keys; returns the output mask (fresh unless given)."""
    if r_bit.shape != r_y.shape:
        raise ValueError(f"select: bit mask shape {tuple(r_bit.shape)} != value mask shape "
                         f"{tuple(r_y.shape)}")
    if r_out is None:
        r_out = dealer.mask(r_y.shape, bits)
    dealer.deal_words(op, r_y.shape, (r_bit, r_y, r_bit * r_y + r_out, 2 * r_bit,
                                       -2 * r_bit * r_y), bits, type_bytes)
    return r_out


def read_key(party, shape, type_bytes: int = 8, op: str = "select"):
    key = party.key(op)
    n = int(torch.Size(shape).numel())
    parts = [key.words(n, type_bytes).view(shape) for _ in range(5)]
    key.done()
    return parts


def share(party, b_hat: torch.Tensor, y_hat: torch.Tensor, bits: int, key) -> torch.Tensor:
    """This party's additive share of b·y + r_out (not opened)."""
    a, c0, c, d1, d2 = key
    zero = (b_hat == 0).to(y_hat.dtype)
    s = -a * y_hat - c0 * b_hat + c + zero * (y_hat * d1 + d2)
    if party.id == 1:
        s = s + b_hat * y_hat
    return s & low_mask(bits)


def eval(party, b_hat: torch.Tensor, y_hat: torch.Tensor, bits: int, type_bytes: int = 8,
         op: str = "select", opened: bool = True) -> torch.Tensor:
    """Masked b·y + r_out, opened (one exchange of `bits`-bit values) unless opened=False."""
    if b_hat.shape != y_hat.shape:
        raise ValueError(f"select: bit shape {tuple(b_hat.shape)} != value shape "
                         f"{tuple(y_hat.shape)}")
    s = share(party, b_hat, y_hat, bits, read_key(party, y_hat.shape, type_bytes, op))
    return party.open(s, bits, type_bytes) if opened else s


def reference(b: torch.Tensor, y: torch.Tensor, bits: int) -> torch.Tensor:
    return (b * y) & low_mask(bits)
