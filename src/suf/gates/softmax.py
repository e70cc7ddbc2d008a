"""Softmax (sigma_spec §3.8; SIGMA `gpuSoftmax`): tournament max, nExp, row sum, inverse, product.

Rows lie on the last axis (length L, any L >= 1).  Causal softmax (GPT) uses, in row i of an
(..., L, L) block, only the entries j <= i and outputs 0 above the diagonal, as SIGMA computes the
packed lower triangle and re-expands it with zeros.

Every step runs on the rows packed one after the other in a flat vector (`_Rows`): a full row has
L entries, causal row i of an (L, L) block only its i + 1 entries j <= i (SIGMA's packed lower
triangle); the rest of a causal block is output as 0 with mask 0.  Masks and masked values go
through the same public index arithmetic, so keygen and eval mirror each other step by step:

  max        suf.gates.softmax_max, the row maxima M in Z_{2^(n-f+2)} (2 exchanges a level)
  nexp       suf.gates.nexp on d = M - x mod 2^(n-f+2) (13 exchanges)
  inverse    suf.gates.inverse on the row sums S = Σ_j e_j, local (5 exchanges)
  normalise  SIGMA's windowMul e·inv[row] (a Beaver product, suf.gates.beaver, with the row's
             inverse broadcast over its packed entries), opened, then TrWithSlack(12) (3)
35 exchanges at L = 128, each one for all rows of the tensor.

`nonlinear="suf"` (part of the layout) runs "suf_nexp" and "suf_inverse" in place of "nexp" and
"inverse" (suf.mpc.gate.nonlinear_gate); both are called through the registry, the rest is the
same.
"""
from __future__ import annotations

import torch

from suf.core.checks import check_gate_input, check_range, ring_input
from suf.core.config import SCALE as F
from suf.core.ring import Ring, low_mask
from suf.gates import beaver, softmax_max, tr_with_slack
from suf.gates.causal_matmul import pack_tril, unpack_tril
from suf.gates.gelu import GATE_MIN_BITS
from suf.gates.softmax_max import reduced_bits
from suf.mpc.gate import (Call, Example, Gate, Input, Layout, Open, get, nonlinear_gate,
                          register)


