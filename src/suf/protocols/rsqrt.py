"""Reciprocal square root of LayerNorm (sigma_spec §3.9 step 4; LLAMA `Rsqrt` = F2BF16 + LUT_13).

SIGMA turns the opened row sum of squares V (scale 2f) into a 13-bit bfloat16-like index
(7-bit mantissa below the leading one, 6-bit exponent: index = m·64 + e) and reads 1/σ at scale f
from `tables.rsqrt(d)`.  The reference reproduces that index computation exactly, over V's whole
range (no shortcut through V's low bits), and the ClearText table values (signed exponent).
"""
from __future__ import annotations

import torch

from suf.protocols import tables
from suf.protocols.ranges import check_range, ring_input

GATE_MIN_BITS = 14  # the index needs at least 8 bits of mantissa and a 6-bit exponent field


# ================================================================================================
# reference (cleartext)
# ================================================================================================
def reference_rsqrt_index(v: torch.Tensor, n: int) -> torch.Tensor:
    """The 13-bit index LLAMA's F2BF16 computes from V in Z_{2^n}, for every V.

    F2BF16 (`fixtobfloat16.cpp`) forms the bits 1{V < 2^i}, i = 1..n-1, and from the first i where
    the bit is set (j) takes the exponent k = j - 1 and the multiplier u = 2^(n-j).  Then
    V·u mod 2^n has its leading one at bit n-1, its top byte minus 128 is the 7-bit mantissa m,
    and index = (m·64 + k) mod 2^13.  Hence for 1 <= V < 2^(n-1): k = floor(log2 V) and m = the
    7 bits after V's leading one (zero-filled below bit 0 when k < 7).  For V = 0 and V = 1 the
    index is 0 (V = 0 has no leading one: u = 2^(n-1) and the mantissa wraps to 0), and for
    V >= 2^(n-1) no bit is set (u = 0), so the index is 0 as well; LayerNorm excludes that range.
    """
    ring = ring_input(v, n, "V", min_bits=GATE_MIN_BITS)
    above = torch.zeros_like(v)  # number of i in [1, n-1] with V >= 2^i
    for i in range(1, n):
        above += (v >= (1 << i)).to(torch.int64)
    found = above < n - 1  # some 1{V < 2^i} is set; its first position is j = above + 1
    k = torch.where(found, above, torch.zeros_like(v))
    u = torch.where(found, torch.ones_like(v) << (n - 1 - above).clamp(min=0), torch.zeros_like(v))
    vu = ring.wrap(v * u)
    mantissa = (vu >> (n - 8)) - 128
    return ((mantissa << 6) + k) & ((1 << tables.RSQRT_BITS) - 1)


def reference_rsqrt(v: torch.Tensor, n: int, d: int, *, op: str = "rsqrt",
                    layer: str | None = None, violations: list | None = None) -> torch.Tensor:
    """1/σ at scale 12 from the sum of squares V (scale 24) of a row of width d: tables.rsqrt(d)
    at reference_rsqrt_index(V).

    Equals SIGMA's ClearText `invsqrt_lut_2(V, 12, d, n)` = (i64)(2^24/sqrt(m·2^(k-7)/d)) for
    1 <= V < 2^(n-1).  Precondition V < 2^(n-1) (checked: RangeViolation), since F2BF16 only scans
    1{V < 2^i} for i <= n-1.  V = 0, where ClearText is undefined (it casts 2^24/0.0 = inf),
    is defined as SIGMA's GPU path computes it: index 0, i.e. tables.rsqrt(d)[0] = floor(2^24·√d).
    In LayerNorm that value is multiplied by x - μ = 0, so the row's output does not depend on it.
    """
    ring_input(v, n, "V", min_bits=GATE_MIN_BITS)
    check_range(v, 0, 1 << (n - 1), op, layer=layer, violations=violations)
    return tables.rsqrt(d, device=v.device)[reference_rsqrt_index(v, n)]
