"""SUF mode: the compiler's descriptors equal their cleartext references, and the lowered gates
equal their descriptors, on every input of reduced rings and on every interval and window edge
±1 at n = 50; the published shortcut (low bits into a table, no range gate) fails the same tests.
"""
from __future__ import annotations

import pytest
import torch

import suf.compiler  # noqa: F401  (registers SUF mode's gates)
from harness import run_masked
from suf.compiler import boolean, ir, library, lower
from suf.core.ring import Ring, low_mask
from suf.gates import gelu, inverse, nexp, rsqrt, silu
from suf.gates.softmax_max import reduced_bits
from suf.mpc import gate as gates
from suf.prg import Stream


def secure(desc: ir.Descriptor, x: torch.Tensor, seed: bytes = b"\x21" * 32):
    """desc's lowered gate run between two parties on ring values x; returns (f(x), run)."""
    y, r_out, run = run_masked(lambda d, r: lower.keygen(d, desc, r, op="g"),
                               lambda p, xh: lower.eval(p, desc, xh, op="g"), x, desc.n_in,
                               desc.n_out, seed=seed)
    return (y - r_out) & low_mask(desc.n_out), run


def signed_range(lo, hi, n, step=1):
    return torch.arange(lo, hi, step, dtype=torch.int64) & low_mask(n)


# ------------------------------------------------------------------------------------------------
# the compiler's templates, exhaustively on small rings
# ------------------------------------------------------------------------------------------------
def _mixed(n=12) -> ir.Descriptor:
    """Polynomials of degree 0, 1 and 2 on three intervals plus a window straddling 0."""
    starts, polys = ir.partition(n, [(-(1 << (n - 1)), (5, -3)), (-40, (7,)), (100, (1, 2, -1))])
    table = tuple((i * 37) % 101 - 50 for i in range(64))
    return ir.Descriptor("mixed", n, n, -(1 << (n - 1)), 1 << (n - 1), ir.Reduce("none", n),
                         starts, polys, ir.Window((-20) & low_mask(n), table))


def _steps(n=12) -> ir.Descriptor:
    """20 constant intervals: the step lookup."""
    cuts = [(-(1 << (n - 1)), (3,))] + [(-900 + 97 * i, ((i * 53) % 211 - 100,)) for i in range(19)]
    starts, polys = ir.partition(n, cuts)
    return ir.Descriptor("steps", n, n, -(1 << (n - 1)), 1 << (n - 1), ir.Reduce("none", n),
                         starts, polys)


def _shifted(n=14) -> ir.Descriptor:
    """TrWithSlack(x, 3) to 10 bits, a ReLU-like interval and a window (GeLU's shape)."""
    b = 10
    starts, polys = ir.partition(b, [(-(1 << (b - 1)), (0,)), (0, (0, 1))])
    table = tuple(-((i - 32) ** 2 % 29) for i in range(64))
    return ir.Descriptor("shifted", n, n, -(1 << (n - 3)), 1 << (n - 3), ir.Reduce("shift", b, 3),
                         starts, polys, ir.Window((-32) & low_mask(b), table))


def _low(n=13) -> ir.Descriptor:
    """f depends on x mod 2^10 only; the window is the whole reduced ring."""
    table = tuple((i * i) % 977 for i in range(1 << 10))
    return ir.Descriptor("low", n, n, -(1 << (n - 1)), 1 << (n - 1), ir.Reduce("low", 10), (0,),
                         ((0,),), ir.Window(0, table))


@pytest.mark.parametrize("make", [_mixed, _steps, _shifted, _low])
def test_template_on_every_input(make):
    desc = make()
    x = signed_range(desc.lo, desc.hi, desc.n_in)
    got, run = secure(desc, x)
    assert torch.equal(got, ir.evaluate(desc, x))
    c = gates.Cost()
    for s in lower.layout(desc, x.shape).steps:
        if isinstance(s, gates.Open):
            c.sent += s.sent
            c.exchanges += 1
    for s in lower.layout(desc, x.shape).calls("reduce"):
        sub = gates.cost(s.gate, *s.shapes, **s.params)
        c.sent += sub.sent
        c.exchanges += sub.exchanges
    assert run.total(0).bytes_sent == c.sent and run.total(0).exchanges == c.exchanges


