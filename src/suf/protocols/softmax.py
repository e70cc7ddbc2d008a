"""Softmax (sigma_spec §3.8; SIGMA `gpuSoftmax`): tournament max, nExp, row sum, inverse, product.

Rows lie on the last axis (length L, any L >= 1).  Causal softmax (GPT) uses, in row i of an
(..., L, L) block, only the entries j <= i and outputs 0 above the diagonal, as SIGMA computes the
packed lower triangle and re-expands it with zeros.
"""
from __future__ import annotations

import torch

from suf.protocols import tables
from suf.protocols.gelu import GATE_MIN_BITS
from suf.protocols.ranges import check_bits, check_range, ring_input
from suf.protocols.truncate import reference_tr_with_slack
from suf.ring import Ring

F = tables.SCALE
CLIP = (1 << 16) - 1  # nExp clips max - x at 16.0 (e^-16 is below one ULP at scale 12)


def reduced_bits(n: int) -> int:
    """Softmax's max and nExp run in Z_{2^(n-f+2)} (40 bits at n = 50; SIGMA `reducedBw`)."""
    return n - F + 2


# ================================================================================================
# reference (cleartext)
# ================================================================================================
def reference_softmax_max(x: torch.Tensor, n: int, count: torch.Tensor | None = None) -> torch.Tensor:
    """Row maxima by SIGMA's pairwise tournament (`gpuMaxpool`, log rounds), in Z_{2^(n-f+2)}.

    x: (..., W) ring values of Z_{2^n}; count: (...) number of leading entries of each row that
    take part (default W; causal row i has i + 1).  Each level pairs neighbours (2w, 2w+1):
    max = a + ReLU(b - a), the difference taken mod 2^(n-f+2) and its sign read on n-f+1 bits
    (the ReLU's comparison width).  An odd row carries its last element to the next level
    unchanged (SIGMA's causal kernel does a dummy ReLU of 0 for it).  ceil(log2 W) levels.
    Exact (= the true max mod 2^(n-f+2)) when every row's spread max - min is < 2^(n-f).
    """
    ring_input(x, n, min_bits=GATE_MIN_BITS)
    r = Ring(reduced_bits(n))
    sign_bit = reduced_bits(n) - 2  # MSB of the (n-f+1)-bit comparison
    width = x.shape[-1] if x.dim() else 0
    if width < 1:
        raise ValueError("the max needs rows of at least one entry on the last axis")
    if count is None:
        cnt = torch.full(x.shape[:-1], width, dtype=torch.int64, device=x.device)
    else:
        if not isinstance(count, torch.Tensor) or count.shape != x.shape[:-1]:
            raise ValueError(f"count must be a tensor of shape {tuple(x.shape[:-1])}")
        cnt = count.to(device=x.device, dtype=torch.int64)
        if bool(((cnt < 1) | (cnt > width)).any()):
            raise ValueError(f"every count must lie in [1, {width}]")
    cur = r.wrap(x)
    while cur.shape[-1] > 1:
        if cur.shape[-1] % 2:
            cur = torch.nn.functional.pad(cur, (0, 1))
        a, b = cur[..., 0::2], cur[..., 1::2]
        pair = 2 * torch.arange(a.shape[-1], device=x.device) + 1 < cnt.unsqueeze(-1)
        diff = torch.where(pair, r.wrap(b - a), torch.zeros_like(a))
        relu = torch.where((diff >> sign_bit) & 1 == 0, diff, torch.zeros_like(diff))
        cur = r.wrap(a + relu)
        cnt = (cnt + 1) // 2
    return cur[..., 0]


def reference_nexp(d: torch.Tensor, n: int) -> torch.Tensor:
    """e^(-d) at scale 12, as SIGMA's `gpuNExp`; d = max - x in Z_{2^(n-f+2)} (scale 12, d >= 0).

      1. c = min(d, 2^16 - 1): select on DReLU(d - (2^16-1)) over n-f+2 bits; a 16-bit value.
      2. e_lo = nexp_lsb[c mod 2^8], e_hi = nexp_msb[c >> 8] (TR 16 -> 8, exact).
      3. e = TrWithSlack(e_hi·e_lo, 12) in Z_{2^n} (the product is < 2^24: inside the gap).
    """
    check_bits(n, GATE_MIN_BITS)
    r = ring_input(d, reduced_bits(n), "d")
    below = r.signed(r.wrap(d - CLIP)) < 0
    c = torch.where(below, d, torch.full_like(d, CLIP)) & 0xFFFF  # the select outputs a u16
    e_lo = tables.nexp_lsb(device=d.device)[c & 0xFF]
    e_hi = tables.nexp_msb(device=d.device)[c >> 8]
    return reference_tr_with_slack(Ring(n).wrap(e_hi * e_lo), n, F, op="nexp product")


