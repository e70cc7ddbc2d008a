"""Softmax (sigma_spec §3.8; SIGMA `gpuSoftmax`): tournament max, nExp, row sum, inverse, product.

Rows lie on the last axis (length L, any L >= 1).  Causal softmax (GPT) uses, in row i of an
(..., L, L) block, only the entries j <= i and outputs 0 above the diagonal, as SIGMA computes the
packed lower triangle and re-expands it with zeros.
"""
from __future__ import annotations

import torch

from suf.core.config import SCALE as F
from suf.gates import lut, mul, relu, select, tables
from suf.gates.gelu import GATE_MIN_BITS
from suf.core.checks import check_bits, check_range, ring_input
from suf.gates.truncate import (eval_tr_with_slack, keygen_tr_with_slack,
                                    reference_tr_with_slack)
from suf.core.ring import Ring, low_mask

CLIP = (1 << 16) - 1  # nExp clips max - x at 16.0 (e^-16 is below one ULP at scale 12)


def reduced_bits(n: int) -> int:
    """Softmax's max and nExp run in Z_{2^(n-f+2)} (40 bits at n = 50; SIGMA `reducedBw`)."""
    return n - F + 2


# ================================================================================================
# reference (cleartext)
# ================================================================================================
def reference_softmax_max(x: torch.Tensor, n: int, count: torch.Tensor | None = None) -> torch.Tensor:
    """Row maxima by SIGMA's pairwise tournament (`gpuMaxpool`, log rounds), in Z_{2^(n-f+2)}.

    x: (..., W) ring values of Z_{2^n}; count: (...) number of leading entries of each row that
    take part (default W; causal row i has i + 1).  Each level pairs neighbours (2w, 2w+1):
    max = a + ReLU(b - a), the difference taken mod 2^(n-f+2) and its sign read on n-f+1 bits
    (the ReLU's comparison width).  An odd row carries its last element to the next level
    unchanged (SIGMA's causal kernel does a dummy ReLU of 0 for it).  ceil(log2 W) levels.
    Exact (= the true max mod 2^(n-f+2)) when every row's spread max - min is < 2^(n-f).
    """
    ring_input(x, n, min_bits=GATE_MIN_BITS)
    r = Ring(reduced_bits(n))
    sign_bit = reduced_bits(n) - 2  # MSB of the (n-f+1)-bit comparison
    width = x.shape[-1] if x.dim() else 0
    if width < 1:
        raise ValueError("the max needs rows of at least one entry on the last axis")
    if count is None:
        cnt = torch.full(x.shape[:-1], width, dtype=torch.int64, device=x.device)
    else:
        if not isinstance(count, torch.Tensor) or count.shape != x.shape[:-1]:
            raise ValueError(f"count must be a tensor of shape {tuple(x.shape[:-1])}")
        cnt = count.to(device=x.device, dtype=torch.int64)
        if bool(((cnt < 1) | (cnt > width)).any()):
            raise ValueError(f"every count must lie in [1, {width}]")
    cur = r.wrap(x)
    while cur.shape[-1] > 1:
        if cur.shape[-1] % 2:
            cur = torch.nn.functional.pad(cur, (0, 1))
        a, b = cur[..., 0::2], cur[..., 1::2]
        pair = 2 * torch.arange(a.shape[-1], device=x.device) + 1 < cnt.unsqueeze(-1)
        diff = torch.where(pair, r.wrap(b - a), torch.zeros_like(a))
        relu = torch.where((diff >> sign_bit) & 1 == 0, diff, torch.zeros_like(diff))
        cur = r.wrap(a + relu)
        cnt = (cnt + 1) // 2
    return cur[..., 0]


def reference_nexp(d: torch.Tensor, n: int) -> torch.Tensor:
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
    return reference_tr_with_slack(Ring(n).wrap(e_hi * e_lo), n, F, op="nexp product")


def reference_inverse(s: torch.Tensor, n: int, length: int) -> torch.Tensor:
    """1/S at scale 12 for a row sum S of nExp values (scale 12) over rows of `length` entries.

    p = f + ceil(log2 L); q = TrWithSlack(S mod 2^p: p -> p-6, 6) = ((S mod 2^p) >> 6) mod 2^(p-6)
    (exact truncate-reduce), then the (p-6)-bit table `inverse`: 2^18/q, entry 0 = 2^18/2^(p-6)
    for the wrap of S = 2^p (every entry of a row equal, L a power of two).
    """
    ring_input(s, n, "S", min_bits=GATE_MIN_BITS)
    bits = tables.inverse_bits(length)
    p = bits + F - 6
    q = reference_tr_with_slack(s & ((1 << p) - 1), p, 6, bits_out=bits)
    return tables.inverse(bits, 6, F, device=s.device)[q]


