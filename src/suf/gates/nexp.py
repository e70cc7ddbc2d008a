"""nExp (sigma_spec §3.8, SIGMA `gpuNExp`): e^(-d) at scale 12 for d = max - x >= 0, given in
softmax's reduced ring Z_{2^(n-f+2)} (scale 12); the output is in Z_{2^n}.

  1. c = min(d, 2^16 - 1): DReLU_{n-f+2}(d - (2^16 - 1)) (suf.gates.drelu), then a select on
     u16 words of the complement bit (keyed on r_b ^ 1) times d - CLIP, plus CLIP;
  2. e_lo = nexp_lsb[c mod 2^8] (a LUT), c1 = TrWithSlack(c: 16 -> 8, 8) (an exact
     truncate-reduce), e_hi = nexp_msb[c1] (a LUT);
  3. e = TrWithSlack(e_hi·e_lo, 12) in Z_{2^n}, the product (suf.gates.mul, opened) < 2^24 being
     inside the gap.
13 exchanges.
"""
from __future__ import annotations

import torch

from suf.core.checks import check_bits, check_gate_input, ring_input
from suf.core.config import SCALE as F
from suf.core.ring import Ring, low_mask
from suf.gates import drelu, lut, mul, relu, select, tables, tr_with_slack
from suf.gates.gelu import GATE_MIN_BITS
from suf.gates.softmax_max import reduced_bits
from suf.mpc.gate import Call, Example, Gate, Header, Input, Layout, register

CLIP = (1 << 16) - 1  # nExp clips max - x at 16.0 (e^-16 is below one ULP at scale 12)


def layout(shape, *, n: int) -> Layout:
    check_bits(n, GATE_MIN_BITS)
    table = (1 << 8,)
    return Layout([Call("clip.drelu", "drelu", (shape,), {"m": reduced_bits(n)}),
                   Header(relu.SIGMA_HEADER),  # SIGMA keys the clip as a ReLU
                   Call("clip.select", "select", (shape, shape), {"bits": 16, "type_bytes": 2}),
                   Call("lsb", "lut", (shape, table), {"k": 8, "bits": n}),
                   Call("tr", "tr_with_slack", (shape,),
                        {"n": 16, "s": 8, "bits_out": 8, "type_bytes": 1}),
                   Call("msb", "lut", (shape, table), {"k": 8, "bits": n}),
                   Call("mul", "mul", (shape, shape), {"bits": n}),
                   Call("trws", "tr_with_slack", (shape,), {"n": n, "s": F})])


def keygen(dealer, r_d: torch.Tensor, *, n: int, op: str = "nexp") -> torch.Tensor:
    """Keys of nExp for d masked with r_d in Z_{2^(n-f+2)}; returns the output mask in Z_{2^n}."""
    check_bits(n, GATE_MIN_BITS)
    red = reduced_bits(n)
    ring_input(r_d, red, "r_d")
    # clip: c = select(1{d - CLIP < 0}, d - CLIP) + CLIP in u16.  The DReLU gives 1{d - CLIP >= 0}
    # masked with r_b; keying the select on r_b ^ 1 makes it read the complement.
    r_b = drelu.keygen(dealer, r_d, m=red, op=f"{op}.clip.drelu")
    dealer.sigma_header_bytes += relu.SIGMA_HEADER
    r_c = select.keygen(dealer, r_b ^ 1, r_d & 0xFFFF, bits=16, type_bytes=2,
                        op=f"{op}.clip.select")
    r_lo = lut.keygen(dealer, r_c & 0xFF, k=8, bits=n, op=f"{op}.lsb")
    r_c1 = tr_with_slack.keygen(dealer, r_c, n=16, s=8, bits_out=8, type_bytes=1, op=f"{op}.tr")
    r_hi = lut.keygen(dealer, r_c1, k=8, bits=n, op=f"{op}.msb")
    r_p = mul.keygen(dealer, r_hi, r_lo, bits=n, op=f"{op}.mul")
    return tr_with_slack.keygen(dealer, r_p, n=n, s=F, op=f"{op}.trws")


def eval(party, d_hat: torch.Tensor, *, n: int, op: str = "nexp") -> torch.Tensor:
    """The masked e^(-d) at scale 12 in Z_{2^n}."""
    check_bits(n, GATE_MIN_BITS)
    red = reduced_bits(n)
    check_gate_input(d_hat, red, "d_hat")
    y = d_hat - CLIP
    b_hat = drelu.eval(party, y & low_mask(red), m=red, op=f"{op}.clip.drelu")
    c = select.eval(party, b_hat, y & 0xFFFF, bits=16, type_bytes=2, op=f"{op}.clip.select")
    c = (c + CLIP) & 0xFFFF
    lo = lut.eval(party, c & 0xFF, tables.nexp_lsb(device=c.device), k=8, bits=n,
                  op=f"{op}.lsb")
    c1 = tr_with_slack.eval(party, c, n=16, s=8, bits_out=8, type_bytes=1, op=f"{op}.tr")
    hi = lut.eval(party, c1, tables.nexp_msb(device=c.device), k=8, bits=n, op=f"{op}.msb")
    p = mul.eval(party, hi, lo, bits=n, op=f"{op}.mul")
    return tr_with_slack.eval(party, p, n=n, s=F, op=f"{op}.trws")


def reference(d: torch.Tensor, *, n: int, layer=None, violations=None) -> torch.Tensor:
    """e^(-d) at scale 12, as SIGMA's `gpuNExp`; d = max - x in Z_{2^(n-f+2)} (scale 12, d >= 0).

      1. c = min(d, 2^16 - 1): select on DReLU(d - (2^16-1)) over n-f+2 bits; a 16-bit value.
      2. e_lo = nexp_lsb[c mod 2^8], e_hi = nexp_msb[c >> 8] (TR 16 -> 8, exact).
      3. e = TrWithSlack(e_hi·e_lo, 12) in Z_{2^n} (the product is < 2^24: inside the gap).
    """
    check_bits(n, GATE_MIN_BITS)
    r = ring_input(d, reduced_bits(n), "d")
    below = r.signed(r.wrap(d - CLIP)) < 0
    c = torch.where(below, d, torch.full_like(d, CLIP)) & 0xFFFF  # the select outputs a u16
    e_lo = tables.nexp_lsb(device=d.device)[c & 0xFF]
    e_hi = tables.nexp_msb(device=d.device)[c >> 8]
    return tr_with_slack.reference(Ring(n).wrap(e_hi * e_lo), n=n, s=F, op="nexp product",
                                   layer=layer, violations=violations)


def example(bits: int, count: int) -> Example:
    """d = max - x: the clip's and the tables' edges, then d < 2^(n-f) (a softmax row's spread),
    every other one below 2^17."""
    def draw(g):
        edges = torch.tensor([0, 1, 255, 256, 4095, 4096, 65534, 65535, 65536, 65537,
                              (1 << (bits - F)) - 1])[:count]
        k = count - edges.numel()
        wide, small = g.ring(k, bits - F), g.ring(k, 17)
        return [torch.cat([edges, torch.where(torch.arange(k) % 2 == 0, wide, small)])]

    return Example((Input("d", 1, (count,), reduced_bits(bits)),), {"n": bits}, bits, draw)


GATE = register(Gate("nexp", layout, keygen, eval, reference, example))
