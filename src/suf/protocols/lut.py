"""Secure table lookup (sigma_spec §2.4, `gpu_lut.cu`): a public table T of 2^k entries, a masked
index x^ = x + r mod 2^k, output T[x] + r_out.

Key: the eval-all DPF key of α = r mod 2^k (suf.fss.lut), an XOR-shared mask bit r_U and a select
key for (r_U, r_V), r_V a random `bits`-bit mask.
Online: the DPF gives u (u0 + u1 = σ = ±1) and v (v0 + v1 = σ·T[x]); open U^ = U ^ r_U (1 bit,
U = 1{σ = +1}), open V^ = σ·T[x] + r_V (`bits` bits), select(U^, V^) = U·σ·T[x] + r_sel.
Since (2U - 1)·σ = 1, 2·select - V^ = T[x] + (2·r_sel - r_V): the output mask is r_out = 2·r_sel - r_V.
opened=True opens the select (3 exchanges in all); otherwise each party keeps its additive share of
T[x] + r_out (P0: 2·sel_0, P1: 2·sel_1 - V^), as SIGMA's GeLU does.
"""
from __future__ import annotations

import torch

from suf.fss import lut as fss_lut
from suf.protocols import select
from suf.protocols.core import sigma_dpf_header
from suf.ring import low_mask


def keygen(dealer, r_in: torch.Tensor, k: int, bits: int, op: str = "lut") -> torch.Tensor:
    """Keys of a k-bit lookup with `bits`-bit outputs; returns the output mask r_out."""
    flat = r_in.flatten()
    k0, k1 = fss_lut.keygen(flat & low_mask(k), k, dealer.stream)
    r_u = dealer.mask(flat.shape, 1)
    u0, u1 = dealer.share_bits(r_u)
    # SIGMA's LUT key starts with its output bitwidth (4 B), then the DPF key's header
    with dealer.gate(op, r_in.shape, 4 + sigma_dpf_header(k)) as (b0, b1):
        b0.raw(fss_lut.to_payload(k0)).bits(u0)
        b1.raw(fss_lut.to_payload(k1)).bits(u1)
    r_v = dealer.mask(flat.shape, bits)
    r_sel = select.keygen(dealer, r_u, r_v, bits, op=f"{op}.select")
    return ((2 * r_sel - r_v) & low_mask(bits)).view(r_in.shape)


def eval(party, x_hat: torch.Tensor, table: torch.Tensor, k: int, bits: int, op: str = "lut",
         opened: bool = True) -> torch.Tensor:
    """T[x] + r_out, opened; or this party's additive share of it when opened=False."""
    n = x_hat.numel()
    if table.numel() != 1 << k:
        raise ValueError(f"{op}: a {k}-bit lookup needs a table of {1 << k} entries, "
                         f"got {table.numel()}")
    key = party.key(op)
    dk = fss_lut.from_payload(key.raw(fss_lut.payload_size(k, n)), k, n, party.id, party.device)
    r_u = key.bits(n)
    key.done()
    sel_key = select.read_key(party, (n,), op=f"{op}.select")
    u, v = fss_lut.eval(dk, x_hat.flatten() & low_mask(k), table.to(party.device))
    u_hat = party.open_bits(fss_lut.sign_bit_share(u, party.id) ^ r_u)
    v_hat = party.open((v + sel_key[1]) & low_mask(bits), bits)  # key[1] = <r_V>
    s = select.share(party, u_hat, v_hat, bits, sel_key)
    if opened:
        return ((2 * party.open(s, bits) - v_hat) & low_mask(bits)).view(x_hat.shape)
    out = 2 * s - (v_hat if party.id == 1 else 0)
    return (out & low_mask(bits)).view(x_hat.shape)


def reference(x: torch.Tensor, table: torch.Tensor, k: int) -> torch.Tensor:
    return table.to(x.device)[x & low_mask(k)]
