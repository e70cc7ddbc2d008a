"""LayerNorm (sigma_spec §3.9; SIGMA `gpuLayerNorm` + LLAMA `Rsqrt`) over the last axis (width d).

SIGMA's LayerNorm has no ε.  Its mean is exact only when d is a power of two: otherwise it is
floor(floor(S·floor(2^12/d))/2^12), a multiple floor(2^12/d)·d/2^12 of the true mean, which is
0.9375 for d = 768 (BERT-base, GPT-2): the "variance" then becomes var + (0.0625·mean)².

The secure protocol (below the references) is SIGMA's GPU LayerNorm with our rsqrt (one interval
lookup, suf.gates.rsqrt) in place of LLAMA's CPU F2BF16 + LUT; `nonlinear="suf"` (part of the
layout) runs "suf_rsqrt" in its place (suf.mpc.gate.nonlinear_gate), through the registry;
`truncation="gap"` (part of the layout) truncates the mean with TrWithSlack instead of TrFloor.
"""
from __future__ import annotations

import torch

from suf.core.checks import check_bits, check_gate_input, ring_input
from suf.core.config import SCALE as F
from suf.core.ring import low_mask
from suf.gates import beaver, mul, tr_with_slack
from suf.gates.gelu import GATE_MIN_BITS
from suf.gates.matmul import truncate_reference
from suf.gates.tr_with_slack import signed_below
from suf.mpc.gate import (Call, Example, Gate, Input, Key, Layout, Open, Words, get,
                          nonlinear_gate, register, truncation_gate)


# ================================================================================================
# reference (cleartext)
# ================================================================================================
def reference_layernorm_stats(x: torch.Tensor, n: int, *, nonlinear: str = "sigma",
                              truncation: str = "faithful", layer: str | None = None,
                              violations: list | None = None):
    """Per-row quantities of SIGMA's LayerNorm for ring values x (..., d) at scale 12 in Z_{2^n}.

    Returns (S, μ, V, r), each of shape (...) in Z_{2^n}:
      S = Σ_j x_j;
      μ = TrFloor(S, log2 d) if d is a power of two, else TrFloor(S·floor(2^12/d), 12)
          (TrWithSlack with truncation="gap": S·mult inside its gap, RangeViolation);
      V = Σ_j (x_j - μ)² (scale 24), opened in the protocol;
      r = rsqrt.reference(V, n, d): 1/σ at scale 12 ("suf_rsqrt"'s when nonlinear="suf").
    Precondition V < 2^(n-1) (RangeViolation).
    """
    ring = ring_input(x, n, min_bits=GATE_MIN_BITS)
    if x.dim() < 1 or x.shape[-1] < 1:
        raise ValueError("layernorm needs rows of at least one entry on the last axis")
    d = x.shape[-1]
    s = ring.wrap(x.sum(dim=-1))
    mult, shift = _mean_shift(d)
    mu = truncate_reference(ring.wrap(s * mult), n=n, s=shift, truncation=truncation,
                            what="layernorm mean sum", layer=layer, violations=violations)
    z = ring.wrap(x - mu.unsqueeze(-1))
    v = ring.wrap((z * z).sum(dim=-1))  # int64 wraps mod 2^64, a multiple of 2^n
    r = get(nonlinear_gate("rsqrt", nonlinear)).reference(
        v, n=n, d=d, op="layernorm V = sum (x - mu)^2", layer=layer, violations=violations)
    return s, mu, v, r


def reference(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, *, n: int,
              nonlinear: str = "sigma", truncation: str = "faithful", layer: str | None = None,
              violations: list | None = None) -> torch.Tensor:
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
    _, mu, _, r = reference_layernorm_stats(x, n, nonlinear=nonlinear, truncation=truncation,
                                            layer=layer, violations=violations)
    z = ring.wrap(x - mu.unsqueeze(-1))
    t = tr_with_slack.reference(ring.wrap(z * r.unsqueeze(-1)), n=n, s=F,
                                op="layernorm (x - mu) * rsqrt", layer=layer,
                                violations=violations)
    return tr_with_slack.reference(ring.wrap(t * gamma + beta), n=n, s=F,
                                   op="layernorm y * gamma + beta", layer=layer,
                                   violations=violations)


