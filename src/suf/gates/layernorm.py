"""LayerNorm (sigma_spec §3.9; SIGMA `gpuLayerNorm` + LLAMA `Rsqrt`) over the last axis (width d).

SIGMA's LayerNorm has no ε.  Its mean is exact only when d is a power of two: otherwise it is
floor(floor(S·floor(2^12/d))/2^12), a multiple floor(2^12/d)·d/2^12 of the true mean, which is
0.9375 for d = 768 (BERT-base, GPT-2): the "variance" then becomes var + (0.0625·mean)².

The secure protocol (below the references) is SIGMA's GPU LayerNorm with our rsqrt (one interval
lookup, suf.gates.rsqrt) in place of LLAMA's CPU F2BF16 + LUT.
"""
from __future__ import annotations

import torch

from suf.core.config import SCALE as F
from suf.gates import mul, rsqrt, tables
from suf.gates.gelu import GATE_MIN_BITS
from suf.core.checks import ring_input
from suf.gates.rsqrt import reference_rsqrt
from suf.gates.truncate import (eval_tr_with_slack, eval_trfloor, keygen_tr_with_slack,
                                    keygen_trfloor, reference_tr_with_slack, reference_trfloor)



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


# ================================================================================================
# secure protocol (sigma_spec §3.9, `gpu_layernorm.cu`, with suf.gates.rsqrt for 1/σ)
# ================================================================================================
# Per row of width d, on masked values (x^ = x + r_x; γ^ = γ + r_γ and β^ = β + r_β are the model
# owner's, published once; β at scale 24):
#   1. S = Σ x^ (local); μ = TrFloor(S, log2 d), or TrFloor(S·floor(2^12/d), 12)    4 exchanges
#   2. z^ = x^ - μ^ (local), mask r_z = r_x - r_μ
#   3. square: key <r_z>, <r_z² + r_s>; share P1·z^² - 2z^·<r_z> + <r_z² + r_s> = z² + r_s, kept
#      as a share, summed over the row and opened: V^ = V + Σ r_s                    1 exchange
#   4. rsqrt(V^) (suf.gates.rsqrt)                                              2 exchanges
#   5. z·rsqrt: window multiply (row broadcast), open, TrWithSlack(12)              3 exchanges
#   6. t·γ + β: window multiply (column broadcast), open, + β^, TrWithSlack(12)     3 exchanges
# The rsqrt's transfers are scoped as op "rsqrt" so that they can be reported apart.

def _mean_shift(d: int) -> tuple[int, int]:
    """(multiplier, shift) of the mean: S >> log2 d, or (S·floor(2^12/d)) >> 12."""
    return (1, d.bit_length() - 1) if d & (d - 1) == 0 else ((1 << F) // d, F)


def _check_secure_args(x, gamma, beta, n, names):
    ring = ring_input(x, n, names[0], min_bits=GATE_MIN_BITS)
    if x.dim() < 1 or x.shape[-1] < 2 or x.numel() == 0:
        raise ValueError(f"secure layernorm needs {names[0]} with at least one row of width d >= 2 "
                         f"(d = 1 would truncate the mean by 0 bits), got shape {tuple(x.shape)}")
    d = x.shape[-1]
    for name, p in zip(names[1:], (gamma, beta)):
        ring_input(p, n, name)
        if p.shape != (d,):
            raise ValueError(f"{name} must have shape ({d},) for rows of width {d}, got "
                             f"{tuple(p.shape)}")
        if p.device != x.device:
            raise ValueError(f"{name} is on {p.device} but {names[0]} is on {x.device}")
    return ring, d


def keygen(dealer, r_x: torch.Tensor, r_gamma: torch.Tensor, r_beta: torch.Tensor, n: int,
           op: str = "layernorm") -> torch.Tensor:
    """Keys of LayerNorm for input masks r_x (..., d) and the masks r_γ, r_β (d,) of the published
    γ^, β^; returns the output mask (..., d)."""
    ring, d = _check_secure_args(r_x, r_gamma, r_beta, n, ("r_x", "r_gamma", "r_beta"))
    mult, shift = _mean_shift(d)
    r_mu = keygen_trfloor(dealer, ring.wrap(r_x.sum(-1) * mult), n, shift, op=f"{op}.mean")
    r_z = ring.wrap(r_x - r_mu.unsqueeze(-1))
    r_s = dealer.mask(r_x.shape, n)
    dealer.deal_words(f"{op}.square", r_x.shape, (r_z, r_z * r_z + r_s), n)
    r_rs = rsqrt.keygen(dealer, ring.wrap(r_s.sum(-1)), n, op=f"{op}.rsqrt")
    r_p = mul.keygen(dealer, r_z, r_rs.unsqueeze(-1), n, op=f"{op}.mul_rsqrt")
    r_t = keygen_tr_with_slack(dealer, r_p, n, F, op=f"{op}.trws_rsqrt")
    r_q = mul.keygen(dealer, r_t, r_gamma, n, op=f"{op}.mul_gamma")
    return keygen_tr_with_slack(dealer, ring.wrap(r_q + r_beta), n, F, op=f"{op}.trws_gamma")


def eval(party, x_hat: torch.Tensor, gamma_hat: torch.Tensor, beta_hat: torch.Tensor, n: int,
         op: str = "layernorm") -> torch.Tensor:
    """The masked LayerNorm output (..., d): reference_layernorm(x, γ, β) + r_out, bit for bit
    under the reference's preconditions (V < 2^(n-1), both products inside TrWithSlack's gap)."""
    ring, d = _check_secure_args(x_hat, gamma_hat, beta_hat, n, ("x_hat", "gamma_hat", "beta_hat"))
    mult, shift = _mean_shift(d)
    mu = eval_trfloor(party, ring.wrap(x_hat.sum(-1) * mult), n, shift, op=f"{op}.mean")
    z = ring.wrap(x_hat - mu.unsqueeze(-1))
    key = party.key(f"{op}.square")
    r_z = key.words(z.numel()).view(z.shape)
    c = key.words(z.numel()).view(z.shape)
    key.done()
    sq = c - 2 * z * r_z + (z * z if party.id == 1 else 0)
    v_hat = party.open(ring.wrap(sq.sum(-1)), n)
    with party.scope("rsqrt"):
        rs = rsqrt.eval(party, v_hat, n, d, op=f"{op}.rsqrt")
    p = party.open(mul.share(party, z, rs.unsqueeze(-1), n, op=f"{op}.mul_rsqrt"), n)
    t = eval_tr_with_slack(party, p, n, F, op=f"{op}.trws_rsqrt")
    q = party.open(mul.share(party, t, gamma_hat, n, op=f"{op}.mul_gamma"), n)
    return eval_tr_with_slack(party, ring.wrap(q + beta_hat), n, F, op=f"{op}.trws_gamma")
