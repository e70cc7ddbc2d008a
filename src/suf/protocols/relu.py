"""DReLU and ReLU on masked values (sigma_spec §3.3, `gpu_relu.cu`).

DReLU_m(x) = 1{x >= 0} for x read as a signed m-bit value.  With r' = -r mod 2^m and
x = x^ + r' mod 2^m, MSB(x) = MSB(x^) ^ MSB(r') ^ carry, where the carry out of the low m-1 bits is
1{(x^ mod 2^(m-1)) + (r' mod 2^(m-1)) >= 2^(m-1)} = 1{(-x^ - 1) mod 2^(m-1) < r' mod 2^(m-1)}:
one comparison key for α = r' mod 2^(m-1), evaluated at (-x^ - 1) mod 2^(m-1).
Key: the comparison key (m-1 bits) and an XOR-shared bit c = MSB(r') ^ 1 ^ r_out.
Output: the opened masked bit d^ = DReLU(x) ^ r_out (1 bit, one exchange).
Callers keep |x| well inside 2^(m-1) (slack bits), as SIGMA's do.

ReLU(m -> b_out) = DReLU_m, then Select(d^, x^) on b_out bits, opened (2 exchanges).
"""
from __future__ import annotations

import torch

from suf.fss import compare
from suf.protocols import select
from suf.protocols.core import sigma_dpf_header
from suf.ring import low_mask


def drelu_keygen(dealer, r_in: torch.Tensor, m: int, op: str = "drelu") -> torch.Tensor:
    """Keys of DReLU_m for inputs masked with r_in; returns the output bit mask."""
    flat = r_in.flatten() & low_mask(m)
    neg = (-flat) & low_mask(m)
    k0, k1 = compare.keygen(neg & low_mask(m - 1), m - 1, dealer.stream)
    r_out = dealer.mask(r_in.shape, 1)
    c = ((neg >> (m - 1)) & 1) ^ 1 ^ r_out.flatten()
    c0, c1 = dealer.share_bits(c)
    with dealer.gate(op, r_in.shape, sigma_dpf_header(m - 1)) as (b0, b1):
        b0.raw(compare.to_payload(k0)).bits(c0)
        b1.raw(compare.to_payload(k1)).bits(c1)
    return r_out


def drelu_eval(party, x_hat: torch.Tensor, m: int, op: str = "drelu") -> torch.Tensor:
    """The opened masked bit DReLU_m(x) ^ r_out."""
    n = x_hat.numel()
    key = party.key(op)
    k = compare.from_payload(key.raw(compare.payload_size(m - 1, n)), m - 1, n, party.id,
                           party.device)
    c = key.bits(n)
    key.done()
    flat = x_hat.flatten()
    bit = compare.eval_lt(k, (-flat - 1) & low_mask(m - 1)) ^ c
    if party.id == 1:
        bit = bit ^ ((flat >> (m - 1)) & 1)
    return party.open_bits(bit).view(x_hat.shape)


def drelu_reference(x: torch.Tensor, m: int) -> torch.Tensor:
    return 1 - ((x >> (m - 1)) & 1)


def keygen(dealer, r_in: torch.Tensor, m: int, bits_out: int, type_bytes: int = 8,
           op: str = "relu") -> torch.Tensor:
    """ReLU keys: DReLU_m on the input, then a select of the input itself on `bits_out` bits."""
    r_d = drelu_keygen(dealer, r_in, m, op=f"{op}.drelu")
    dealer.sigma_header_bytes += 12  # SIGMA's ReLU key starts with three ints
    return select.keygen(dealer, r_d, r_in & low_mask(bits_out), bits_out, type_bytes,
                         op=f"{op}.select")


def eval(party, x_hat: torch.Tensor, m: int, bits_out: int, type_bytes: int = 8,
         op: str = "relu") -> torch.Tensor:
    d_hat = drelu_eval(party, x_hat, m, op=f"{op}.drelu")
    return select.eval(party, d_hat, x_hat & low_mask(bits_out), bits_out, type_bytes,
                       op=f"{op}.select")


def reference(x: torch.Tensor, m: int, bits_out: int) -> torch.Tensor:
    return (drelu_reference(x, m) * x) & low_mask(bits_out)