def reference_inverse(s: torch.Tensor, n: int, length: int) -> torch.Tensor:
    """1/S at scale 12 for a row sum S of nExp values (scale 12) over rows of `length` entries.

    p = f + ceil(log2 L); q = TrWithSlack(S mod 2^p: p -> p-6, 6) = ((S mod 2^p) >> 6) mod 2^(p-6)
    (exact truncate-reduce), then the (p-6)-bit table `inverse`: 2^18/q, entry 0 = 2^18/2^(p-6)
    for the wrap of S = 2^p (every entry of a row equal, L a power of two).
    """
    ring_input(s, n, "S", min_bits=GATE_MIN_BITS)
    bits = tables.inverse_bits(length)
    p = bits + F - 6
    q = reference_tr_with_slack(s & ((1 << p) - 1), p, 6, bits_out=bits)
    return tables.inverse(bits, 6, F, device=s.device)[q]


def _logit_spread_check(x: torch.Tensor, n: int, valid: torch.Tensor | None, layer, violations):
    """Every pairwise difference must fit the (n-f+1)-bit comparison: max - min < 2^(n-f)."""
    xs = Ring(n).signed(x)
    big = torch.iinfo(torch.int64).max
    row_min = (xs if valid is None else torch.where(valid, xs, big)).min(dim=-1, keepdim=True).values
    return check_range(xs - row_min, 0, 1 << (n - F), "softmax logit spread (x - row min)",
                       layer=layer, violations=violations, where=valid)


def reference_softmax(x: torch.Tensor, n: int, *, causal: bool = False, layer: str | None = None,
                      violations: list | None = None) -> torch.Tensor:
    """SIGMA's fixed-point softmax over the last axis of ring values x (scale 12) in Z_{2^n}.

    Step by step as `gpuSoftmax`:
      1. M = tournament max (reference_softmax_max) in Z_{2^(n-f+2)};
      2. d = M - x mod 2^(n-f+2);  3. e = nExp(d) (reference_nexp), Z_{2^n};
      4. S = Σ_j e_j mod 2^n;       5. inv = reference_inverse(S, n, L);
      6. out = TrWithSlack(e·inv, 12) mod 2^n.
    causal: x is (..., L, L); row i uses columns j <= i and is 0 for j > i (inputs there are
    ignored).  Precondition: in every row max - min < 2^(n-f) (2^38 at n = 50), so that every
    difference fits the 39-bit comparisons of the 40-bit ring (checked: RangeViolation); the
    absolute level of the logits does not matter.  Bit-exact with SIGMA's ClearText `softmax`
    (mode 0) and `softmax_triangular` inside that range.
    """
    ring = ring_input(x, n, min_bits=GATE_MIN_BITS)
    if x.dim() < 1 or x.shape[-1] < 1:
        raise ValueError("softmax needs rows of at least one entry on the last axis")
    length = x.shape[-1]
    valid, count = None, None
    if causal:
        if x.dim() < 2 or x.shape[-2] != length:
            raise ValueError(f"causal softmax needs square (..., L, L) blocks, got shape "
                             f"{tuple(x.shape)}")
        rows = torch.arange(length, device=x.device)
        valid = rows.unsqueeze(-1) >= rows  # j <= i
        count = (rows + 1).expand(x.shape[:-1])
    _logit_spread_check(x, n, valid, layer, violations)

    r = Ring(reduced_bits(n))
    m = reference_softmax_max(x, n, count)
    e = reference_nexp(r.wrap(m.unsqueeze(-1) - x), n)
    if valid is not None:
        e = torch.where(valid, e, torch.zeros_like(e))
    s = ring.wrap(e.sum(dim=-1))
    inv = reference_inverse(s, n, length)
    return reference_tr_with_slack(ring.wrap(e * inv.unsqueeze(-1)), n, F,
                                   op="softmax normalisation", layer=layer, violations=violations)