def _logit_spread_check(x: torch.Tensor, n: int, valid: torch.Tensor | None, layer, violations):
    """Every pairwise difference must fit the (n-f+1)-bit comparison: max - min < 2^(n-f)."""
    xs = Ring(n).signed(x)
    big = torch.iinfo(torch.int64).max
    row_min = (xs if valid is None else torch.where(valid, xs, big)).min(dim=-1, keepdim=True).values
    return check_range(xs - row_min, 0, 1 << (n - F), "softmax logit spread (x - row min)",
                       layer=layer, violations=violations, where=valid)


def reference_softmax(x: torch.Tensor, n: int, *, causal: bool = False, layer: str | None = None,
                      violations: list | None = None) -> torch.Tensor:
    """SIGMA's fixed-point softmax over the last axis of ring values x (scale 12) in Z_{2^n}.

    Step by step as `gpuSoftmax`:
      1. M = tournament max (reference_softmax_max) in Z_{2^(n-f+2)};
      2. d = M - x mod 2^(n-f+2);  3. e = nExp(d) (reference_nexp), Z_{2^n};
      4. S = Σ_j e_j mod 2^n;       5. inv = reference_inverse(S, n, L);
      6. out = TrWithSlack(e·inv, 12) mod 2^n.
    causal: x is (..., L, L); row i uses columns j <= i and is 0 for j > i (inputs there are
    ignored).  Precondition: in every row max - min < 2^(n-f) (2^38 at n = 50), so that every
    difference fits the 39-bit comparisons of the 40-bit ring (checked: RangeViolation); the
    absolute level of the logits does not matter.  Bit-exact with SIGMA's ClearText `softmax`
    (mode 0) and `softmax_triangular` inside that range.
    """
    ring = ring_input(x, n, min_bits=GATE_MIN_BITS)
    if x.dim() < 1 or x.shape[-1] < 1:
        raise ValueError("softmax needs rows of at least one entry on the last axis")
    length = x.shape[-1]
    valid, count = None, None
    if causal:
        if x.dim() < 2 or x.shape[-2] != length:
            raise ValueError(f"causal softmax needs square (..., L, L) blocks, got shape "
                             f"{tuple(x.shape)}")
        rows = torch.arange(length, device=x.device)
        valid = rows.unsqueeze(-1) >= rows  # j <= i
        count = (rows + 1).expand(x.shape[:-1])
    _logit_spread_check(x, n, valid, layer, violations)

    r = Ring(reduced_bits(n))
    m = reference_softmax_max(x, n, count)
    e = reference_nexp(r.wrap(m.unsqueeze(-1) - x), n)
    if valid is not None:
        e = torch.where(valid, e, torch.zeros_like(e))
    s = ring.wrap(e.sum(dim=-1))
    inv = reference_inverse(s, n, length)
    return reference_tr_with_slack(ring.wrap(e * inv.unsqueeze(-1)), n, F,
                                   op="softmax normalisation", layer=layer, violations=violations)


# ================================================================================================
# secure protocol (sigma_spec §3.8, `gpuSoftmax`: `gpuMaxpool`, `gpuNExp`, `gpuInverse`)
# ================================================================================================
# Every step runs on the rows packed one after the other in a flat vector: a full row has L
# entries, causal row i of an (L, L) block only its i + 1 entries j <= i (SIGMA's packed lower
# triangle); the rest of a causal block is output as 0 with mask 0.  Masks and masked values go
# through the same public index arithmetic, so `keygen` and `eval` mirror each other step by step.
# Exchanges: 2 per tournament level (ceil(log2 L) levels), nExp 13, inverse 5, normalise 3
# (35 at L = 128), each one for all rows of the tensor.

