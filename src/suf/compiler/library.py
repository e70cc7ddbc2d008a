"""SUF mode's gates: each nonlinear function of Sigma mode as a SUF descriptor whose cleartext
evaluation IS Sigma mode's reference (checked), lowered by suf.compiler.lower.  So a SUF gate's
output equals the Sigma gate's bit for bit, with fewer exchanges, bits and key bytes.

  suf_gelu, suf_silu  y = TrWithSlack(x, 6) (exact range reduction to b = n - 17 bits); two
                      intervals on y (y >= 0: P = x, the ReLU; y < 0: 0) and the window
                      y in [-2^c, 2^c) holding -T[min(|y|, 2^c - 1)] (T = SIGMA's ReLU - GeLU
                      table, c its clip bits).  Outside the window SIGMA reads T[2^c - 1] = 0.
  suf_nexp            d in Z_{2^(n-f+2)}, d >= 0: the window [0, 2^16) holds SIGMA's two-table
                      pipeline composed (nexp_msb[c >> 8]·nexp_lsb[c & 255] >> 12); beyond it
                      the clip gives 0, which the window's range gate gives for free.
  suf_inverse         SIGMA's 1/S reads only S mod 2^p (p = table bits + 6): the whole reduced
                      ring is the window (an eval-all lookup, no truncation exchange).
  suf_rsqrt           LayerNorm's 1/σ: the 128(n-7) intervals of constant bf16 index (one step
                      lookup over them, suf.gates.rsqrt's boundaries).
  suf_predicates      the IR's predicates and Boolean helpers (suf.compiler.boolean) on GeLU's
                      reduced input: MSB, y < β, low-bit comparisons, NOT / XOR / AND.
  suf_tanh, suf_sigmoid  the compiler on new functions (`compile_function`): round(f(x/2^12)·2^12)
                      as references, fitted to constant tails and one window.
"""
from __future__ import annotations

import functools

import torch

from suf.compiler import boolean, ir, lower
from suf.core.checks import check_bits, check_range, ring_input
from suf.core.config import SCALE as F
from suf.core.ring import low_mask
from suf.gates import gelu, inverse, nexp, rsqrt, silu, tables
from suf.gates.softmax_max import reduced_bits
from suf.mpc.gate import Example, Gate, Input, register


def gate_from(name: str, descriptor, reference, example) -> Gate:
    """Register the gate `name` lowered from `descriptor(**params) -> Descriptor`; its inputs
    are one tensor of the descriptor's n_in-bit ring values."""
    def layout(shape, **params):
        return lower.layout(descriptor(**params), shape)

    def keygen(dealer, r_in, *, op: str = name, **params):
        return lower.keygen(dealer, descriptor(**params), r_in, op=op)

    def eval(party, x_hat, *, op: str = name, **params):
        return lower.eval(party, descriptor(**params), x_hat, op=op)

    return register(Gate(name, layout, keygen, eval, reference, example))


# ================================================================================================
# GeLU and SiLU: ReLU(x) - T[|clip(floor(x/64))|]
# ================================================================================================
def relu_minus_table(name: str, n: int, clip_bits: int, table: torch.Tensor) -> ir.Descriptor:
    check_bits(n, gelu.GATE_MIN_BITS)
    b = n - 2 * F + 7  # SIGMA's width of floor(x/64)
    half = 1 << (b - 1)
    starts, polys = ir.partition(b, [(-half, (0,)), (0, (0, 1))])
    c = 1 << clip_bits
    t = table.tolist()
    window = ir.Window((-c) & low_mask(b), tuple(-t[min(abs(i - c), c - 1)] for i in range(2 * c)))
    bound = gelu.input_bound(n)
    return ir.Descriptor(name, n, n, -bound, bound, ir.Reduce("shift", b, F - 6), starts, polys,
                         window)


@functools.lru_cache(maxsize=None)
def gelu_descriptor(n: int) -> ir.Descriptor:
    desc = relu_minus_table("suf_gelu", n, gelu.CLIP_BITS, gelu.table())
    ir.check(desc, lambda x: gelu.reference(x, n=n), ir.edges(desc))
    return desc