def test_template_choices():
    assert lower.Plan(_steps()).step and lower.Plan(_steps()).indicators == 0
    mixed = lower.Plan(_mixed())
    assert not mixed.step and mixed.indicators == _mixed().intervals - 1 and mixed.degree == 2
    # GeLU: one opened interval bit, U and a 12-bit V in one word; 4 exchanges, 98 bits at n = 50
    g = lower.Plan(library.gelu_descriptor(50))
    assert (g.indicators, g.m, g.mid_bits) == (1, 12, 14)
    c = gates.cost("suf_gelu", (1024,), n=50)
    assert (c.exchanges, c.sent * 8 / 1024) == (4, 1 + 33 + 14 + 50)


# ------------------------------------------------------------------------------------------------
# SUF mode's gates: the descriptor is Sigma mode's reference
# ------------------------------------------------------------------------------------------------
def test_gelu_silu_descriptors_on_their_whole_domain():
    n = 32
    for desc, ref in ((library.gelu_descriptor(n), gelu.reference),
                      (library.silu_descriptor(n), silu.reference)):
        x = signed_range(desc.lo, desc.hi, n)
        assert torch.equal(ir.evaluate(desc, x), ref(x, n=n))


def test_nexp_descriptor_on_its_whole_domain():
    n = 32
    desc = library.nexp_descriptor(n)
    d = torch.arange(0, 1 << (reduced_bits(n) - 1), dtype=torch.int64)
    assert torch.equal(ir.evaluate(desc, d), nexp.reference(d, n=n))
    assert desc.window.k == 16 and desc.intervals == 1  # the clip is the window's range gate


@pytest.mark.parametrize("length", [1, 4, 128])
def test_inverse_descriptor_on_every_reduced_input(length):
    desc = library.inverse_descriptor(32, length)
    p = desc.bits
    s = torch.arange(1 << p, dtype=torch.int64)
    assert torch.equal(ir.evaluate(desc, s), inverse.reference(s, n=32, length=length))
    high = s + (torch.arange(1 << p) % 977 << p)  # the reference reads S mod 2^p only
    assert torch.equal(ir.evaluate(desc, high), inverse.reference(high, n=32, length=length))


def test_rsqrt_descriptor_on_its_whole_domain():
    n = 20
    desc = library.rsqrt_descriptor(n, 768)
    v = torch.arange(0, 1 << (n - 1), dtype=torch.int64)
    assert torch.equal(ir.evaluate(desc, v), rsqrt.reference(v, n=n, d=768) & low_mask(n))


def test_suf_gates_secure_on_reduced_rings():
    """Through the secure protocol: every S mod 2^12 of the inverse; on CPU a sample of the
    domain for rsqrt and GeLU (every input of theirs runs on the GPU:
    tests/gpu/test_suf_exhaustive.py)."""
    got, _ = secure(library.inverse_descriptor(32, 1), torch.arange(1 << 12, dtype=torch.int64))
    assert torch.equal(got, inverse.reference(torch.arange(1 << 12), n=32, length=1))
    v = torch.cat([torch.arange(0, 300), torch.arange(300, 1 << 13, 37)])
    got, _ = secure(library.rsqrt_descriptor(14, 64), v)
    assert torch.equal(got, rsqrt.reference(v, n=14, d=64) & low_mask(14))
    x = signed_range(-(1 << 12), 1 << 12, 32)  # GeLU's window, both intervals, every input
    got, _ = secure(library.gelu_descriptor(32), x)
    assert torch.equal(got, gelu.reference(x, n=32))


@pytest.mark.parametrize("gate,params", [("suf_gelu", {}), ("suf_silu", {}), ("suf_nexp", {}),
                                         ("suf_inverse", {"length": 128}),
                                         ("suf_rsqrt", {"d": 768}), ("suf_tanh", {}),
                                         ("suf_sigmoid", {})])
