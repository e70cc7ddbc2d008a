"""Truncation gadgets of SIGMA (sigma_spec §3.4): TR, TrWithSlack (GapARS) and TrFloor (ARS).

All three are floor truncations; they differ in the ring of the result and in their precondition.
Inputs are ring values of Z_{2^n} in [0, 2^n) (torch.int64, any shape, any device); "signed(x)" is
the two's-complement view in [-2^(n-1), 2^(n-1)).
"""
from __future__ import annotations

import torch

from suf.protocols.ranges import check_range, ring_input
from suf.ring import Ring


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