@functools.lru_cache(maxsize=None)
def silu_descriptor(n: int) -> ir.Descriptor:
    desc = relu_minus_table("suf_silu", n, silu.CLIP_BITS, silu.table())
    ir.check(desc, lambda x: silu.reference(x, n=n), ir.edges(desc))
    return desc


# ================================================================================================
# softmax: nExp and the inverse
# ================================================================================================
@functools.lru_cache(maxsize=None)
def nexp_descriptor(n: int) -> ir.Descriptor:
    check_bits(n, gelu.GATE_MIN_BITS)
    red = reduced_bits(n)
    return ir.fit_window("suf_nexp", lambda d: nexp.reference(d, n=n), n_in=red, n_out=n, lo=0,
                         hi=1 << (red - 1), monotone=True, max_window_bits=16)


@functools.lru_cache(maxsize=None)
def inverse_descriptor(n: int, length: int) -> ir.Descriptor:
    check_bits(n, gelu.GATE_MIN_BITS)
    p = tables.inverse_bits(length) + 6
    return ir.fit_window("suf_inverse", lambda s: inverse.reference(s, n=n, length=length),
                         n_in=n, n_out=n, lo=0, hi=1, reduce_low=p, max_window_bits=p)


def _nexp_reference(d, *, n: int, layer=None, violations=None):
    """Sigma mode's nExp on SUF mode's domain d >= 0 (softmax's d = max - x always is)."""
    r = ring_input(d, reduced_bits(n), "d")
    check_range(r.signed(d), 0, 1 << (reduced_bits(n) - 1), "suf_nexp", layer=layer,
                violations=violations)
    return nexp.reference(d, n=n, layer=layer, violations=violations)


# ================================================================================================
# LayerNorm's rsqrt
# ================================================================================================
@functools.lru_cache(maxsize=None)
def rsqrt_descriptor(n: int, d: int) -> ir.Descriptor:
    starts, index = rsqrt.intervals(n)
    values = tables.rsqrt(d)[index].tolist()
    desc = ir.Descriptor("suf_rsqrt", n, n, 0, 1 << (n - 1), ir.Reduce("none", n),
                         tuple(starts.tolist()), tuple((v,) for v in values))
    ir.check(desc, lambda v: rsqrt.reference(v, n=n, d=d), ir.edges(desc))
    return desc


# ================================================================================================
# the compiler on new functions
# ================================================================================================
def fixed_point_reference(fn, n: int, scale: int = F):
    """round(fn(x / 2^scale)·2^scale) on ring values of Z_{2^n} (float64, CPU), valid for
    |x| < 2^(n-13) like GeLU's inputs."""
    def reference(x: torch.Tensor, *, layer=None, violations=None, **_):
        ring = ring_input(x, n)
        xs = ring.signed(x)
        bound = gelu.input_bound(n)
        check_range(xs, -bound, bound, "fixed-point reference", layer=layer,
                    violations=violations)
        real = fn(xs.cpu().to(torch.float64) / (1 << scale))
        return ring.wrap(torch.round(real * (1 << scale)).to(torch.int64).to(x.device))
    return reference


def compile_function(name: str, fn, *, n: int, monotone: bool = True,
                     max_window_bits: int = 17) -> ir.Descriptor:
    """The descriptor of the fixed-point function round(fn(x/2^12)·2^12) over the GeLU-like
    domain |x| < 2^(n-13), fitted and checked (suf.compiler.ir.fit_window)."""
    bound = gelu.input_bound(n)
    return ir.fit_window(name, fixed_point_reference(fn, n), n_in=n, n_out=n, lo=-bound, hi=bound,
                         monotone=monotone, max_window_bits=max_window_bits)


@functools.lru_cache(maxsize=None)
def tanh_descriptor(n: int) -> ir.Descriptor:
    return compile_function("suf_tanh", torch.tanh, n=n)


@functools.lru_cache(maxsize=None)
def sigmoid_descriptor(n: int) -> ir.Descriptor:
    return compile_function("suf_sigmoid", torch.sigmoid, n=n)


def function_example(bits: int, count: int) -> Example:
    bound = gelu.input_bound(bits)

    def draw(g):
        edges = torch.tensor([0, 1, -1, bound - 1, -bound, 1 << 15, -(1 << 15), 19000, -37000])
        edges = edges[:count]
        k = count - edges.numel()
        near = (g.ring(k, 18) - (1 << 17)) & low_mask(bits)
        return [torch.cat([edges & low_mask(bits), near])]

    return Example((Input("x", 1, (count,), bits),), {"n": bits}, bits, draw)


