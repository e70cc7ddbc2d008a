"""Single gates as runnable units, for `suf gate` and the per-module process tests.

A `GateSpec` says which inputs a gate takes (their shapes, bitwidths and owner: the client P1 holds
activations, the model owner P0 holds weights), how to draw test inputs inside the gate's valid
domain, and how to deal, evaluate and compute the reference.  `suf.runtime.gate_runner` runs a spec with a
dealer writing key files and the two parties as separate processes over TCP.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from suf.prg import Stream
from suf.gates import lut, matmul, relu, truncate
from suf.mpc.core import Dealer, Party
from suf.core.ring import low_mask


@dataclass
class Input:
    name: str
    owner: int   # the party that holds the cleartext value and learns its mask
    shape: tuple
    bits: int


@dataclass
class GateSpec:
    name: str
    ring_bits: int
    out_bits: int
    inputs: list[Input]
    draw: Callable[[Stream], list]                     # cleartext test inputs
    keygen: Callable[[Dealer, list], torch.Tensor]     # masks -> output mask
    eval: Callable[[Party, list], torch.Tensor]        # masked inputs -> masked output
    reference: Callable[[list], torch.Tensor]          # cleartext inputs -> output
    params: dict = field(default_factory=dict)


def _signed_below(gen: Stream, count: int, bits: int, limit_bits: int) -> torch.Tensor:
    """Values |x| < 2^limit_bits in Z_{2^bits}, with 0, ±1 and both extremes first."""
    lim = 1 << limit_bits
    edges = torch.tensor([0, 1, -1, lim - 1, -lim])[:count]
    rnd = gen.ring(count - edges.numel(), 64) >> (64 - limit_bits - 1)
    return torch.cat([edges, rnd]) & low_mask(bits)


def make_spec(gate: str, bits: int = 50, count: int = 1024, shift: int = 12) -> GateSpec:
    """The spec of one gate at ring size `bits` over `count` elements."""
    one = [Input("x", 1, (count,), bits)]
    if gate == "trfloor":
        return GateSpec(gate, bits, bits, one,
                        lambda g: [_signed_below(g, count, bits, bits - 1)],
                        lambda d, r: truncate.keygen_trfloor(d, r[0], bits, shift),
                        lambda p, x: truncate.eval_trfloor(p, x[0], bits, shift),
                        lambda x: truncate.reference_trfloor(x[0], bits, shift), {"shift": shift})
    if gate == "trws":
        return GateSpec(gate, bits, bits, one,
                        lambda g: [_signed_below(g, count, bits, bits - 3)],
                        lambda d, r: truncate.keygen_tr_with_slack(d, r[0], bits, shift),
                        lambda p, x: truncate.eval_tr_with_slack(p, x[0], bits, shift),
                        lambda x: truncate.reference_tr_with_slack(x[0], bits, shift),
                        {"shift": shift})
    if gate == "tr":
        return GateSpec(gate, bits, bits - shift, one, lambda g: [g.ring(count, bits)],
                        lambda d, r: truncate.keygen_tr(d, r[0], bits, shift),
                        lambda p, x: truncate.eval_tr(p, x[0], bits, shift),
                        lambda x: truncate.reference_tr(x[0], bits, shift), {"shift": shift})
    if gate == "relu":
        return GateSpec(gate, bits, bits, one,
                        lambda g: [_signed_below(g, count, bits, bits - 3)],
                        lambda d, r: relu.keygen(d, r[0], bits, bits),
                        lambda p, x: relu.eval(p, x[0], bits, bits),
                        lambda x: relu.reference(x[0], bits, bits))
    if gate == "lut":
        k = shift  # the table's index width
        table = Stream(b"suf-demo-table".ljust(32, b"\0")).ring(1 << k, bits)
        return GateSpec(gate, k, bits, [Input("x", 1, (count,), k)],
                        lambda g: [g.ring(count, k)],
                        lambda d, r: lut.keygen(d, r[0], k, bits),
                        lambda p, x: lut.eval(p, x[0], table.to(p.device), k, bits),
                        lambda x: lut.reference(x[0], table, k), {"k": k})
    if gate == "matmul":
        rows, inner, cols = 16, count // 16 or 1, 8
        ins = [Input("x", 1, (rows, inner), bits), Input("w", 0, (inner, cols), bits)]
        small = bits - shift - 4  # keep products of the fixed-point values inside the ring

        def draw(g):
            x = (g.ring((rows, inner), 64) >> (64 - small // 2)) & low_mask(bits)
            w = (g.ring((inner, cols), 64) >> (64 - small // 2)) & low_mask(bits)
            return [x, w]

        def keygen(d, r):
            r_prod = matmul.keygen(d, r[0], r[1], bits)
            return truncate.keygen_trfloor(d, r_prod, bits, shift)

        def evaluate(p, x):
            prod = p.open(matmul.share(p, x[0], x[1], bits), bits)
            return truncate.eval_trfloor(p, prod, bits, shift)

        return GateSpec(gate, bits, bits, ins, draw, keygen, evaluate,
                        lambda x: truncate.reference_trfloor(matmul.reference(x[0], x[1], bits),
                                                             bits, shift), {"shift": shift})
    raise ValueError(f"unknown gate {gate!r}; choose one of {', '.join(GATES)}")


GATES = ("trfloor", "trws", "tr", "relu", "lut", "matmul")
