"""GeLU (sigma_spec §3.7; SIGMA `gpuGelu<T, u8, 8>`, paper Fig. 7).

SIGMA computes GeLU(x) = ReLU(x) - δ(x) with δ = ReLU - GeLU read from an 8-bit table at input
scale 6.  SiLU (silu.py) is the same gadget with a 10-bit table; the shared gadget is the public
`relu_minus_lut_layout / _keygen / _eval / _reference` (clip bits and table as parameters).
"""
from __future__ import annotations

import torch

from suf.core.checks import check_gate_input, check_range, ring_input
from suf.core.config import SCALE as F
from suf.core.ring import Ring, low_mask
from suf.fss import compare
from suf.gates import lut, select, tables, tr_with_slack
from suf.mpc.dealer import sigma_dpf_header
from suf.mpc.gate import (Bits, Call, Example, Gate, Header, Input, Key, Layout, Open, Raw, Words,
                          register)

GATE_MIN_BITS = 32  # the gates' fixed constants (clips, table scales) need this much room
SIGMA_HEADER = 4  # SIGMA's GeLU key starts with an int
CLIP_BITS = 8


# ================================================================================================
# reference (cleartext)
# ================================================================================================
def input_bound(n: int) -> int:
    """GeLU/SiLU inputs must lie in [-2^(n-f-1), 2^(n-f-1)): the range of a TrFloor(n, f) output,
    which SIGMA hard-codes (`bin = n - f`)."""
    return 1 << (n - F - 1)


def relu_minus_lut_reference(x: torch.Tensor, *, n: int, clip_bits: int, table: torch.Tensor,
                             op: str, layer: str | None = None,
                             violations: list | None = None) -> torch.Tensor:
    """ReLU(x) - table[|clip(floor(x/64))|], step by step as `gpuGelu<T, TClip, clip_bits>`.

    x: ring values of Z_{2^n} at scale 12; returns ring values at scale 12.
      1. y = TrWithSlack(x: n -> b, 6) = floor(x/64) mod 2^b, b = n - 2f + 7 (33 at n = 50).
      2. d = DReLU(y) and the interval test i = 1{-c_max <= y < c_max} on b bits, c_max = 2^clip_bits - 1.
      3. c = |y| if i else c_max (selectlin; a clip_bits-bit value).
      4. δ = table[c] (scale 12).
      5. out = select(d, x) - δ mod 2^n.
    """
    ring = ring_input(x, n, min_bits=GATE_MIN_BITS)
    bound = input_bound(n)
    check_range(ring.signed(x), -bound, bound, op, layer=layer, violations=violations)
    b = _b(n)
    y = Ring(b).signed(tr_with_slack.reference(x, n=n, s=F - 6, bits_out=b))
    c_max = (1 << clip_bits) - 1
    drelu = y >= 0
    inside = (y >= -c_max) & (y < c_max)
    c = torch.where(inside, torch.where(drelu, y, -y), torch.full_like(y, c_max))
    delta = table.to(x.device)[c]
    return ring.wrap(torch.where(drelu, x, torch.zeros_like(x)) - delta)


# ================================================================================================
# secure protocol (sigma_spec §3.7, `gpuKeyGenGelu` / `gpuGelu<T, TClip, clipBw>`)
# ================================================================================================
# Masks: x^ = x + r_x (n bits), y^ = floor(x/64) + r_y (b bits), c^ = |clip(y)| + r_c (clip bits).
#   1. y = TrWithSlack(x: n -> b, 6).
#   2. One comparison key for α = (-r_y) mod 2^(b-1), evaluated at three points, gives the masked
#      bits d^ = DReLU(y) ^ r_d and i^ = 1{-c_max <= y < c_max} ^ r_i (drelu.py explains DReLU:
#      DReLU(y + p) needs the carry of (y^ + p) + (-r_y) out of the low b-1 bits, i.e. the
#      comparison at (-y^ - p - 1) mod 2^(b-1); in i = DReLU(y + c_max) ^ DReLU(y - c_max) the two
#      MSB(-r_y) terms cancel).  Both bits are opened in one exchange.
#   3. selectlin: c = α_j·y + β_j with j = 2i + d, (α, β) = (0, c_max), (0, c_max), (-1, 0), (1, 0);
#      the dealer permutes the 4-entry tables by the mask 2·r_i + r_d, so the opened index
#      2·i^ + d^ picks entry j without revealing it.  Opened on clip bits.
#   4. δ = LUT(c) left as additive shares (lut.eval, opened=False).
#   5. select(d^, x^) on n bits as shares, minus δ, opened: ReLU(x) - δ.
# 7 exchanges: 1 + b, 2 bits, clip bits, 1 + n (LUT), n.

_MUX_ALPHA = (0, 0, -1, 1)  # the selectlin slopes for j = 2i + d


def _b(n: int) -> int:
    """The width of y = floor(x/64): n - 2f + 7 (33 at n = 50)."""
    return n - 2 * F + 7


def _clip_type_bytes(clip_bits: int) -> int:
    """SIGMA's TClip: u8 for GeLU's 8-bit clip, u16 for SiLU's 10 bits."""
    return 1 if clip_bits <= 8 else 2


