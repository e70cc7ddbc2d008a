"""SiLU (sigma_spec §3.7): SIGMA's `gpuGelu<T, u16, 10>` with the 10-bit `reluSubSilu` table."""
from __future__ import annotations

import torch

from suf.protocols import tables
from suf.protocols.gelu import reference_relu_minus_lut


# ================================================================================================
# reference (cleartext)
# ================================================================================================
def reference_silu(x: torch.Tensor, n: int, *, layer: str | None = None,
                   violations: list | None = None) -> torch.Tensor:
    """SIGMA's fixed-point SiLU x·sigmoid(x) of ring values x at scale 12 in Z_{2^n}.

    The GeLU pipeline (gelu.reference_relu_minus_lut) with clip 1023 (|x| < 16) and the 10-bit
    table `relu_sub_silu`.  Bit-exact with SIGMA's ClearText `silu` for x in
    [-2^(n-13), 2^(n-13)) (checked: RangeViolation).
    """
    return reference_relu_minus_lut(x, n, 10, tables.relu_sub_silu(10, 6, tables.SCALE), "silu",
                                    layer=layer, violations=violations)