def _tanh_reference(x, *, n: int, layer=None, violations=None):
    return fixed_point_reference(torch.tanh, n)(x, layer=layer, violations=violations)


def _sigmoid_reference(x, *, n: int, layer=None, violations=None):
    return fixed_point_reference(torch.sigmoid, n)(x, layer=layer, violations=violations)


# ================================================================================================
# predicates and Boolean helpers
# ================================================================================================
@functools.lru_cache(maxsize=None)
def predicates_descriptor(n: int) -> ir.BitsDescriptor:
    """MSB(y), y < -300, x mod 2^12 < 2^11, x mod 2^9 < 100 on y = floor(x/64) (GeLU's
    reduction), and outputs using every Boolean helper (ANDs two deep)."""
    check_bits(n, gelu.GATE_MIN_BITS)
    bound = gelu.input_bound(n)
    preds = (ir.Predicate("msb"), ir.Predicate("lt", -300), ir.Predicate("ltlow", 1 << 11, 12),
             ir.Predicate("ltlow", 100, 9))
    p = [("p", i) for i in range(4)]
    outputs = (p[0], ("not", p[0]), ("and", p[1], p[2]),
               ("and", ("xor", p[0], p[3]), ("not", p[2])),
               ("and", ("and", p[0], p[1]), p[3]), ("const", 1))
    return ir.BitsDescriptor("suf_predicates", n, -bound, bound,
                             ir.Reduce("shift", n - 2 * F + 7, F - 6), preds, outputs)


def _predicates_reference(x, *, n: int, layer=None, violations=None):
    desc = predicates_descriptor(n)
    ring = ring_input(x, n)
    check_range(ring.signed(x), desc.lo, desc.hi, "suf_predicates", layer=layer,
                violations=violations)
    return ir.evaluate_bits(desc, x)


def _predicates_example(bits: int, count: int) -> Example:
    ex = gelu.example(bits, count)
    return Example(ex.inputs, ex.params, 1, ex.draw)


def _predicates_layout(shape, *, n: int):
    return boolean.layout(predicates_descriptor(n), shape)


def _predicates_keygen(dealer, r_in, *, n: int, op: str = "suf_predicates"):
    return boolean.keygen(dealer, predicates_descriptor(n), r_in, op=op)


def _predicates_eval(party, x_hat, *, n: int, op: str = "suf_predicates"):
    return boolean.eval(party, predicates_descriptor(n), x_hat, op=op)


PREDICATES = register(Gate("suf_predicates", _predicates_layout, _predicates_keygen,
                           _predicates_eval, _predicates_reference, _predicates_example))


GELU = gate_from("suf_gelu", gelu_descriptor, gelu.reference, gelu.example)
SILU = gate_from("suf_silu", silu_descriptor, silu.reference, silu.example)
NEXP = gate_from("suf_nexp", nexp_descriptor, _nexp_reference, nexp.example)
INVERSE = gate_from("suf_inverse", inverse_descriptor, inverse.reference, inverse.example)
RSQRT = gate_from("suf_rsqrt", rsqrt_descriptor, rsqrt.reference, rsqrt.example)
TANH = gate_from("suf_tanh", tanh_descriptor, _tanh_reference, function_example)
SIGMOID = gate_from("suf_sigmoid", sigmoid_descriptor, _sigmoid_reference, function_example)


def descriptor(gate: str, **params) -> ir.Descriptor:
    """The descriptor behind a SUF gate of this module, for its parameters."""
    builders = {"suf_gelu": gelu_descriptor, "suf_silu": silu_descriptor,
                "suf_nexp": nexp_descriptor, "suf_inverse": inverse_descriptor,
                "suf_rsqrt": rsqrt_descriptor, "suf_tanh": tanh_descriptor,
                "suf_sigmoid": sigmoid_descriptor}
    if gate not in builders:
        raise KeyError(f"no SUF descriptor for {gate!r}; known: {', '.join(sorted(builders))}")
    return builders[gate](**params)