def _mux_beta(clip_bits: int) -> tuple:
    c_max = (1 << clip_bits) - 1
    return (c_max, c_max, 0, 0)


def _bit_run(count: int) -> int:
    """SIGMA sends the d bits and the i bits as two packed runs of 32-bit words."""
    return 32 * -(-count // 32)


def _gate_input(x: torch.Tensor, n: int, op: str, what: str) -> None:
    check_gate_input(x, n, what, min_bits=GATE_MIN_BITS)
    if x.numel() == 0:
        raise ValueError(f"{op}: needs at least one element")


def relu_minus_lut_layout(shape, *, n: int, clip_bits: int) -> Layout:
    """The steps of ReLU(x) - T[|clip(floor(x/64))|] on inputs of `shape` (Z_{2^n})."""
    N = int(torch.Size(shape).numel())
    b = _b(n)
    tc = _clip_type_bytes(clip_bits)
    return Layout([
        Header(SIGMA_HEADER),
        Call("trws", "tr_with_slack", ((N,),), {"n": n, "s": F - 6, "bits_out": b}),
        Key("cmp", (Raw("cmp", compare.payload_size(b - 1, N)), Bits("cd", N), Bits("ri", N)),
            sigma_dpf_header(b - 1)),
        Open("di", 2 * _bit_run(N), 1),
        Key("mux", (Words("c0", 4 * N, clip_bits, tc), Words("alpha", 4 * N, clip_bits, tc))),
        Open("c", N, clip_bits, tc),
        Call("lut", "lut", ((N,),), {"k": clip_bits, "bits": n, "opened": False}),
        Call("select", "select", ((N,), (N,)), {"bits": n, "opened": False}),
        Open("out", N, n),
    ])


def relu_minus_lut_keygen(dealer, r_in: torch.Tensor, *, n: int, clip_bits: int,
                          op: str) -> torch.Tensor:
    """Both parties' keys of ReLU(x) - T[|clip(floor(x/64))|] for inputs masked with r_in
    (ring values of Z_{2^n}); returns the output mask (Z_{2^n}, r_in's shape)."""
    _gate_input(r_in, n, op, "r_in")
    lay = relu_minus_lut_layout(r_in.shape, n=n, clip_bits=clip_bits)
    b = _b(n)
    c_max = (1 << clip_bits) - 1
    r_x = r_in.flatten()
    N = r_x.numel()
    dealer.sigma_header_bytes += SIGMA_HEADER
    r_y = tr_with_slack.keygen(dealer, r_x, n=n, s=F - 6, bits_out=b, op=f"{op}.trws")

    # comparison key and the two masked-bit corrections
    neg = (-r_y) & low_mask(b)
    k0, k1 = compare.keygen(neg & low_mask(b - 1), b - 1, dealer.stream)
    r_d, r_i = dealer.mask(N, 1), dealer.mask(N, 1)
    dealer.deal(op, (N,), lay.key("cmp"),
                {"cmp": (compare.to_payload(k0), compare.to_payload(k1)),
                 "cd": ((neg >> (b - 1)) & 1) ^ 1 ^ r_d, "ri": r_i})

    # selectlin: table position p holds the entry of j = p ^ (2·r_i + r_d)
    r_c = dealer.mask(N, clip_bits)
    dev = r_x.device
    j = torch.arange(4, device=dev) ^ (2 * r_i + r_d).unsqueeze(-1)  # (N, 4)
    alpha = torch.tensor(_MUX_ALPHA, device=dev)[j]
    beta = torch.tensor(_mux_beta(clip_bits), device=dev)[j]
    c0 = (beta - alpha * r_y.unsqueeze(-1) + r_c.unsqueeze(-1)) & c_max
    dealer.deal(op, (N,), lay.key("mux"), {"c0": c0, "alpha": alpha & c_max})

    r_lut = lut.keygen(dealer, r_c, k=clip_bits, bits=n, opened=False, op=f"{op}.lut")
    r_sel = select.keygen(dealer, r_d, r_x, bits=n, opened=False, op=f"{op}.select")
    return ((r_sel - r_lut) & low_mask(n)).view(r_in.shape)


def _msb(v: torch.Tensor, bits: int) -> torch.Tensor:
    return (v >> (bits - 1)) & 1


def relu_minus_lut_eval(party, x_hat: torch.Tensor, *, n: int, clip_bits: int,
                        table: torch.Tensor, op: str) -> torch.Tensor:
    """The opened masked ReLU(x) - table[|clip(floor(x/64))|] (Z_{2^n}, x_hat's shape); the
    transfers are counted under the scope `op`."""
    _gate_input(x_hat, n, op, "x_hat")
    lay = relu_minus_lut_layout(x_hat.shape, n=n, clip_bits=clip_bits)
    with party.scope(op):
        return _eval(party, lay, x_hat.flatten(), n, clip_bits, table, op).view(x_hat.shape)


def _eval(party, lay: Layout, x: torch.Tensor, n: int, clip_bits: int, table: torch.Tensor,
          op: str) -> torch.Tensor:
    b = _b(n)
    c_max = (1 << clip_bits) - 1
    N = x.numel()
    y = tr_with_slack.eval(party, x, n=n, s=F - 6, bits_out=b, op=f"{op}.trws")

    key = party.read(op, lay.key("cmp"))
    k = compare.from_payload(key["cmp"], b - 1, N, party.id, party.device)
    points = torch.stack([-y - 1, c_max - y - 1, -c_max - y - 1]) & low_mask(b - 1)
    lt = compare.eval_lt(k, points)
    d = lt[0] ^ key["cd"]
    i = lt[1] ^ lt[2] ^ key["ri"]
    if party.id == 1:
        d = d ^ _msb(y, b)
        i = i ^ _msb((y + c_max) & low_mask(b), b) ^ _msb((y - c_max) & low_mask(b), b)
    # the d bits and the i bits as two packed runs of 32-bit words, in one exchange
    run = _bit_run(N)
    both = torch.zeros(2 * run, dtype=x.dtype, device=x.device)
    both[:N], both[run:run + N] = d, i
    both = party.open(both, lay.open("di"))
    d_hat, i_hat = both[:N], both[run:run + N]

    key = party.read(op, lay.key("mux"))
    c0, c1 = key["c0"].view(N, 4), key["alpha"].view(N, 4)
    j = (2 * i_hat + d_hat).unsqueeze(-1)
    c = c1.gather(1, j).squeeze(1) * y + c0.gather(1, j).squeeze(1)
    c_hat = party.open(c & c_max, lay.open("c"))

    delta = lut.eval(party, c_hat, table, k=clip_bits, bits=n, opened=False, op=f"{op}.lut")
    sel = select.eval(party, d_hat, x, bits=n, opened=False, op=f"{op}.select")
    return party.open((sel - delta) & low_mask(n), lay.open("out"))


def draw_inputs(gen, count: int, n: int, clip_bits: int) -> torch.Tensor:
    """`count` valid inputs (ring values, |x| < 2^(n-13) signed): the edges first (0, ±1, the
    truncation steps, the clip c_max·64, both ends of the domain), then half of the rest over the
    whole domain and half over the table's range (|x| < 2^17)."""
    c = ((1 << clip_bits) - 1) * 64
    bound = input_bound(n)
    edges = torch.tensor([0, 1, -1, 63, 64, -64, -65, c - 1, c, -c, -c - 1, bound - 1, -bound,
                          bound - 2, -bound + 1])[:count]
    rest = count - edges.numel()
    wide = gen.ring(rest // 2, 64) >> (64 - (n - F))      # |x| < 2^(n-13), signed
    near = gen.ring(rest - rest // 2, 64) >> (64 - 18)    # |x| < 2^17
    return torch.cat([edges, wide, near]) & low_mask(n)


def relu_minus_lut_example(bits: int, count: int, clip_bits: int) -> Example:
    return Example((Input("x", 1, (count,), bits),), {"n": bits}, bits,
                   lambda g: [draw_inputs(g, count, bits, clip_bits)])


# ================================================================================================
# the gate
# ================================================================================================
def table(device=None) -> torch.Tensor:
    """GeLU's public table: ReLU - GeLU at input scale 6, 8 bits, output scale F."""
    return tables.relu_sub_gelu(CLIP_BITS, 6, F, device=device)


def layout(shape, *, n: int) -> Layout:
    return relu_minus_lut_layout(shape, n=n, clip_bits=CLIP_BITS)


def keygen(dealer, r_in: torch.Tensor, *, n: int, op: str = "gelu") -> torch.Tensor:
    """Keys of SIGMA's GeLU for inputs masked with r_in (Z_{2^n}); returns the output mask."""
    return relu_minus_lut_keygen(dealer, r_in, n=n, clip_bits=CLIP_BITS, op=op)


def eval(party, x_hat: torch.Tensor, *, n: int, op: str = "gelu") -> torch.Tensor:
    """The opened masked GeLU(x) + r_out; equals reference(x, n=n) on its valid range."""
    return relu_minus_lut_eval(party, x_hat, n=n, clip_bits=CLIP_BITS,
                               table=table(party.device), op=op)


def reference(x: torch.Tensor, *, n: int, layer: str | None = None,
              violations: list | None = None) -> torch.Tensor:
    """SIGMA's fixed-point GeLU (erf form) of ring values x at scale 12 in Z_{2^n}.

    Bit-exact with SIGMA's ClearText `gelu` and the GPU protocol for x in [-2^(n-13), 2^(n-13))
    (checked: RangeViolation).  Clip at 255 (|x| < 4), 8-bit table `relu_sub_gelu`.
    """
    return relu_minus_lut_reference(x, n=n, clip_bits=CLIP_BITS, table=table(), op="gelu",
                                    layer=layer, violations=violations)


def example(bits: int, count: int) -> Example:
    return relu_minus_lut_example(bits, count, CLIP_BITS)


GATE = register(Gate("gelu", layout, keygen, eval, reference, example))
