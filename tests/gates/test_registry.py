"""Every registered gate, run the way `suf gate NAME` runs it (its own example: inputs, parameters,
valid cleartext draws), between two parties over a local socket pair:

  * the output equals the gate's reference bit for bit;
  * the bytes each party sent, its exchanges and its key bytes equal the fold of the declared
    layout (suf.mpc.gate.cost), and the exchanges the eval made equal the layout's opens, in order;
  * SIGMA's header tally equals the layout's.
"""
from __future__ import annotations

import pytest
import torch

import suf.compiler  # noqa: F401  (registers SUF mode's gates)
import suf.gates  # noqa: F401  (registers every gate)
from harness import masked, run_gate
from suf.core.ring import low_mask
from suf.mpc import gate as gates
from suf.prg import Stream

NAMES = sorted(gates.REGISTRY)


def _run(name: str, bits: int, count: int, seed: bytes):
    g = gates.get(name)
    ex = g.example(bits, count)
    xs = ex.draw(Stream(seed))
    secret = [i for i, inp in enumerate(ex.inputs) if inp.owner >= 0]
    ctx = {}

    def deal(dealer):
        masks = {i: dealer.mask(ex.inputs[i].shape, ex.inputs[i].bits) for i in secret}
        ctx["r_out"] = g.keygen(dealer, *(masks[i] for i in secret), op=name, **ex.params)
        ctx["masks"] = masks
        ctx["headers"] = dealer.sigma_header_bytes
        return ctx

    def evaluate(party, c):
        party.trace = []
        hats = [masked(x, c["masks"][i], ex.inputs[i].bits) if i in c["masks"] else x
                for i, x in enumerate(xs)]
        out = g.eval(party, *hats, op=name, **ex.params)
        return out, party.trace

    run = run_gate(deal, evaluate, ring_bits=bits)
    return g, ex, xs, ctx, run


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bits,count", [(50, 64), (37, 33)])
def test_gate_equals_reference_and_its_layout(name, bits, count):
    g, ex, xs, ctx, run = _run(name, bits, count, bytes([bits, count]) * 16)
    (y0, trace0), (y1, trace1) = run.outputs
    assert torch.equal(y0, y1)
    want = g.reference(*xs, **ex.params)
    got = (y0 - ctx["r_out"]) & low_mask(ex.out_bits)
    assert torch.equal(got, want & low_mask(ex.out_bits)), name

    shapes = [inp.shape for inp in ex.inputs]
    predicted = gates.cost(name, *shapes, **ex.params)
    measured = run.total(0)
    assert measured.bytes_sent == predicted.sent
    assert measured.exchanges == predicted.exchanges
    assert run.key_bytes == [predicted.key, predicted.key]
    assert ctx["headers"] == predicted.sigma_header
    opens = gates.opens(name, *shapes, **ex.params)
    assert trace0 == opens and trace1 == opens


def test_registry_names_are_the_modules():
    for name, g in gates.REGISTRY.items():
        assert g.name == name
        home = "suf.compiler.library" if name.startswith("suf_") else f"suf.gates.{name}"
        assert g.keygen.__module__ == home