def test_suf_gates_on_every_edge_at_n50(gate, params):
    n = 50
    desc = library.descriptor(gate, n=n, **params)
    x = ir.edges(desc)
    count = 64
    if desc.intervals > 64:  # rsqrt (5504 walks a row): a sample of its interval edges ±1
        x = x[torch.randperm(x.numel(), generator=torch.Generator().manual_seed(5))[:32]]
        count = 16
    gen = Stream(b"\x44" * 32)
    width = min(desc.hi - desc.lo, 1 << 40).bit_length() - 1
    x = torch.cat([x, (desc.lo + gen.ring(count, width)) & low_mask(desc.n_in)])
    got, _ = secure(desc, x)
    want = gates.get(gate).reference(x, n=n, **params)
    assert torch.equal(got, want & low_mask(desc.n_out))


def test_tanh_sigmoid_whole_domain_by_monotone_tails():
    n = 32
    for desc, fn in ((library.tanh_descriptor(n), torch.tanh),
                     (library.sigmoid_descriptor(n), torch.sigmoid)):
        x = signed_range(desc.lo, desc.hi, n)
        assert torch.equal(ir.evaluate(desc, x), library.fixed_point_reference(fn, n)(x))


# ------------------------------------------------------------------------------------------------
# the published shortcut computes a different function
# ------------------------------------------------------------------------------------------------
def test_published_shortcut_fails():
    """SUF's published GeLU: the low 8 bits of the un-reduced input (signed) index a 256-entry
    table of GeLU (suf_spec §4.2-4.3).  It passes for |x| < 2^-5 and fails almost everywhere."""
    n = 32
    table = tuple(int(round(v)) for v in
                  (torch.nn.functional.gelu(torch.tensor(
                      [(i - 256 if i >= 128 else i) / 4096 for i in range(256)],
                      dtype=torch.float64)) * 4096).tolist())
    shortcut = ir.Descriptor("shortcut", n, n, -(1 << 19), 1 << 19, ir.Reduce("low", 8), (0,),
                             ((0,),), ir.Window(0, table))
    x = torch.cat([signed_range(-(1 << 15), 1 << 15, n, 7), ir.edges(library.gelu_descriptor(n))])
    want = gelu.reference(x, n=n)
    got, _ = secure(shortcut, x)
    assert torch.equal(got, ir.evaluate(shortcut, x))  # the protocol does what it describes...
    wrong = (got != want).double().mean().item()
    assert wrong > 0.9, wrong  # ...which is not GeLU
    with pytest.raises(ValueError, match="descriptor gives"):
        ir.check(shortcut, lambda v: gelu.reference(v, n=n), x)


# ------------------------------------------------------------------------------------------------
# the builder and the descriptor's checks
# ------------------------------------------------------------------------------------------------
def test_fit_window_builds_and_refuses():
    ref = library.fixed_point_reference(torch.tanh, 32)
    desc = ir.fit_window("t", ref, n_in=32, n_out=32, lo=-(1 << 19), hi=1 << 19, monotone=True)
    assert desc.window.k == 16 and desc.intervals == 2
    with pytest.raises(ValueError, match="more than a window"):
        ir.fit_window("t", ref, n_in=32, n_out=32, lo=-(1 << 19), hi=1 << 19, monotone=True,
                      max_window_bits=12)
    with pytest.raises(ValueError, match="monotone"):
        ir.fit_window("t", ref, n_in=50, n_out=50, lo=-(1 << 37), hi=1 << 37)
    wavy = library.fixed_point_reference(torch.sin, 32)  # not monotone: its tails are not constant
    with pytest.raises(ValueError):
        ir.fit_window("s", wavy, n_in=32, n_out=32, lo=-(1 << 19), hi=1 << 19, monotone=True)


