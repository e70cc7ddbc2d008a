"""LayerNorm (sigma_spec §3.9; SIGMA `gpuLayerNorm` + LLAMA `Rsqrt`) over the last axis (width d).

SIGMA's LayerNorm has no ε.  Its mean is exact only when d is a power of two: otherwise it is
floor(floor(S·floor(2^12/d))/2^12), a multiple floor(2^12/d)·d/2^12 of the true mean, which is
0.9375 for d = 768 (BERT-base, GPT-2): the "variance" then becomes var + (0.0625·mean)².
"""
from __future__ import annotations

import torch

from suf.protocols import tables
from suf.protocols.gelu import GATE_MIN_BITS
from suf.protocols.ranges import ring_input
from suf.protocols.rsqrt import reference_rsqrt
from suf.protocols.truncate import reference_tr_with_slack, reference_trfloor

F = tables.SCALE


# ================================================================================================
# reference (cleartext)
# ================================================================================================
def reference_layernorm_stats(x: torch.Tensor, n: int, *, layer: str | None = None,
                              violations: list | None = None):
    """Per-row quantities of SIGMA's LayerNorm for ring values x (..., d) at scale 12 in Z_{2^n}.

    Returns (S, μ, V, r), each of shape (...) in Z_{2^n}:
      S = Σ_j x_j;
      μ = TrFloor(S, log2 d) if d is a power of two, else TrFloor(S·floor(2^12/d), 12);
      V = Σ_j (x_j - μ)² (scale 24), opened in the protocol;
      r = reference_rsqrt(V, n, d): 1/σ at scale 12.  Precondition V < 2^(n-1) (RangeViolation).
    """
    ring = ring_input(x, n, min_bits=GATE_MIN_BITS)
    if x.dim() < 1 or x.shape[-1] < 1:
        raise ValueError("layernorm needs rows of at least one entry on the last axis")
    d = x.shape[-1]
    s = ring.wrap(x.sum(dim=-1))
    if d & (d - 1) == 0:
        mu = reference_trfloor(s, n, d.bit_length() - 1)
    else:
        mu = reference_trfloor(ring.wrap(s * ((1 << F) // d)), n, F)
    z = ring.wrap(x - mu.unsqueeze(-1))
    v = ring.wrap((z * z).sum(dim=-1))  # int64 wraps mod 2^64, a multiple of 2^n
    r = reference_rsqrt(v, n, d, op="layernorm V = sum (x - mu)^2", layer=layer,
                        violations=violations)
    return s, mu, v, r


def reference_layernorm(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, n: int, *,
                        layer: str | None = None, violations: list | None = None) -> torch.Tensor:
    """SIGMA's fixed-point LayerNorm of ring values x (..., d) at scale 12 in Z_{2^n}.

    gamma: (d,) at scale 12; beta: (d,) at scale 24 (2f): it is added before the last truncation.
      1. (S, μ, V, r) = reference_layernorm_stats(x);
      2. t = TrWithSlack((x - μ)·r, 12)         (window multiply by the row's r);
      3. out = TrWithSlack(t·γ + β, 12)          (window multiply by the column's γ, plus β).
    Preconditions (RangeViolation): V < 2^(n-1), and both products inside TrWithSlack's gap
    [-2^(n-2), 2^(n-2)).  Bit-exact with SIGMA's ClearText `layernorm` inside them.
    """
    ring = ring_input(x, n, min_bits=GATE_MIN_BITS)
    d = x.shape[-1] if x.dim() else 0
    for name, p in (("gamma", gamma), ("beta", beta)):
        ring_input(p, n, name)
        if p.shape != (d,):
            raise ValueError(f"{name} must have shape ({d},) for rows of width {d}, got "
                             f"{tuple(p.shape)}")
        if p.device != x.device:
            raise ValueError(f"{name} is on {p.device} but x is on {x.device}")
    _, mu, _, r = reference_layernorm_stats(x, n, layer=layer, violations=violations)
    z = ring.wrap(x - mu.unsqueeze(-1))
    t = reference_tr_with_slack(ring.wrap(z * r.unsqueeze(-1)), n, F,
                                op="layernorm (x - mu) * rsqrt", layer=layer, violations=violations)
    return reference_tr_with_slack(ring.wrap(t * gamma + beta), n, F,
                                   op="layernorm y * gamma + beta", layer=layer,
                                   violations=violations)