# ================================================================================================
# secure protocol (sigma_spec §3.9, `gpu_layernorm.cu`, with suf.gates.rsqrt for 1/σ)
# ================================================================================================
# Per row of width d, on masked values (x^ = x + r_x; γ^ = γ + r_γ and β^ = β + r_β are the model
# owner's, published once; β at scale 24):
#   1. S = Σ x^ (local); μ = TrFloor(S, log2 d), or TrFloor(S·floor(2^12/d), 12)    4 exchanges
#      (TrWithSlack with truncation="gap"                                             2 exchanges)
#   2. z^ = x^ - μ^ (local), mask r_z = r_x - r_μ
#   3. square: key <r_z>, <r_z² + r_s>; the Beaver share of z·z (suf.gates.beaver) + <r_z² + r_s>
#      = z² + r_s, kept as a share, summed over the row and opened: V^ = V + Σ r_s    1 exchange
#   4. rsqrt(V^) (suf.gates.rsqrt)                                              2 exchanges
#   5. z·rsqrt: window multiply (row broadcast), opened, TrWithSlack(12)            3 exchanges
#   6. t·γ + β: window multiply (column broadcast), opened, + β^, TrWithSlack(12)   3 exchanges
# The rsqrt's transfers are scoped as op "rsqrt" so that they can be reported apart.

