"""Truncation gadgets of SIGMA (sigma_spec §3.4): TR, TrWithSlack (GapARS) and TrFloor (ARS).

All three are floor truncations; they differ in the ring of the result and in their precondition.
Inputs are ring values of Z_{2^n} in [0, 2^n) (torch.int64, any shape, any device); "signed(x)" is
the two's-complement view in [-2^(n-1), 2^(n-1)).
"""
from __future__ import annotations

import torch

from suf.fss import compare
from suf.protocols.core import sigma_dpf_header
from suf.protocols.ranges import check_range, ring_input
from suf.ring import Ring, low_mask


def _check_shift(s: int, n: int) -> None:
    if not isinstance(s, int) or isinstance(s, bool) or not 0 <= s < n:
        raise ValueError(f"shift s must be an int in [0, {n}), got {s!r}")


# ================================================================================================
# reference (cleartext)
# ================================================================================================
def reference_trfloor(x: torch.Tensor, n: int, s: int) -> torch.Tensor:
    """TrFloor(n -> n, s) = TR followed by SignExtend: floor(signed(x)/2^s) mod 2^n.

    Exact for every x in Z_{2^n} (no precondition); it is what follows every matmul.
    """
    ring = ring_input(x, n)
    _check_shift(s, n)
    return ring.wrap(ring.signed(x) >> s)


def reference_tr(x: torch.Tensor, n: int, s: int) -> torch.Tensor:
    """TR_{n,s} (truncate-reduce): floor(x/2^s) of the unsigned value, in Z_{2^(n-s)}.

    Exact for every x; it equals reference_trfloor(x, n, s) mod 2^(n-s).
    """
    ring_input(x, n)
    _check_shift(s, n)
    return x >> s


def reference_tr_with_slack(x: torch.Tensor, n: int, s: int, bits_out: int | None = None, *,
                            op: str = "TrWithSlack", layer: str | None = None,
                            violations: list | None = None) -> torch.Tensor:
    """TrWithSlack(n -> bits_out, s) (the paper's GapARS): floor(signed(x)/2^s) mod 2^bits_out.

    bits_out defaults to n.  The gadget adds 2^(n-2) and corrects one wrap, so it is exact only
    when signed(x) lies in [-2^(n-2), 2^(n-2)) (the gap); outside, its output depends on the
    dealer's mask.  That precondition is checked (RangeViolation).  When bits_out <= n - s the
    wrap term vanishes mod 2^bits_out and the gadget is an exact truncate-reduce for every x
    (nExp's 16 -> 8, the inverse's p -> p - 6, GeLU's n -> n - 17): no check is made then.
    """
    ring = ring_input(x, n)
    _check_shift(s, n)
    if bits_out is None:
        bits_out = n
    if not isinstance(bits_out, int) or isinstance(bits_out, bool) or not 1 <= bits_out <= n:
        raise ValueError(f"bits_out must be an int in [1, {n}], got {bits_out!r}")
    xs = ring.signed(x)
    if bits_out > n - s:
        check_range(xs, -(1 << (n - 2)), 1 << (n - 2), op, layer=layer, violations=violations)
    return Ring(bits_out).wrap(xs >> s)


# ================================================================================================
# secure protocols (sigma_spec §3.4, `gpu_truncate.cu`)
# ================================================================================================
# All three share one gadget: a comparison on the masked input decides a borrow or a wrap; the
# dealer stores the two candidate corrections at positions z and z ^ 1 (z a random bit), both
# parties open the masked comparison bit b^ = cmp ^ z, pick corr[b^] and add a public function of
# the input (party 1 only); then the output is opened.  2 exchanges: 1 bit, then bits_out bits.

def _deal_gadget(dealer, op, shape, alpha, cmp_bits, corrections, extra, bits_out, type_bytes,
                 sigma_header):
    """Write a comparison key for alpha (cmp_bits), a mask bit z, the two corrections (indexed by
    cmp ^ z) and optional extra words, all additively shared mod 2^bits_out."""
    k0, k1 = compare.keygen(alpha, cmp_bits, dealer.stream)
    z = dealer.mask(alpha.shape, 1)
    z0, z1 = dealer.share_bits(z)
    m = low_mask(bits_out)
    words = [torch.where(z == 0, corrections[0], corrections[1]),  # corr[j] is for cmp = j ^ z
             torch.where(z == 0, corrections[1], corrections[0])] + extra
    with dealer.gate(op, shape, sigma_header) as (b0, b1):
        b0.raw(compare.to_payload(k0)).bits(z0)
        b1.raw(compare.to_payload(k1)).bits(z1)
        for w in words:
            s0, s1 = dealer.share(w & m, bits_out)
            b0.words(s0, type_bytes)
            b1.words(s1, type_bytes)


def _eval_gadget(party, op, x_cmp, cmp_bits, nwords, type_bytes):
    """Open the masked comparison bit; returns (this party's chosen correction, extra words)."""
    n = x_cmp.numel()
    key = party.key(op)
    k = compare.from_payload(key.raw(compare.payload_size(cmp_bits, n)), cmp_bits, n, party.id,
                           party.device)
    z = key.bits(n)
    words = [key.words(n, type_bytes) for _ in range(nwords)]
    key.done()
    b_hat = party.open_bits(compare.eval_lt(k, x_cmp) ^ z)
    return torch.where(b_hat == 0, words[0], words[1]), words[2:]


