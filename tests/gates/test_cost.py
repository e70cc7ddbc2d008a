"""A gate's declared cost (suf.mpc.gate.cost, the fold of its layout) equals what a run measures,
beyond the one example per gate of test_registry: several shapes, widths and modes per gate
(causal softmax, rows of every kind, LayerNorm widths that are and are not powers of two).
Costs do not depend on the values, so the inputs are uniform ring elements."""
import pytest

import suf.gates  # noqa: F401  (registers every gate)
from harness import masked, run_gate
from suf.mpc import gate as gates
from suf.prg import Stream

CASES = [
    ("trfloor", [(7,)], {"n": 37, "s": 12}),
    ("tr_with_slack", [(9,)], {"n": 16, "s": 8, "bits_out": 8, "type_bytes": 1}),
    ("relu", [(40,)], {"m": 36, "bits_out": 37}),
    ("gelu", [(2, 33)], {"n": 50}),
    ("silu", [(65,)], {"n": 37}),
    ("softmax", [(2, 3, 5)], {"n": 37}),
    ("softmax", [(1, 2, 6, 6)], {"n": 50, "causal": True}),
    ("softmax", [(1, 8, 8)], {"n": 50, "causal": True}),
    ("layernorm", [(3, 6), (6,), (6,)], {"n": 37}),
    ("layernorm", [(2, 8), (8,), (8,)], {"n": 50}),
    ("matmul", [(2, 3, 4), (4, 5)], {"bits": 37, "shift": 12}),
    ("causal_matmul", [(2, 6, 3), (2, 3, 6)], {"bits": 37, "shift": 12}),
    ("linear", [(5, 4), (4, 3), (3,)], {"bits": 50, "shift": 12}),
]


@pytest.mark.parametrize("name,shapes,params", CASES)
def test_declared_cost_equals_measured(name, shapes, params):
    g = gates.get(name)
    bits = params.get("n", params.get("bits", params.get("bits_out")))
    gen = Stream(b"\x44" * 32)
    xs = [gen.ring(s, bits) for s in shapes]
    ctx = {}

    def deal(d):
        ctx["r"] = [d.mask(s, bits) for s in shapes]
        g.keygen(d, *ctx["r"], op=name, **params)
        ctx["hdr"] = d.sigma_header_bytes
        return ctx

    def evaluate(p, c):
        return g.eval(p, *(masked(x, r, bits) for x, r in zip(xs, c["r"])), op=name, **params)

    run = run_gate(deal, evaluate, ring_bits=bits)
    predicted = gates.cost(name, *shapes, **params)
    for party in (0, 1):
        tot = run.total(party)
        assert (tot.bytes_sent, tot.bytes_recv, tot.exchanges) == \
            (predicted.sent, predicted.sent, predicted.exchanges)
        assert run.key_bytes[party] == predicted.key
    assert ctx["hdr"] == predicted.sigma_header
    out = g.layout(*shapes, **params).out or shapes[0]
    assert tuple(run.outputs[0].shape) == tuple(out)


def test_cost_by_gate_is_inclusive():
    """by_gate holds every gate called, sub-gates included; the top gate holds the total."""
    c = gates.cost("layernorm", (4, 8), (8,), (8,), n=50)
    assert c.by_gate["layernorm"] == [c.sent, c.exchanges, c.key]
    for sub in ("trfloor", "tr", "sign_extend", "rsqrt", "mul", "tr_with_slack", "select"):
        assert sub in c.by_gate
    assert sum(v[1] for k, v in c.by_gate.items() if k in ("trfloor", "rsqrt", "mul",
                                                            "tr_with_slack")) + 1 == c.exchanges
