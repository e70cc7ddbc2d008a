"""SiLU (sigma_spec §3.7): SIGMA's `gpuGelu<T, u16, 10>` with the 10-bit `reluSubSilu` table."""
from __future__ import annotations

import torch

from suf.core.config import SCALE
from suf.gates import tables
from suf.gates.gelu import (eval_relu_minus_lut, keygen_relu_minus_lut,
                                 reference_relu_minus_lut)


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
    return reference_relu_minus_lut(x, n, 10, tables.relu_sub_silu(10, 6, SCALE), "silu",
                                    layer=layer, violations=violations)


# ================================================================================================
# secure protocol (sigma_spec §3.7: the GeLU gadget with a 10-bit clip, u16 mux, 10-bit LUT)
# ================================================================================================
def keygen(dealer, r_in: torch.Tensor, n: int, op: str = "silu") -> torch.Tensor:
    """Keys of SIGMA's SiLU for inputs masked with r_in (Z_{2^n}); returns the output mask."""
    return keygen_relu_minus_lut(dealer, r_in, n, 10, op)


def eval(party, x_hat: torch.Tensor, n: int, op: str = "silu") -> torch.Tensor:
    """The opened masked SiLU(x) + r_out; equals reference_silu(x, n) on its valid range."""
    return eval_relu_minus_lut(party, x_hat, n, 10,
                               tables.relu_sub_silu(10, 6, SCALE), op)