def keygen_tr(dealer, r_in: torch.Tensor, n: int, s: int, op: str = "tr",
              r_out: torch.Tensor | None = None) -> torch.Tensor:
    """TR_{n,s}: output floor(x/2^s) (unsigned) in Z_{2^(n-s)}.
    cmp = 1{x^ mod 2^s < r mod 2^s} is the borrow: x >> s = (x^ >> s) - (r >> s) - cmp."""
    _check_shift(s, n)
    bits_out = n - s
    flat = r_in.flatten()
    if r_out is None:
        r_out = dealer.mask(flat.shape, bits_out)
    q = r_out.flatten() - (flat >> s)
    _deal_gadget(dealer, op, r_in.shape, flat & low_mask(s), s, [q, q - 1], [], bits_out, 8,
                 sigma_dpf_header(s))
    return r_out.view(r_in.shape)


def eval_tr(party, x_hat: torch.Tensor, n: int, s: int, op: str = "tr") -> torch.Tensor:
    flat = x_hat.flatten()
    corr, _ = _eval_gadget(party, op, flat & low_mask(s), s, 2, 8)
    if party.id == 1:
        corr = corr + (flat >> s)
    return party.open(corr & low_mask(n - s), n - s).view(x_hat.shape)


def keygen_sign_extend(dealer, r_in: torch.Tensor, m: int, n: int, op: str = "signext",
                       r_out: torch.Tensor | None = None) -> torch.Tensor:
    """SignExtend(m -> n): the m-bit two's-complement value as an n-bit one.
    With Y = x^ + 2^(m-1) mod 2^m = u + r mod 2^m (u = x + 2^(m-1) in [0, 2^m)),
    u = Y - r + 2^m·1{Y < r}: one comparison on the full m bits."""
    flat = r_in.flatten()
    if r_out is None:
        r_out = dealer.mask(flat.shape, n)
    q = r_out.flatten() - flat
    _deal_gadget(dealer, op, r_in.shape, flat, m, [q, q + (1 << m)], [], n, 8,
                 sigma_dpf_header(m))
    return r_out.view(r_in.shape)


def eval_sign_extend(party, x_hat: torch.Tensor, m: int, n: int,
                     op: str = "signext") -> torch.Tensor:
    y = (x_hat.flatten() + (1 << (m - 1))) & low_mask(m)
    corr, _ = _eval_gadget(party, op, y, m, 2, 8)
    if party.id == 1:
        corr = corr + y - (1 << (m - 1))
    return party.open(corr & low_mask(n), n).view(x_hat.shape)


def keygen_trfloor(dealer, r_in: torch.Tensor, n: int, s: int, op: str = "trfloor",
                   r_out: torch.Tensor | None = None) -> torch.Tensor:
    """TrFloor(n -> n, s) = TR_{n,s} then SignExtend(n-s -> n): floor(signed(x)/2^s), any x."""
    dealer.sigma_header_bytes += 16  # SIGMA's TrFloor key header
    r_mid = keygen_tr(dealer, r_in, n, s, op=f"{op}.tr")
    return keygen_sign_extend(dealer, r_mid, n - s, n, op=f"{op}.signext", r_out=r_out)


def eval_trfloor(party, x_hat: torch.Tensor, n: int, s: int, op: str = "trfloor") -> torch.Tensor:
    mid = eval_tr(party, x_hat, n, s, op=f"{op}.tr")
    return eval_sign_extend(party, mid, n - s, n, op=f"{op}.signext")


def keygen_tr_with_slack(dealer, r_in: torch.Tensor, n: int, s: int, bits_out: int | None = None,
                         type_bytes: int = 8, op: str = "trws",
                         r_out: torch.Tensor | None = None) -> torch.Tensor:
    """TrWithSlack(n -> bits_out, s): floor(signed(x)/2^s) mod 2^bits_out for |x| < 2^(n-2).
    With x1 = x^ + 2^(n-2) = u + r mod 2^n (u = x + 2^(n-2) < 2^(n-1)), the wrap of u + r is
    MSB(r)·(1 - MSB(x1)), so floor(u/2^s) = (x1 >> s) - (r >> s) - cmp + 2^(n-s)·wrap."""
    _check_shift(s, n)
    bits_out = n if bits_out is None else bits_out
    flat = r_in.flatten()
    if r_out is None:
        r_out = dealer.mask(flat.shape, bits_out)
    q = r_out.flatten() - (flat >> s)
    wrap = ((flat >> (n - 1)) & 1) << (n - s)
    _deal_gadget(dealer, op, r_in.shape, flat & low_mask(s), s, [q, q - 1], [wrap], bits_out,
                 type_bytes, 16 + sigma_dpf_header(s))
    return r_out.view(r_in.shape)


def eval_tr_with_slack(party, x_hat: torch.Tensor, n: int, s: int, bits_out: int | None = None,
                       type_bytes: int = 8, op: str = "trws") -> torch.Tensor:
    bits_out = n if bits_out is None else bits_out
    x1 = (x_hat.flatten() + (1 << (n - 2))) & low_mask(n)
    corr, (wrap,) = _eval_gadget(party, op, x1 & low_mask(s), s, 3, type_bytes)
    out = corr + wrap * (1 - (x1 >> (n - 1)))
    if party.id == 1:
        out = out + (x1 >> s) - (1 << (n - s - 2))
    return party.open(out & low_mask(bits_out), bits_out, type_bytes).view(x_hat.shape)