class _Rows:
    """The packing of a softmax input of `shape` into rows: `counts` (R,) entries per row, `row`
    (P,) the row of each packed entry, `length` L the row length."""

    def __init__(self, shape, causal: bool, device):
        if len(shape) < 1 or shape[-1] < 1:
            raise ValueError("softmax needs rows of at least one entry on the last axis")
        self.shape, self.length = tuple(shape), shape[-1]
        L, dev = self.length, torch.device(device)
        rows = int(torch.Size(shape[:-1]).numel())
        self.tri = None
        if causal:
            if len(shape) < 2 or shape[-2] != L:
                raise ValueError(f"causal softmax needs square (..., L, L) blocks, got shape "
                                 f"{tuple(shape)}")
            idx = torch.arange(L, device=dev)
            self.tri = idx.unsqueeze(-1) >= idx  # j <= i
            self.counts = (idx + 1).repeat(rows // L)
        else:
            self.counts = torch.full((rows,), L, dtype=torch.int64, device=dev)
        self.row = torch.repeat_interleave(torch.arange(rows, device=dev), self.counts)

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(-1) if self.tri is None else x[..., self.tri].reshape(-1)

    def unpack(self, v: torch.Tensor) -> torch.Tensor:
        if self.tri is None:
            return v.view(self.shape)
        out = torch.zeros(self.shape, dtype=v.dtype, device=v.device)
        out[..., self.tri] = v.view(self.shape[:-2] + (-1,))
        return out

    def sums(self, v: torch.Tensor, bits: int) -> torch.Tensor:
        """Per-row sums mod 2^bits (local on masked values and on masks)."""
        out = torch.zeros(self.counts.shape, dtype=v.dtype, device=v.device)
        return out.index_add_(0, self.row, v) & low_mask(bits)


def _tournament_level(counts: torch.Tensor):
    """One level of the max: a row of k candidates (packed, `counts` per row) pairs (2w, 2w+1)
    for w < ceil(k/2); an odd leftover is paired with itself, a dummy ReLU of 0 as in SIGMA's
    causal kernel (so causal rows of L = 2^t take H·(L²/2^(i+2) + L/2) ReLUs at level i, full
    rows H·L·L/2^(i+1)).  Returns the indices (a, b) of the pairs and the new counts."""
    half = (counts + 1) // 2
    start = torch.cumsum(counts, 0) - counts
    row = torch.repeat_interleave(torch.arange(counts.numel(), device=counts.device), half)
    w = torch.arange(row.numel(), device=counts.device) - (torch.cumsum(half, 0) - half)[row]
    a = start[row] + 2 * w
    return a, start[row] + torch.minimum(2 * w + 1, counts[row] - 1), half


def _max_levels(x: torch.Tensor, counts: torch.Tensor) -> int:
    """The tournament's depth, after checking that `counts` (R,) splits the flat x into rows."""
    if not isinstance(counts, torch.Tensor) or counts.dtype != torch.int64:
        raise TypeError(f"counts must be an int64 tensor of entries per row, got "
                        f"{getattr(counts, 'dtype', type(counts).__name__)}")
    if counts.dim() != 1 or counts.numel() == 0:
        raise ValueError("counts must be a non-empty 1-D tensor of entries per row")
    if bool((counts < 1).any()) or int(counts.sum()) != x.numel() or x.dim() != 1:
        raise ValueError(f"counts must be >= 1 and sum to the {x.numel()} entries of the flat "
                         f"packed rows, got sum {int(counts.sum())}")
    return tables.ceil_log2(int(counts.max()))


def _check_reduced(x: torch.Tensor, n: int, what: str) -> None:
    check_bits(n, GATE_MIN_BITS)
    Ring(reduced_bits(n)).check(x, what)


def keygen_max(dealer, r_x: torch.Tensor, counts: torch.Tensor, n: int,
               op: str = "max") -> torch.Tensor:
    """Keys of the row maxima of packed rows (flat r_x, `counts` entries per row), as
    reference_softmax_max; returns the (R,) output masks in Z_{2^(n-f+2)}."""
    ring_input(r_x, n, "r_x", min_bits=GATE_MIN_BITS)
    levels = _max_levels(r_x, counts)
    red = reduced_bits(n)
    dealer.sigma_header_bytes += 4  # SIGMA's maxpool key header
    cur = r_x & low_mask(red)
    for _ in range(levels):
        a, b, counts = _tournament_level(counts)
        # max = a + ReLU(b - a): DReLU on n-f+1 bits, select on the n-f+2-bit ring
        r_relu = relu.keygen(dealer, (cur[b] - cur[a]) & low_mask(red), red - 1, red,
                             op=f"{op}.relu")
        cur = (cur[a] + r_relu) & low_mask(red)
    return cur


def eval_max(party, x_hat: torch.Tensor, counts: torch.Tensor, n: int,
             op: str = "max") -> torch.Tensor:
    """The masked row maxima (R,) in Z_{2^(n-f+2)}; 2 exchanges per level."""
    ring_input(x_hat, n, "x_hat", min_bits=GATE_MIN_BITS)
    levels = _max_levels(x_hat, counts)
    red = reduced_bits(n)
    cur = x_hat & low_mask(red)
    for _ in range(levels):
        a, b, counts = _tournament_level(counts)
        relu_hat = relu.eval(party, (cur[b] - cur[a]) & low_mask(red), red - 1, red,
                             op=f"{op}.relu")
        cur = (cur[a] + relu_hat) & low_mask(red)
    return cur


def keygen_nexp(dealer, r_d: torch.Tensor, n: int, op: str = "nexp") -> torch.Tensor:
    """Keys of nExp (reference_nexp) for d = max - x masked with r_d in Z_{2^(n-f+2)}; returns
    the output mask in Z_{2^n}."""
    _check_reduced(r_d, n, "r_d")
    red = reduced_bits(n)
    # clip: c = select(1{d - CLIP < 0}, d - CLIP) + CLIP in u16.  The DReLU gives 1{d - CLIP >= 0}
    # masked with r_b; keying the select on r_b ^ 1 makes it read the complement.
    r_b = relu.drelu_keygen(dealer, r_d, red, op=f"{op}.clip.drelu")
    dealer.sigma_header_bytes += 12  # SIGMA's ReLU key header
    r_c = select.keygen(dealer, r_b ^ 1, r_d & 0xFFFF, 16, 2, op=f"{op}.clip.select")
    r_lo = lut.keygen(dealer, r_c & 0xFF, 8, n, op=f"{op}.lsb")
    r_c1 = keygen_tr_with_slack(dealer, r_c, 16, 8, bits_out=8, type_bytes=1, op=f"{op}.tr")
    r_hi = lut.keygen(dealer, r_c1, 8, n, op=f"{op}.msb")
    r_p = mul.keygen(dealer, r_hi, r_lo, n, op=f"{op}.mul")
    return keygen_tr_with_slack(dealer, r_p, n, F, op=f"{op}.trws")


def eval_nexp(party, d_hat: torch.Tensor, n: int, op: str = "nexp") -> torch.Tensor:
    """The masked e^(-d) at scale 12 in Z_{2^n}; 13 exchanges."""
    _check_reduced(d_hat, n, "d_hat")
    red = reduced_bits(n)
    y = d_hat - CLIP
    b_hat = relu.drelu_eval(party, y & low_mask(red), red, op=f"{op}.clip.drelu")
    c = (select.eval(party, b_hat, y & 0xFFFF, 16, 2, op=f"{op}.clip.select") + CLIP) & 0xFFFF
    lo = lut.eval(party, c & 0xFF, tables.nexp_lsb(device=c.device), 8, n, op=f"{op}.lsb")
    c1 = eval_tr_with_slack(party, c, 16, 8, bits_out=8, type_bytes=1, op=f"{op}.tr")
    hi = lut.eval(party, c1, tables.nexp_msb(device=c.device), 8, n, op=f"{op}.msb")
    p = party.open(mul.share(party, hi, lo, n, op=f"{op}.mul"), n)
    return eval_tr_with_slack(party, p, n, F, op=f"{op}.trws")


def _inverse_params(length: int) -> tuple[int, int, int]:
    """(table bits, p, index type bytes): q = TrWithSlack(S mod 2^p: p -> bits, 6), in SIGMA's
    u16 (wider only for tables of more than 16 bits, L > 1024)."""
    bits = tables.inverse_bits(length)
    return bits, bits + F - 6, 2 if bits <= 16 else 4


def keygen_inverse(dealer, r_s: torch.Tensor, n: int, length: int,
                   op: str = "inverse") -> torch.Tensor:
    """Keys of reference_inverse for row sums masked with r_s (Z_{2^n}); returns the output
    mask in Z_{2^n}."""
    ring_input(r_s, n, "r_s", min_bits=GATE_MIN_BITS)
    bits, p, tb = _inverse_params(length)
    r_q = keygen_tr_with_slack(dealer, r_s & low_mask(p), p, 6, bits_out=bits, type_bytes=tb,
                               op=f"{op}.tr")
    return lut.keygen(dealer, r_q, bits, n, op=f"{op}.lut")


def eval_inverse(party, s_hat: torch.Tensor, n: int, length: int,
                 op: str = "inverse") -> torch.Tensor:
    """The masked 1/S at scale 12 in Z_{2^n}; 5 exchanges."""
    ring_input(s_hat, n, "s_hat", min_bits=GATE_MIN_BITS)
    bits, p, tb = _inverse_params(length)
    q = eval_tr_with_slack(party, s_hat & low_mask(p), p, 6, bits_out=bits, type_bytes=tb,
                           op=f"{op}.tr")
    return lut.eval(party, q, tables.inverse(bits, 6, F, device=q.device), bits, n,
                    op=f"{op}.lut")


# SIGMA's windowMul over packed rows: e (P,) times its row's inverse (R,).  Key: <r_e> (P words),
# <r_inv> (R words), <r_e·r_inv[row] + r_z> (P words); the share is mul.py's Beaver formula with
# the row operand gathered per entry.
def _keygen_row_product(dealer, r_e, r_inv, row, n, op):
    r_z = dealer.mask(r_e.shape, n)
    dealer.deal_words(op, r_e.shape, (r_e, r_inv, r_e * r_inv[row] + r_z), n)
    return r_z


def _row_product_share(party, e_hat, inv_hat, row, n, op):
    key = party.key(op)
    a, b, c = key.words(e_hat.numel()), key.words(inv_hat.numel()), key.words(e_hat.numel())
    key.done()
    y = inv_hat[row]
    s = c - e_hat * b[row] - a * y
    if party.id == 1:
        s = s + e_hat * y
    return s & low_mask(n)


def keygen(dealer, r_in: torch.Tensor, n: int, *, causal: bool = False,
           op: str = "softmax") -> torch.Tensor:
    """Keys of SIGMA's softmax over the last axis of inputs masked with r_in (Z_{2^n}, scale 12);
    causal: (..., L, L) blocks, lower triangle only.  Returns the output mask (r_in's shape; 0
    above the diagonal when causal)."""
    ring_input(r_in, n, "r_in", min_bits=GATE_MIN_BITS)
    rows = _Rows(r_in.shape, causal, r_in.device)
    r_x = rows.pack(r_in)
    r_m = keygen_max(dealer, r_x, rows.counts, n, op=f"{op}.max")
    r_e = keygen_nexp(dealer, (r_m[rows.row] - r_x) & low_mask(reduced_bits(n)), n,
                      op=f"{op}.nexp")
    r_inv = keygen_inverse(dealer, rows.sums(r_e, n), n, rows.length, op=f"{op}.inverse")
    r_p = _keygen_row_product(dealer, r_e, r_inv, rows.row, n, op=f"{op}.normalise.mul")
    return rows.unpack(keygen_tr_with_slack(dealer, r_p, n, F, op=f"{op}.normalise.trws"))


def eval(party, x_hat: torch.Tensor, n: int, *, causal: bool = False,
         op: str = "softmax") -> torch.Tensor:
    """The opened masked softmax; equals reference_softmax(x, n, causal=causal) on its valid
    range.  Transfers are counted under the scopes op.max, op.nexp, op.inverse, op.normalise."""
    ring_input(x_hat, n, "x_hat", min_bits=GATE_MIN_BITS)
    rows = _Rows(x_hat.shape, causal, x_hat.device)
    x = rows.pack(x_hat)
    with party.scope(f"{op}.max"):
        m = eval_max(party, x, rows.counts, n, op=f"{op}.max")
    with party.scope(f"{op}.nexp"):
        e = eval_nexp(party, (m[rows.row] - x) & low_mask(reduced_bits(n)), n, op=f"{op}.nexp")
    with party.scope(f"{op}.inverse"):
        inv = eval_inverse(party, rows.sums(e, n), n, rows.length, op=f"{op}.inverse")
    with party.scope(f"{op}.normalise"):
        p = party.open(_row_product_share(party, e, inv, rows.row, n, op=f"{op}.normalise.mul"), n)
        out = eval_tr_with_slack(party, p, n, F, op=f"{op}.normalise.trws")
    return rows.unpack(out)