@pytest.mark.parametrize("kwargs,match", [
    ({"starts": (4096,)}, "starts"),
    ({"starts": (0, 0), "polys": ((0,), (1,))}, "starts"),
    ({"polys": ((),)}, "polynomial"),
    ({"reduce": ir.Reduce("wrap", 12)}, "reduce"),
    ({"window": ir.Window(0, (1, 2, 3))}, "2\\^k"),
    ({"lo": 5, "hi": 5}, "domain"),
])
def test_descriptor_refuses_bad_fields(kwargs, match):
    base = dict(name="d", n_in=12, n_out=12, lo=-2048, hi=2048, reduce=ir.Reduce("none", 12),
                starts=(0,), polys=((0,),), window=None)
    with pytest.raises(ValueError, match=match):
        ir.Descriptor(**{**base, **kwargs})


def test_lowering_refuses_what_does_not_fit():
    small = ir.Descriptor("d", 12, 12, -2048, 2048, ir.Reduce("low", 6), (0,), ((0,),),
                          ir.Window(0, (0,) * 64))
    with pytest.raises(ValueError, match="at least 8 bits"):
        lower.layout(small, (4,))
    with pytest.raises(ValueError, match="at least one element"):
        lower.layout(_mixed(), (0,))


# ------------------------------------------------------------------------------------------------
# predicates and Boolean helpers
# ------------------------------------------------------------------------------------------------
def _bits_desc(n=13) -> ir.BitsDescriptor:
    preds = (ir.Predicate("msb"), ir.Predicate("lt", -700), ir.Predicate("lt", (1 << (n - 1)) - 1),
             ir.Predicate("ltlow", 37, 6), ir.Predicate("ltlow", 1000, 11))
    p = [("p", i) for i in range(len(preds))]
    outs = (p[0], p[1], p[2], p[3], p[4], ("not", p[3]), ("const", 0), ("const", 1),
            ("xor", p[0], ("not", p[4])), ("and", p[0], p[3]),
            ("and", ("and", p[1], ("not", p[4])), ("xor", p[3], p[0])),
            ("and", ("not", ("and", p[0], p[3])), ("and", p[3], p[4])))
    return ir.BitsDescriptor("bits", n, -(1 << (n - 1)), 1 << (n - 1), ir.Reduce("none", n),
                             preds, outs)


def test_predicates_on_every_input():
    desc = _bits_desc()
    x = signed_range(desc.lo, desc.hi, desc.n_in)
    y, r_out, run = run_masked(lambda d, r: boolean.keygen(d, desc, r, op="b"),
                               lambda p, xh: boolean.eval(p, desc, xh, op="b"), x, desc.n_in,
                               desc.n_in)
    got = y ^ r_out
    assert torch.equal(got, ir.evaluate_bits(desc, x))
    xs = Ring(desc.n_in).signed(x)
    assert torch.equal(got[:, 0], (xs < 0).long()) and torch.equal(got[:, 6], 0 * xs)
    assert torch.equal(got[:, 4], ((x & 2047) < 1000).long())
    # AND depth 2: three exchanges for the ANDs and the outputs, none for NOT/XOR/constants
    assert run.total(0).exchanges == 3 == len(boolean.Plan(desc).ands) + 1


def test_bits_descriptor_refuses_bad_fields():
    base = dict(name="b", n_in=12, lo=-2048, hi=2048, reduce=ir.Reduce("none", 12),
                predicates=(ir.Predicate("msb"),), outputs=(("p", 0),))
    for bad, match in [({"outputs": (("p", 1),)}, "no predicate"),
                       ({"outputs": (("and", ("p", 0)),)}, "bad expression"),
                       ({"outputs": (("const", 2),)}, "constants"),
                       ({"predicates": (ir.Predicate("ltlow", 0, 4),)}, "ltlow"),
                       ({"predicates": (ir.Predicate("lt", -2048),)}, "lt needs"),
                       ({"predicates": (ir.Predicate("lt", 2048),)}, "lt needs"),
                       ({"predicates": (ir.Predicate("eq"),)}, "kind")]:
        with pytest.raises(ValueError, match=match):
            ir.BitsDescriptor(**{**base, **bad})
