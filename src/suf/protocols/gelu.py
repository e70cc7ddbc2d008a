"""GeLU (sigma_spec §3.7; SIGMA `gpuGelu<T, u8, 8>`, paper Fig. 7).

SIGMA computes GeLU(x) = ReLU(x) - δ(x) with δ = ReLU - GeLU read from an 8-bit table at input
scale 6.  SiLU (silu.py) is the same gadget with a 10-bit table; the shared pipeline is
`reference_relu_minus_lut`.
"""
from __future__ import annotations

import torch

from suf.protocols import tables
from suf.protocols.ranges import check_range, ring_input
from suf.protocols.truncate import reference_tr_with_slack
from suf.ring import Ring

F = tables.SCALE
GATE_MIN_BITS = 32  # the gates' fixed constants (clips, table scales) need this much room


# ================================================================================================
# reference (cleartext)
# ================================================================================================
def input_bound(n: int) -> int:
    """GeLU/SiLU inputs must lie in [-2^(n-f-1), 2^(n-f-1)): the range of a TrFloor(n, f) output,
    which SIGMA hard-codes (`bin = n - f`)."""
    return 1 << (n - F - 1)


def reference_relu_minus_lut(x: torch.Tensor, n: int, clip_bits: int, table: torch.Tensor,
                             op: str, *, layer: str | None = None,
                             violations: list | None = None) -> torch.Tensor:
    """ReLU(x) - table[|clip(floor(x/64))|], step by step as `gpuGelu<T, TClip, clip_bits>`.

    x: ring values of Z_{2^n} at scale 12; returns ring values at scale 12.
      1. y = TrWithSlack(x: n -> b, 6) = floor(x/64) mod 2^b, b = n - 2f + 7 (33 at n = 50).
      2. d = DReLU(y) and the interval test i = 1{-c_max <= y < c_max} on b bits, c_max = 2^clip_bits - 1.
      3. c = |y| if i else c_max (selectlin; a clip_bits-bit value).
      4. δ = table[c] (scale 12).
      5. out = select(d, x) - δ mod 2^n.
    """
    ring = ring_input(x, n, min_bits=GATE_MIN_BITS)
    bound = input_bound(n)
    check_range(ring.signed(x), -bound, bound, op, layer=layer, violations=violations)
    b = n - 2 * F + 7
    y = Ring(b).signed(reference_tr_with_slack(x, n, F - 6, bits_out=b))
    c_max = (1 << clip_bits) - 1
    drelu = y >= 0
    inside = (y >= -c_max) & (y < c_max)
    c = torch.where(inside, torch.where(drelu, y, -y), torch.full_like(y, c_max))
    delta = table.to(x.device)[c]
    return ring.wrap(torch.where(drelu, x, torch.zeros_like(x)) - delta)


def reference_gelu(x: torch.Tensor, n: int, *, layer: str | None = None,
                   violations: list | None = None) -> torch.Tensor:
    """SIGMA's fixed-point GeLU (erf form) of ring values x at scale 12 in Z_{2^n}.

    Bit-exact with SIGMA's ClearText `gelu` and the GPU protocol for x in [-2^(n-13), 2^(n-13))
    (checked: RangeViolation).  Clip at 255 (|x| < 4), 8-bit table `relu_sub_gelu`.
    """
    return reference_relu_minus_lut(x, n, 8, tables.relu_sub_gelu(8, 6, F), "gelu",
                                    layer=layer, violations=violations)
