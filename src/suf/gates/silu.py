"""SiLU (sigma_spec §3.7): SIGMA's `gpuGelu<T, u16, 10>`, the GeLU gadget (suf.gates.gelu's
`relu_minus_lut_*`) with a 10-bit clip (|x| < 16), u16 mux tables and the 10-bit `reluSubSilu`
table."""
from __future__ import annotations

import torch

from suf.core.config import SCALE as F
from suf.gates import tables
from suf.gates.gelu import (relu_minus_lut_eval, relu_minus_lut_example, relu_minus_lut_keygen,
                            relu_minus_lut_layout, relu_minus_lut_reference)
from suf.mpc.gate import Example, Gate, Layout, register

CLIP_BITS = 10


def table(device=None) -> torch.Tensor:
    """SiLU's public table: ReLU - SiLU at input scale 6, 10 bits, output scale F."""
    return tables.relu_sub_silu(CLIP_BITS, 6, F, device=device)


def layout(shape, *, n: int) -> Layout:
    return relu_minus_lut_layout(shape, n=n, clip_bits=CLIP_BITS)


def keygen(dealer, r_in: torch.Tensor, *, n: int, op: str = "silu") -> torch.Tensor:
    """Keys of SIGMA's SiLU for inputs masked with r_in (Z_{2^n}); returns the output mask."""
    return relu_minus_lut_keygen(dealer, r_in, n=n, clip_bits=CLIP_BITS, op=op)


def eval(party, x_hat: torch.Tensor, *, n: int, op: str = "silu") -> torch.Tensor:
    """The opened masked SiLU(x) + r_out; equals reference(x, n=n) on its valid range."""
    return relu_minus_lut_eval(party, x_hat, n=n, clip_bits=CLIP_BITS,
                               table=table(party.device), op=op)


def reference(x: torch.Tensor, *, n: int, layer: str | None = None,
              violations: list | None = None) -> torch.Tensor:
    """SIGMA's fixed-point SiLU x·sigmoid(x) of ring values x at scale 12 in Z_{2^n}.

    The GeLU pipeline (gelu.relu_minus_lut_reference) with clip 1023 (|x| < 16) and the 10-bit
    table `relu_sub_silu`.  Bit-exact with SIGMA's ClearText `silu` for x in
    [-2^(n-13), 2^(n-13)) (checked: RangeViolation).
    """
    return relu_minus_lut_reference(x, n=n, clip_bits=CLIP_BITS, table=table(), op="silu",
                                    layer=layer, violations=violations)


def example(bits: int, count: int) -> Example:
    return relu_minus_lut_example(bits, count, CLIP_BITS)


GATE = register(Gate("silu", layout, keygen, eval, reference, example))