def _mean_shift(d: int) -> tuple[int, int]:
    """(multiplier, shift) of the mean: S >> log2 d, or (S·floor(2^12/d)) >> 12."""
    return (1, d.bit_length() - 1) if d & (d - 1) == 0 else ((1 << F) // d, F)


def _numel(shape) -> int:
    return int(torch.Size(shape).numel())


def _check_shapes(x_shape, g_shape, b_shape, names=("x", "gamma", "beta")) -> int:
    """The row width d, after checking x (..., d) with d >= 2 and at least one row, γ, β (d,)."""
    x_shape = tuple(x_shape)
    if len(x_shape) < 1 or x_shape[-1] < 2 or _numel(x_shape) == 0:
        raise ValueError(f"secure layernorm needs {names[0]} with at least one row of width d >= 2 "
                         f"(d = 1 would truncate the mean by 0 bits), got shape {x_shape}")
    d = x_shape[-1]
    for name, shape in zip(names[1:], (g_shape, b_shape)):
        if tuple(shape) != (d,):
            raise ValueError(f"{name} must have shape ({d},) for rows of width {d}, got "
                             f"{tuple(shape)}")
    return d


def _check_inputs(x, gamma, beta, n, names):
    """Online checks (no device sync): types and widths, shapes, devices; returns (ring, d)."""
    ring = check_gate_input(x, n, names[0], min_bits=GATE_MIN_BITS)
    for name, p in zip(names[1:], (gamma, beta)):
        check_gate_input(p, n, name)
    d = _check_shapes(x.shape, gamma.shape, beta.shape, names)
    for name, p in zip(names[1:], (gamma, beta)):
        if p.device != x.device:
            raise ValueError(f"{name} is on {p.device} but {names[0]} is on {x.device}")
    return ring, d


def layout(x_shape, g_shape, b_shape, *, n: int, nonlinear: str = "sigma",
           truncation: str = "faithful") -> Layout:
    check_bits(n, GATE_MIN_BITS)
    d = _check_shapes(x_shape, g_shape, b_shape)
    x_shape = tuple(x_shape)
    rows = x_shape[:-1]
    _, shift = _mean_shift(d)
    N = _numel(x_shape)
    return Layout([
        Call("mean", truncation_gate(truncation), (rows,), {"n": n, "s": shift}),
        Key("square", (Words("r_z", N, n), Words("c", N, n))),
        Open("V", _numel(rows), n),
        Call("rsqrt", nonlinear_gate("rsqrt", nonlinear), (rows,), {"n": n, "d": d}),
        Call("mul_rsqrt", "mul", (x_shape, rows + (1,)), {"bits": n}),
        Call("trws_rsqrt", "tr_with_slack", (x_shape,), {"n": n, "s": F}),
        Call("mul_gamma", "mul", (x_shape, (d,)), {"bits": n}),
        Call("trws_gamma", "tr_with_slack", (x_shape,), {"n": n, "s": F}),
    ])


def keygen(dealer, r_x: torch.Tensor, r_gamma: torch.Tensor, r_beta: torch.Tensor, *, n: int,
           nonlinear: str = "sigma", truncation: str = "faithful",
           op: str = "layernorm") -> torch.Tensor:
    """Keys of LayerNorm for input masks r_x (..., d) and the masks r_γ, r_β (d,) of the published
    γ^, β^; returns the output mask (..., d)."""
    ring, d = _check_inputs(r_x, r_gamma, r_beta, n, ("r_x", "r_gamma", "r_beta"))
    lay = layout(r_x.shape, r_gamma.shape, r_beta.shape, n=n, nonlinear=nonlinear,
                 truncation=truncation)
    rsqrt = get(lay.calls("rsqrt")[0].gate)
    mult, shift = _mean_shift(d)
    r_mu = get(lay.calls("mean")[0].gate).keygen(dealer, ring.wrap(r_x.sum(-1) * mult), n=n,
                                                 s=shift, op=f"{op}.mean")
    r_z = ring.wrap(r_x - r_mu.unsqueeze(-1))
    r_s = dealer.mask(r_x.shape, n)
    dealer.deal(op, r_x.shape, lay.key("square"), {"r_z": r_z, "c": r_z * r_z + r_s})
    r_rs = rsqrt.keygen(dealer, ring.wrap(r_s.sum(-1)), n=n, d=d, op=f"{op}.rsqrt")
    r_p = mul.keygen(dealer, r_z, r_rs.unsqueeze(-1), bits=n, op=f"{op}.mul_rsqrt")
    r_t = tr_with_slack.keygen(dealer, r_p, n=n, s=F, op=f"{op}.trws_rsqrt")
    r_q = mul.keygen(dealer, r_t, r_gamma, bits=n, op=f"{op}.mul_gamma")
    return tr_with_slack.keygen(dealer, ring.wrap(r_q + r_beta), n=n, s=F,
                                op=f"{op}.trws_gamma")


def eval(party, x_hat: torch.Tensor, gamma_hat: torch.Tensor, beta_hat: torch.Tensor, *,
         n: int, nonlinear: str = "sigma", truncation: str = "faithful",
         op: str = "layernorm") -> torch.Tensor:
    """The masked LayerNorm output (..., d): reference(x, γ, β) + r_out, bit for bit under the
    reference's preconditions (V < 2^(n-1), both products inside TrWithSlack's gap)."""
    ring, d = _check_inputs(x_hat, gamma_hat, beta_hat, n, ("x_hat", "gamma_hat", "beta_hat"))
    lay = layout(x_hat.shape, gamma_hat.shape, beta_hat.shape, n=n, nonlinear=nonlinear,
                 truncation=truncation)
    rsqrt = get(lay.calls("rsqrt")[0].gate)
    mult, shift = _mean_shift(d)
    mu = get(lay.calls("mean")[0].gate).eval(party, ring.wrap(x_hat.sum(-1) * mult), n=n,
                                             s=shift, op=f"{op}.mean")
    z = ring.wrap(x_hat - mu.unsqueeze(-1))
    key = party.read(op, lay.key("square"))
    r_z = key["r_z"].view(z.shape)
    sq = key["c"].view(z.shape) + beaver.masked_part(party.id, z, z, r_z, r_z, torch.mul)
    v_hat = party.open(ring.wrap(sq.sum(-1)), lay.open("V"))
    with party.scope("rsqrt"):
        rs = rsqrt.eval(party, v_hat, n=n, d=d, op=f"{op}.rsqrt")
    p = mul.eval(party, z, rs.unsqueeze(-1), bits=n, op=f"{op}.mul_rsqrt")
    t = tr_with_slack.eval(party, p, n=n, s=F, op=f"{op}.trws_rsqrt")
    q = mul.eval(party, t, gamma_hat, bits=n, op=f"{op}.mul_gamma")
    return tr_with_slack.eval(party, ring.wrap(q + beta_hat), n=n, s=F, op=f"{op}.trws_gamma")


def example(bits: int, count: int) -> Example:
    """Rows of d = 12 (not a power of two: the mean by floor(2^12/d)), one per 12 elements of
    `count`: a constant row, a row of a few ±1 (1 <= V < 128), then rows |x| < 2^lim scaled down
    by random shifts but the last, lim = (bits-1)//2 - 3 so that V < 2^(n-1); γ in [-2, 2) at
    scale 12 (the model owner's), β in [-2, 2) at scale 24."""
    d = 12
    rows = count // d or 1
    lim = (bits - 1) // 2 - 3

    def draw(g):
        shifts = g.ring((rows, 1), 6) % lim
        shifts[-1] = 0
        x = (g.ring((rows, d), 64) >> (64 - lim - 1)) >> shifts
        x[0] = x[0, 0]
        if rows > 1:
            x[1] = 0
            x[1, [3, 7, 11]] = torch.tensor([1, -1, 1])
        return [x & low_mask(bits), signed_below(g, d, bits, F + 1),
                signed_below(g, d, bits, 2 * F + 1)]

    return Example((Input("x", 1, (rows, d), bits), Input("gamma", 0, (d,), bits),
                    Input("beta", 0, (d,), bits)), {"n": bits}, bits, draw)


GATE = register(Gate("layernorm", layout, keygen, eval, reference, example))
