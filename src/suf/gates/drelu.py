"""DReLU (sigma_spec §3.3, `gpu_relu.cu`): DReLU_m(x) = 1{x >= 0} for x read as a signed m-bit
value, output as an opened masked bit d^ = DReLU(x) ^ r_out (1 bit, one exchange).

With r' = -r mod 2^m and x = x^ + r' mod 2^m, MSB(x) = MSB(x^) ^ MSB(r') ^ carry, where the carry
out of the low m-1 bits is 1{(x^ mod 2^(m-1)) + (r' mod 2^(m-1)) >= 2^(m-1)}
= 1{(-x^ - 1) mod 2^(m-1) < r' mod 2^(m-1)}: one comparison key for α = r' mod 2^(m-1), evaluated
at (-x^ - 1) mod 2^(m-1).  Key: the comparison key (m-1 bits) and an XOR-shared bit
c = MSB(r') ^ 1 ^ r_out.  Callers keep |x| well inside 2^(m-1) (slack bits), as SIGMA's do.
"""
from __future__ import annotations

import torch

from suf.core.ring import low_mask
from suf.fss import compare
from suf.gates.tr_with_slack import signed_below
from suf.mpc.dealer import sigma_dpf_header
from suf.mpc.gate import Bits, Example, Gate, Input, Key, Layout, Open, Raw, register


def layout(shape, *, m: int) -> Layout:
    count = int(torch.Size(shape).numel())
    return Layout([Key("", (Raw("cmp", compare.payload_size(m - 1, count)), Bits("c", count)),
                       sigma_dpf_header(m - 1)),
                   Open("bit", count, 1)])


def keygen(dealer, r_in: torch.Tensor, *, m: int, op: str = "drelu") -> torch.Tensor:
    """Keys of DReLU_m for inputs masked with r_in; returns the output bit mask."""
    lay = layout(r_in.shape, m=m)
    flat = r_in.flatten() & low_mask(m)
    neg = (-flat) & low_mask(m)
    k0, k1 = compare.keygen(neg & low_mask(m - 1), m - 1, dealer.stream)
    r_out = dealer.mask(r_in.shape, 1)
    c = ((neg >> (m - 1)) & 1) ^ 1 ^ r_out.flatten()
    dealer.deal(op, r_in.shape, lay.key(),
                {"cmp": (compare.to_payload(k0), compare.to_payload(k1)), "c": c})
    return r_out


def eval(party, x_hat: torch.Tensor, *, m: int, op: str = "drelu") -> torch.Tensor:
    """The opened masked bit DReLU_m(x) ^ r_out."""
    lay = layout(x_hat.shape, m=m)
    n = x_hat.numel()
    k = party.read(op, lay.key())
    cmp_key = compare.from_payload(k["cmp"], m - 1, n, party.id, party.device)
    flat = x_hat.flatten()
    bit = compare.eval_lt(cmp_key, (-flat - 1) & low_mask(m - 1)) ^ k["c"]
    if party.id == 1:
        bit = bit ^ ((flat >> (m - 1)) & 1)
    return party.open(bit, lay.open("bit")).view(x_hat.shape)


def reference(x: torch.Tensor, *, m: int, layer=None, violations=None) -> torch.Tensor:
    return 1 - ((x >> (m - 1)) & 1)


def example(bits: int, count: int) -> Example:
    return Example((Input("x", 1, (count,), bits),), {"m": bits}, 1,
                   lambda g: [signed_below(g, count, bits, bits - 3)])


GATE = register(Gate("drelu", layout, keygen, eval, reference, example))
