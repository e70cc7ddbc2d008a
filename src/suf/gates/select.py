"""Select (sigma_spec §3.2, `gpu_select.cu`): from an opened masked bit b^ = b XOR r_b and an opened
masked value y^ = y + r_y, the masked product b·y + r_out.

Key (5 words of the output type, additive shares mod 2^bits):
  a = <r_b>, c0 = <r_y>, c = <r_b·r_y + r_out>, d1 = <2·r_b>, d2 = <-2·r_b·r_y>.
Share: -a·y^ - c0·b^ + c + [b^ = 0]·(y^·d1 + d2) + P1·b^·y^.
Why: b = b^ + r_b - 2·b^·r_b; expanding b·(y^ - r_y) for b^ = 0 and b^ = 1 gives exactly the
shares above (the [b^ = 0] term carries the -2·b^·r_b part).
"""
from __future__ import annotations

import torch

from suf.core.ring import low_mask
from suf.mpc.gate import Example, Gate, Input, Key, Layout, Open, Words, register

PARTS = ("a", "c0", "c", "d1", "d2")


def _same_shape(b_shape, y_shape) -> None:
    if tuple(b_shape) != tuple(y_shape):
        raise ValueError(f"select: bit shape {tuple(b_shape)} != value shape {tuple(y_shape)}")


def layout(b_shape, y_shape, *, bits: int, type_bytes: int = 8, opened: bool = True) -> Layout:
    _same_shape(b_shape, y_shape)
    count = int(torch.Size(y_shape).numel())
    steps = [Key("", tuple(Words(p, count, bits, type_bytes) for p in PARTS))]
    return Layout(steps + [Open("out", count, bits, type_bytes)] if opened else steps)


def keygen(dealer, r_bit: torch.Tensor, r_y: torch.Tensor, *, bits: int, type_bytes: int = 8,
           opened: bool = True, op: str = "select",
           r_out: torch.Tensor | None = None) -> torch.Tensor:
    """Write both parties' select keys; returns the output mask (fresh unless given)."""
    lay = layout(r_bit.shape, r_y.shape, bits=bits, type_bytes=type_bytes, opened=opened)
    if r_out is None:
        r_out = dealer.mask(r_y.shape, bits)
    values = (r_bit, r_y, r_bit * r_y + r_out, 2 * r_bit, -2 * r_bit * r_y)
    dealer.deal(op, r_y.shape, lay.key(), {p: v.flatten() for p, v in zip(PARTS, values)})
    return r_out


def read(party, shape, *, bits: int, type_bytes: int = 8, op: str = "select") -> dict:
    """This party's select key for values of `shape` (a dict of the five parts)."""
    k = party.read(op, layout(shape, shape, bits=bits, type_bytes=type_bytes, opened=False).key())
    return {p: k[p].view(shape) for p in PARTS}


def share(party, b_hat: torch.Tensor, y_hat: torch.Tensor, bits: int, key: dict) -> torch.Tensor:
    """This party's additive share of b·y + r_out (not opened)."""
    zero = (b_hat == 0).to(y_hat.dtype)
    s = -key["a"] * y_hat - key["c0"] * b_hat + key["c"] + zero * (y_hat * key["d1"] + key["d2"])
    if party.id == 1:
        s = s + b_hat * y_hat
    return s & low_mask(bits)


def eval(party, b_hat: torch.Tensor, y_hat: torch.Tensor, *, bits: int, type_bytes: int = 8,
         opened: bool = True, op: str = "select") -> torch.Tensor:
    """Masked b·y + r_out, opened (one exchange of `bits`-bit values) unless opened=False."""
    lay = layout(b_hat.shape, y_hat.shape, bits=bits, type_bytes=type_bytes, opened=opened)
    s = share(party, b_hat, y_hat, bits, read(party, y_hat.shape, bits=bits,
                                               type_bytes=type_bytes, op=op))
    return party.open(s, lay.open("out")) if opened else s


def reference(b: torch.Tensor, y: torch.Tensor, *, bits: int, type_bytes: int = 8,
              opened: bool = True, layer=None, violations=None) -> torch.Tensor:
    return (b * y) & low_mask(bits)


def example(bits: int, count: int) -> Example:
    return Example((Input("b", 1, (count,), 1), Input("y", 1, (count,), bits)), {"bits": bits},
                   bits, lambda g: [g.ring(count, 1), g.ring(count, bits)])


GATE = register(Gate("select", layout, keygen, eval, reference, example))
