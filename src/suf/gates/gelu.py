"""GeLU (sigma_spec §3.7; SIGMA `gpuGelu<T, u8, 8>`, paper Fig. 7).

SIGMA computes GeLU(x) = ReLU(x) - δ(x) with δ = ReLU - GeLU read from an 8-bit table at input
scale 6.  SiLU (silu.py) is the same gadget with a 10-bit table; the shared pipeline is
`reference_relu_minus_lut`.
"""
from __future__ import annotations

import torch

from suf.core.config import SCALE as F
from suf.fss import compare
from suf.gates import lut, select, tables
from suf.mpc.core import sigma_dpf_header
from suf.core.checks import check_range, ring_input
from suf.gates.truncate import (eval_tr_with_slack, keygen_tr_with_slack,
                                    reference_tr_with_slack)
from suf.core.ring import Ring, low_mask

GATE_MIN_BITS = 32  # the gates' fixed constants (clips, table scales) need this much room


# ================================================================================================
# reference (cleartext)
# ================================================================================================
def input_bound(n: int) -> int:
    """GeLU/SiLU inputs must lie in [-2^(n-f-1), 2^(n-f-1)): the range of a TrFloor(n, f) output,
    which SIGMA hard-codes (`bin = n - f`)."""
    return 1 << (n - F - 1)