class _Rows:
    """The packing of a softmax input of `shape` into rows, from the shape alone (host ints):
    `counts` entries per row (a tuple of R ints), `total` P packed entries, `length` L."""

    def __init__(self, shape, causal: bool):
        if len(shape) < 1 or shape[-1] < 1:
            raise ValueError("softmax needs rows of at least one entry on the last axis")
        self.shape, self.length, self.causal = tuple(shape), int(shape[-1]), causal
        L = self.length
        rows = int(torch.Size(self.shape[:-1]).numel())
        if causal:
            if len(shape) < 2 or shape[-2] != L:
                raise ValueError(f"causal softmax needs square (..., L, L) blocks, got shape "
                                 f"{self.shape}")
            self.counts = tuple(range(1, L + 1)) * (rows // L)
            self.total = rows // L * (L * (L + 1) // 2)
        else:
            self.counts = (L,) * rows
            self.total = rows * L

    def row(self, device) -> torch.Tensor:
        """(P,) the row of each packed entry (made on the device, no synchronisation)."""
        L, rows = self.length, len(self.counts)
        if self.causal:
            per_row = (torch.arange(L, device=device) + 1).repeat(rows // L)
        else:
            per_row = torch.full((rows,), L, dtype=torch.int64, device=device)
        return torch.repeat_interleave(torch.arange(rows, device=device), per_row,
                                       output_size=self.total)

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        return pack_tril(x).reshape(-1) if self.causal else x.reshape(-1)

    def unpack(self, v: torch.Tensor) -> torch.Tensor:
        if not self.causal:
            return v.view(self.shape)
        return unpack_tril(v.view(*self.shape[:-2], -1), self.length)

    def sums(self, v: torch.Tensor, row: torch.Tensor, bits: int) -> torch.Tensor:
        """Per-row sums mod 2^bits (local on masked values and on masks)."""
        out = torch.zeros(len(self.counts), dtype=v.dtype, device=v.device)
        return out.index_add_(0, row, v) & low_mask(bits)


def _layout(rows: _Rows, n: int, nonlinear: str) -> Layout:
    P, R = rows.total, len(rows.counts)
    return Layout([Call("max", "softmax_max", ((P,),), {"n": n, "counts": rows.counts}),
                   Call("nexp", nonlinear_gate("nexp", nonlinear), ((P,),), {"n": n}),
                   Call("inverse", nonlinear_gate("inverse", nonlinear), ((R,),),
                        {"n": n, "length": rows.length}),
                   beaver.key(P, R, P, n, "normalise.mul"),
                   Open("normalise", P, n),
                   Call("normalise.trws", "tr_with_slack", ((P,),), {"n": n, "s": F})])


def layout(shape, *, n: int, causal: bool = False, nonlinear: str = "sigma") -> Layout:
    return _layout(_Rows(shape, causal), n, nonlinear)


def _row_product(row: torch.Tensor):
    """SIGMA's windowMul over packed rows: e (P,) times its row's inverse (R,)."""
    return lambda e, inv: e * inv[row]


def keygen(dealer, r_in: torch.Tensor, *, n: int, causal: bool = False, nonlinear: str = "sigma",
           op: str = "softmax") -> torch.Tensor:
    """Keys of SIGMA's softmax over the last axis of inputs masked with r_in (Z_{2^n}, scale 12);
    causal: (..., L, L) blocks, lower triangle only.  Returns the output mask (r_in's shape; 0
    above the diagonal when causal)."""
    ring_input(r_in, n, "r_in", min_bits=GATE_MIN_BITS)
    rows = _Rows(r_in.shape, causal)
    lay = _layout(rows, n, nonlinear)
    nexp, inverse = (get(c.gate) for c in lay.calls("nexp") + lay.calls("inverse"))
    row = rows.row(r_in.device)
    r_x = rows.pack(r_in)
    r_m = softmax_max.keygen(dealer, r_x, n=n, counts=rows.counts, op=f"{op}.max")
    r_e = nexp.keygen(dealer, (r_m[row] - r_x) & low_mask(reduced_bits(n)), n=n, op=f"{op}.nexp")
    r_inv = inverse.keygen(dealer, rows.sums(r_e, row, n), n=n, length=rows.length,
                           op=f"{op}.inverse")
    r_p = dealer.mask(r_e.shape, n)
    beaver.deal(dealer, op, r_e.shape, lay.key("normalise.mul"), r_e, r_inv,
                _row_product(row)(r_e, r_inv) + r_p)
    return rows.unpack(tr_with_slack.keygen(dealer, r_p, n=n, s=F, op=f"{op}.normalise.trws"))


def eval(party, x_hat: torch.Tensor, *, n: int, causal: bool = False, nonlinear: str = "sigma",
         op: str = "softmax") -> torch.Tensor:
    """The opened masked softmax; equals reference(x, n=n, causal=causal) on its valid range.
    Transfers are counted under the scopes op.max, op.nexp, op.inverse, op.normalise."""
    check_gate_input(x_hat, n, "x_hat", min_bits=GATE_MIN_BITS)
    rows = _Rows(x_hat.shape, causal)
    lay = _layout(rows, n, nonlinear)
    nexp, inverse = (get(c.gate) for c in lay.calls("nexp") + lay.calls("inverse"))
    row = rows.row(x_hat.device)
    x = rows.pack(x_hat)
    with party.scope(f"{op}.max"):
        m = softmax_max.eval(party, x, n=n, counts=rows.counts, op=f"{op}.max")
    with party.scope(f"{op}.nexp"):
        e = nexp.eval(party, (m[row] - x) & low_mask(reduced_bits(n)), n=n, op=f"{op}.nexp")
    with party.scope(f"{op}.inverse"):
        inv = inverse.eval(party, rows.sums(e, row, n), n=n, length=rows.length,
                           op=f"{op}.inverse")
    with party.scope(f"{op}.normalise"):
        s = beaver.share(party, op, lay.key("normalise.mul"), e, inv, e.shape, _row_product(row),
                         n)
        p = party.open(s, lay.open("normalise"))
        out = tr_with_slack.eval(party, p, n=n, s=F, op=f"{op}.normalise.trws")
    return rows.unpack(out)


# -- cleartext ----------------------------------------------------------------------------------
def _logit_spread_check(x: torch.Tensor, n: int, valid: torch.Tensor | None, layer, violations):
    """Every pairwise difference must fit the (n-f+1)-bit comparison: max - min < 2^(n-f)."""
    xs = Ring(n).signed(x)
    big = torch.iinfo(torch.int64).max
    row_min = (xs if valid is None else torch.where(valid, xs, big)).min(dim=-1, keepdim=True).values
    return check_range(xs - row_min, 0, 1 << (n - F), "softmax logit spread (x - row min)",
                       layer=layer, violations=violations, where=valid)


def reference(x: torch.Tensor, *, n: int, causal: bool = False, nonlinear: str = "sigma",
              layer: str | None = None, violations: list | None = None) -> torch.Tensor:
    """SIGMA's fixed-point softmax over the last axis of ring values x (scale 12) in Z_{2^n}.

    Step by step as `gpuSoftmax`:
      1. M = tournament max (softmax_max.tournament) in Z_{2^(n-f+2)};
      2. d = M - x mod 2^(n-f+2);  3. e = nExp(d) (nexp.reference), Z_{2^n};
      4. S = Σ_j e_j mod 2^n;       5. inv = inverse.reference(S, n, L);
      6. out = TrWithSlack(e·inv, 12) mod 2^n.
    causal: x is (..., L, L); row i uses columns j <= i and is 0 for j > i (inputs there are
    ignored).  Precondition: in every row max - min < 2^(n-f) (2^38 at n = 50), so that every
    difference fits the 39-bit comparisons of the 40-bit ring (checked: RangeViolation); the
    absolute level of the logits does not matter.  Bit-exact with SIGMA's ClearText `softmax`
    (mode 0) and `softmax_triangular` inside that range.  nonlinear="suf": steps 3 and 5 are the
    references of "suf_nexp" and "suf_inverse".
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
        idx = torch.arange(length, device=x.device)
        valid = idx.unsqueeze(-1) >= idx  # j <= i
        count = (idx + 1).expand(x.shape[:-1])
    _logit_spread_check(x, n, valid, layer, violations)

    r = Ring(reduced_bits(n))
    nexp, inverse = (get(nonlinear_gate(g, nonlinear)) for g in ("nexp", "inverse"))
    m = softmax_max.tournament(x, n=n, count=count)
    d = r.wrap(m.unsqueeze(-1) - x)
    if valid is not None:  # entries above the diagonal are never computed: read nExp(0) there
        d = torch.where(valid, d, torch.zeros_like(d))
    e = nexp.reference(d, n=n)
    if valid is not None:
        e = torch.where(valid, e, torch.zeros_like(e))
    s = ring.wrap(e.sum(dim=-1))
    inv = inverse.reference(s, n=n, length=length)
    return tr_with_slack.reference(ring.wrap(e * inv.unsqueeze(-1)), n=n, s=F,
                                   op="softmax normalisation", layer=layer,
                                   violations=violations)


def example(bits: int, count: int) -> Example:
    """Full rows of 8: each at a random level, entries below it by less than 2^(n-f) (even rows)
    or 2^17 (odd rows), none wrapping past -2^(n-1)."""
    shape = (count // 8 or 1, 8)

    def draw(g):
        level = Ring(bits).signed(g.ring((shape[0], 1), bits)).clamp(
            min=(1 << (bits - F)) - (1 << (bits - 1)))
        wide, small = g.ring(shape, bits - F), g.ring(shape, 17)
        rows = torch.arange(shape[0]).unsqueeze(-1) % 2 == 0
        return [(level - torch.where(rows, wide, small)) & low_mask(bits)]

    return Example((Input("x", 1, shape, bits),), {"n": bits}, bits, draw)


GATE = register(Gate("softmax", layout, keygen, eval, reference, example))
