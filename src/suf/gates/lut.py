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

from suf.core.ring import low_mask
from suf.fss import lut as fss_lut
from suf.gates import select
from suf.mpc.dealer import sigma_dpf_header
from suf.mpc.gate import Bits, Call, Example, Gate, Input, Key, Layout, Open, Raw, register
from suf.prg import Stream


def layout(shape, table_shape=None, *, k: int, bits: int, opened: bool = True) -> Layout:
    """table_shape: the public table's (2^k entries; it adds no key bytes)."""
    count = int(torch.Size(shape).numel())
    # SIGMA's LUT key starts with its output bitwidth (4 B), then the DPF key's header
    steps = [Key("", (Raw("dpf", fss_lut.payload_size(k, count)), Bits("r_u", count)),
                 4 + sigma_dpf_header(k)),
             Call("select", "select", ((count,), (count,)), {"bits": bits, "opened": False}),
             Open("u", count, 1), Open("v", count, bits)]
    return Layout(steps + [Open("out", count, bits)] if opened else steps)


def keygen(dealer, r_in: torch.Tensor, *, k: int, bits: int, opened: bool = True,
           op: str = "lut") -> torch.Tensor:
    """Keys of a k-bit lookup with `bits`-bit outputs; returns the output mask r_out."""
    lay = layout(r_in.shape, k=k, bits=bits, opened=opened)
    k0, k1 = fss_lut.keygen(r_in.flatten() & low_mask(k), k, dealer.stream)
    return deal_signed(dealer, op, r_in.shape, lay.key(), "dpf",
                       (fss_lut.to_payload(k0), fss_lut.to_payload(k1)), bits)


def deal_signed(dealer, op: str, shape, key, fss_part: str, payloads, bits: int) -> torch.Tensor:
    """SIGMA's sign trick, dealer side (shared with suf.gates.rsqrt): the FSS key pair that gives
    u (u0 + u1 = σ = ±1) and v (v0 + v1 = σ·T), the XOR-shared mask bit r_U, and a select key for
    (r_U, r_V); returns the output mask 2·r_sel - r_V."""
    count = int(torch.Size(shape).numel())
    r_u = dealer.mask(count, 1)
    dealer.deal(op, shape, key, {fss_part: payloads, "r_u": r_u})
    r_v = dealer.mask(count, bits)
    r_sel = select.keygen(dealer, r_u, r_v, bits=bits, opened=False, op=f"{op}.select")
    return ((2 * r_sel - r_v) & low_mask(bits)).view(shape)


def signed_shares(party, u: torch.Tensor, v: torch.Tensor, r_u: torch.Tensor, sel_key: dict,
                  bits: int):
    """This party's shares of U^ = 1{σ = +1} ^ r_U (a bit) and V^ = σ·T + r_V, to be opened."""
    return fss_lut.sign_bit_share(u, party.id) ^ r_u, (v + sel_key["c0"]) & low_mask(bits)


def unsign(party, u_hat: torch.Tensor, v_hat: torch.Tensor, sel_key: dict, bits: int,
           out: Open | None) -> torch.Tensor:
    """T + r_out from the opened U^, V^: 2·select(U^, V^) - V^, opened with `out`, or this
    party's additive share of it when `out` is None (P0: 2·sel_0, P1: 2·sel_1 - V^)."""
    s = select.share(party, u_hat, v_hat, bits, sel_key)
    if out is not None:
        return (2 * party.open(s, out) - v_hat) & low_mask(bits)
    return (2 * s - (v_hat if party.id == 1 else 0)) & low_mask(bits)


def eval(party, x_hat: torch.Tensor, table: torch.Tensor, *, k: int, bits: int,
         opened: bool = True, op: str = "lut") -> torch.Tensor:
    """T[x] + r_out, opened; or this party's additive share of it when opened=False."""
    n = x_hat.numel()
    if table.numel() != 1 << k:
        raise ValueError(f"{op}: a {k}-bit lookup needs a table of {1 << k} entries, "
                         f"got {table.numel()}")
    lay = layout(x_hat.shape, k=k, bits=bits, opened=opened)
    key = party.read(op, lay.key())
    dk = fss_lut.from_payload(key["dpf"], k, n, party.id, party.device)
    sel_key = select.read(party, (n,), bits=bits, op=f"{op}.select")
    u, v = fss_lut.eval(dk, x_hat.flatten() & low_mask(k), table.to(party.device))
    u_share, v_share = signed_shares(party, u, v, key["r_u"], sel_key, bits)
    u_hat = party.open(u_share, lay.open("u"))
    v_hat = party.open(v_share, lay.open("v"))
    out = unsign(party, u_hat, v_hat, sel_key, bits, lay.open("out") if opened else None)
    return out.view(x_hat.shape)


def reference(x: torch.Tensor, table: torch.Tensor, *, k: int, bits: int | None = None,
              opened: bool = True, layer=None, violations=None) -> torch.Tensor:
    return table.to(x.device)[x & low_mask(k)]


def demo_table(k: int, bits: int) -> torch.Tensor:
    """A fixed public table of 2^k random `bits`-bit entries (both parties derive it)."""
    return Stream(b"suf-demo-table".ljust(32, b"\0")).ring(1 << k, bits)


def example(bits: int, count: int) -> Example:
    k = 12
    return Example((Input("x", 1, (count,), k), Input("table", -1, (1 << k,), bits)),
                   {"k": k, "bits": bits}, bits,
                   lambda g: [g.ring(count, k), demo_table(k, bits)])


GATE = register(Gate("lut", layout, keygen, eval, reference, example))
