"""Softmax's inverse (sigma_spec §3.8, SIGMA `gpuInverse`): 1/S at scale 12 for a row sum S of
nExp values (scale 12, Z_{2^n}) over rows of `length` entries.

With the table width bits = ceil(log2 L) + 6 and p = bits + f - 6:
q = TrWithSlack(S mod 2^p: p -> bits, 6) (an exact truncate-reduce, in SIGMA's u16; u32 for
tables of more than 16 bits, L > 1024), then the `bits`-bit LUT `inverse`: 2^18/q, entry 0 =
2^18/2^bits for the wrap of S = 2^p (every entry of a row equal, L a power of two).  5 exchanges.
"""
from __future__ import annotations

import torch

from suf.core.checks import check_bits, check_gate_input, ring_input
from suf.core.config import SCALE as F
from suf.core.ring import low_mask
from suf.gates import lut, tables, tr_with_slack
from suf.gates.gelu import GATE_MIN_BITS
from suf.mpc.gate import Call, Example, Gate, Input, Layout, register


def _params(length: int) -> tuple[int, int, int]:
    """(table bits, p, index type bytes) for rows of `length` entries."""
    bits = tables.inverse_bits(length)
    return bits, bits + F - 6, 2 if bits <= 16 else 4


def layout(shape, *, n: int, length: int) -> Layout:
    check_bits(n, GATE_MIN_BITS)
    bits, p, tb = _params(length)
    return Layout([Call("tr", "tr_with_slack", (shape,),
                        {"n": p, "s": 6, "bits_out": bits, "type_bytes": tb}),
                   Call("lut", "lut", (shape, (1 << bits,)), {"k": bits, "bits": n})])


def keygen(dealer, r_s: torch.Tensor, *, n: int, length: int,
           op: str = "inverse") -> torch.Tensor:
    """Keys of 1/S for row sums masked with r_s (Z_{2^n}); returns the output mask in Z_{2^n}."""
    ring_input(r_s, n, "r_s", min_bits=GATE_MIN_BITS)
    bits, p, tb = _params(length)
    r_q = tr_with_slack.keygen(dealer, r_s & low_mask(p), n=p, s=6, bits_out=bits, type_bytes=tb,
                               op=f"{op}.tr")
    return lut.keygen(dealer, r_q, k=bits, bits=n, op=f"{op}.lut")


def eval(party, s_hat: torch.Tensor, *, n: int, length: int,
         op: str = "inverse") -> torch.Tensor:
    """The masked 1/S at scale 12 in Z_{2^n}."""
    check_gate_input(s_hat, n, "s_hat", min_bits=GATE_MIN_BITS)
    bits, p, tb = _params(length)
    q = tr_with_slack.eval(party, s_hat & low_mask(p), n=p, s=6, bits_out=bits, type_bytes=tb,
                           op=f"{op}.tr")
    return lut.eval(party, q, tables.inverse(bits, 6, F, device=q.device), k=bits, bits=n,
                    op=f"{op}.lut")


def reference(s: torch.Tensor, *, n: int, length: int, layer=None,
              violations=None) -> torch.Tensor:
    """1/S: q = ((S mod 2^p) >> 6) mod 2^(p-6), then the table (see the module's doc)."""
    ring_input(s, n, "S", min_bits=GATE_MIN_BITS)
    bits, p, _ = _params(length)
    q = tr_with_slack.reference(s & low_mask(p), n=p, s=6, bits_out=bits)
    return tables.inverse(bits, 6, F, device=s.device)[q]


def example(bits: int, count: int) -> Example:
    """Row sums of nExp values over rows of L = 128: S in [2^f, L·2^f] (the row's max gives
    e = 1.0), with the wrap S = L·2^f and its neighbours first."""
    length = 128
    top = length << F

    def draw(g):
        edges = torch.tensor([top, top - 1, 1 << F, (1 << F) + 63, (1 << F) + 64, 100 << F])
        edges = edges[:count]
        rnd = (1 << F) + g.ring(count - edges.numel(), 30) % (top - (1 << F) + 1)
        return [torch.cat([edges, rnd])]

    return Example((Input("s", 1, (count,), bits),), {"n": bits, "length": length}, bits, draw)


GATE = register(Gate("inverse", layout, keygen, eval, reference, example))