def reference_relu_minus_lut(x: torch.Tensor, n: int, clip_bits: int, table: torch.Tensor,
                             op: str, *, layer: str | None = None,
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
    b = n - 2 * F + 7
    y = Ring(b).signed(reference_tr_with_slack(x, n, F - 6, bits_out=b))
    c_max = (1 << clip_bits) - 1
    drelu = y >= 0
    inside = (y >= -c_max) & (y < c_max)
    c = torch.where(inside, torch.where(drelu, y, -y), torch.full_like(y, c_max))
    delta = table.to(x.device)[c]
    return ring.wrap(torch.where(drelu, x, torch.zeros_like(x)) - delta)


def reference_gelu(x: torch.Tensor, n: int, *, layer: str | None = None,
                   violations: list | None = None) -> torch.Tensor:
    """SIGMA's fixed-point GeLU (erf form) of ring values x at scale 12 in Z_{2^n}.

    Bit-exact with SIGMA's ClearText `gelu` and the GPU protocol for x in [-2^(n-13), 2^(n-13))
    (checked: RangeViolation).  Clip at 255 (|x| < 4), 8-bit table `relu_sub_gelu`.
    """
    return reference_relu_minus_lut(x, n, 8, tables.relu_sub_gelu(8, 6, F), "gelu",
                                    layer=layer, violations=violations)


# ================================================================================================
# secure protocol (sigma_spec §3.7, `gpuKeyGenGelu` / `gpuGelu<T, TClip, clipBw>`)
# ================================================================================================
# Masks: x^ = x + r_x (n bits), y^ = floor(x/64) + r_y (b bits), c^ = |clip(y)| + r_c (clip bits).
#   1. y = TrWithSlack(x: n -> b, 6).
#   2. One comparison key for α = (-r_y) mod 2^(b-1), evaluated at three points, gives the masked
#      bits d^ = DReLU(y) ^ r_d and i^ = 1{-c_max <= y < c_max} ^ r_i (relu.py explains DReLU:
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


def _clip_type_bytes(clip_bits: int) -> int:
    """SIGMA's TClip: u8 for GeLU's 8-bit clip, u16 for SiLU's 10 bits."""
    return 1 if clip_bits <= 8 else 2


def _mux_beta(clip_bits: int) -> tuple:
    c_max = (1 << clip_bits) - 1
    return (c_max, c_max, 0, 0)


def _gate_input(x: torch.Tensor, n: int, op: str, what: str) -> None:
    ring_input(x, n, what, min_bits=GATE_MIN_BITS)
    if x.numel() == 0:
        raise ValueError(f"{op}: needs at least one element")


def keygen_relu_minus_lut(dealer, r_in: torch.Tensor, n: int, clip_bits: int,
                          op: str) -> torch.Tensor:
    """Both parties' keys of ReLU(x) - T[|clip(floor(x/64))|] for inputs masked with r_in
    (ring values of Z_{2^n}); returns the output mask (Z_{2^n}, r_in's shape)."""
    _gate_input(r_in, n, op, "r_in")
    b = n - 2 * F + 7
    c_max = (1 << clip_bits) - 1
    tc = _clip_type_bytes(clip_bits)
    r_x = r_in.flatten()
    N = r_x.numel()
    dealer.sigma_header_bytes += 4  # SIGMA's GeLU key starts with an int
    r_y = keygen_tr_with_slack(dealer, r_x, n, F - 6, bits_out=b, op=f"{op}.trws")

    # comparison key and the two masked-bit corrections
    neg = (-r_y) & low_mask(b)
    k0, k1 = compare.keygen(neg & low_mask(b - 1), b - 1, dealer.stream)
    r_d, r_i = dealer.mask(N, 1), dealer.mask(N, 1)
    cd0, cd1 = dealer.share_bits(((neg >> (b - 1)) & 1) ^ 1 ^ r_d)
    ri0, ri1 = dealer.share_bits(r_i)
    with dealer.gate(f"{op}.cmp", (N,), sigma_dpf_header(b - 1)) as (g0, g1):
        g0.raw(compare.to_payload(k0)).bits(cd0).bits(ri0)
        g1.raw(compare.to_payload(k1)).bits(cd1).bits(ri1)

    # selectlin: table position p holds the entry of j = p ^ (2·r_i + r_d)
    r_c = dealer.mask(N, clip_bits)
    dev = r_x.device
    j = torch.arange(4, device=dev) ^ (2 * r_i + r_d).unsqueeze(-1)  # (N, 4)
    alpha = torch.tensor(_MUX_ALPHA, device=dev)[j]
    beta = torch.tensor(_mux_beta(clip_bits), device=dev)[j]
    c0 = (beta - alpha * r_y.unsqueeze(-1) + r_c.unsqueeze(-1)) & c_max
    with dealer.gate(f"{op}.mux", (N,)) as (g0, g1):
        for table in (c0, alpha & c_max):
            s0, s1 = dealer.share(table.flatten(), clip_bits)
            g0.words(s0, tc)
            g1.words(s1, tc)

    r_lut = lut.keygen(dealer, r_c, clip_bits, n, op=f"{op}.lut")
    r_sel = select.keygen(dealer, r_d, r_x, n, op=f"{op}.select")
    return ((r_sel - r_lut) & low_mask(n)).view(r_in.shape)


def eval_relu_minus_lut(party, x_hat: torch.Tensor, n: int, clip_bits: int, table: torch.Tensor,
                        op: str) -> torch.Tensor:
    """The opened masked ReLU(x) - table[|clip(floor(x/64))|] (Z_{2^n}, x_hat's shape); the
    transfers are counted under the scope `op`."""
    _gate_input(x_hat, n, op, "x_hat")
    with party.scope(op):
        return _eval_relu_minus_lut(party, x_hat.flatten(), n, clip_bits, table,
                                    op).view(x_hat.shape)


def _msb(v: torch.Tensor, bits: int) -> torch.Tensor:
    return (v >> (bits - 1)) & 1


def _eval_relu_minus_lut(party, x: torch.Tensor, n: int, clip_bits: int, table: torch.Tensor,
                         op: str) -> torch.Tensor:
    b = n - 2 * F + 7
    c_max = (1 << clip_bits) - 1
    tc = _clip_type_bytes(clip_bits)
    N = x.numel()
    y = eval_tr_with_slack(party, x, n, F - 6, bits_out=b, op=f"{op}.trws")

    key = party.key(f"{op}.cmp")
    k = compare.from_payload(key.raw(compare.payload_size(b - 1, N)), b - 1, N, party.id,
                           party.device)
    c_d, r_i = key.bits(N), key.bits(N)
    key.done()
    points = torch.stack([-y - 1, c_max - y - 1, -c_max - y - 1]) & low_mask(b - 1)
    lt = compare.eval_lt(k, points)
    d = lt[0] ^ c_d
    i = lt[1] ^ lt[2] ^ r_i
    if party.id == 1:
        d = d ^ _msb(y, b)
        i = i ^ _msb((y + c_max) & low_mask(b), b) ^ _msb((y - c_max) & low_mask(b), b)
    # SIGMA sends the d bits and the i bits as two packed runs of 32-bit words, in one exchange
    run = 32 * -(-N // 32)
    both = torch.zeros(2 * run, dtype=x.dtype, device=x.device)
    both[:N], both[run:run + N] = d, i
    both = party.open_bits(both)
    d_hat, i_hat = both[:N], both[run:run + N]

    key = party.key(f"{op}.mux")
    c0 = key.words(4 * N, tc).view(N, 4)
    c1 = key.words(4 * N, tc).view(N, 4)
    key.done()
    j = (2 * i_hat + d_hat).unsqueeze(-1)
    c = c1.gather(1, j).squeeze(1) * y + c0.gather(1, j).squeeze(1)
    c_hat = party.open(c & c_max, clip_bits, tc)

    delta = lut.eval(party, c_hat, table, clip_bits, n, op=f"{op}.lut", opened=False)
    sel = select.share(party, d_hat, x, n, select.read_key(party, (N,), op=f"{op}.select"))
    return party.open((sel - delta) & low_mask(n), n)


def keygen(dealer, r_in: torch.Tensor, n: int, op: str = "gelu") -> torch.Tensor:
    """Keys of SIGMA's GeLU for inputs masked with r_in (Z_{2^n}); returns the output mask."""
    return keygen_relu_minus_lut(dealer, r_in, n, 8, op)


def eval(party, x_hat: torch.Tensor, n: int, op: str = "gelu") -> torch.Tensor:
    """The opened masked GeLU(x) + r_out; equals reference_gelu(x, n) on its valid range."""
    return eval_relu_minus_lut(party, x_hat, n, 8, tables.relu_sub_gelu(8, 6, F), op)
