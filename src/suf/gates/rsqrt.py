"""Reciprocal square root of LayerNorm (sigma_spec §3.9 step 4; LLAMA `Rsqrt` = F2BF16 + LUT_13).

SIGMA turns the opened row sum of squares V (scale 2f) into a 13-bit bfloat16-like index
(7-bit mantissa below the leading one, 6-bit exponent: index = m·64 + e) and reads 1/σ at scale f
from `tables.rsqrt(d)`.  The reference reproduces that index computation exactly, over V's whole
range (no shortcut through V's low bits), and the ClearText table values (signed exponent).

The secure protocol (below the references) is not SIGMA's: SIGMA runs F2BF16 + a 13-bit LUT on the
CPU in LLAMA.  Ours is one interval lookup with one DPF key per row, exact over V's whole range
and the same torch code on CPU and GPU (docs/rsqrt.md).
"""
from __future__ import annotations

import functools

import torch

from suf.core.checks import check_bits, check_gate_input, check_range, ring_input
from suf.core.ring import low_mask
from suf.fss import compare
from suf.gates import lut, select, tables
from suf.mpc.gate import Bits, Call, Example, Gate, Input, Key, Layout, Open, Raw, register

GATE_MIN_BITS = 14  # the index needs at least 8 bits of mantissa and a 6-bit exponent field


# ================================================================================================
# reference (cleartext)
# ================================================================================================
def reference_rsqrt_index(v: torch.Tensor, n: int) -> torch.Tensor:
    """The 13-bit index LLAMA's F2BF16 computes from V in Z_{2^n}, for every V.

    F2BF16 (`fixtobfloat16.cpp`) forms the bits 1{V < 2^i}, i = 1..n-1, and from the first i where
    the bit is set (j) takes the exponent k = j - 1 and the multiplier u = 2^(n-j).  Then
    V·u mod 2^n has its leading one at bit n-1, its top byte minus 128 is the 7-bit mantissa m,
    and index = (m·64 + k) mod 2^13.  Hence for 1 <= V < 2^(n-1): k = floor(log2 V) and m = the
    7 bits after V's leading one (zero-filled below bit 0 when k < 7).  For V = 0 and V = 1 the
    index is 0 (V = 0 has no leading one: u = 2^(n-1) and the mantissa wraps to 0), and for
    V >= 2^(n-1) no bit is set (u = 0), so the index is 0 as well; LayerNorm excludes that range.
    """
    ring = ring_input(v, n, "V", min_bits=GATE_MIN_BITS)
    above = torch.zeros_like(v)  # number of i in [1, n-1] with V >= 2^i
    for i in range(1, n):
        above += (v >= (1 << i)).to(torch.int64)
    found = above < n - 1  # some 1{V < 2^i} is set; its first position is j = above + 1
    k = torch.where(found, above, torch.zeros_like(v))
    u = torch.where(found, torch.ones_like(v) << (n - 1 - above).clamp(min=0), torch.zeros_like(v))
    vu = ring.wrap(v * u)
    mantissa = (vu >> (n - 8)) - 128
    return ((mantissa << 6) + k) & ((1 << tables.RSQRT_BITS) - 1)


def reference(v: torch.Tensor, *, n: int, d: int, op: str = "rsqrt", layer: str | None = None,
              violations: list | None = None) -> torch.Tensor:
    """1/σ at scale 12 from the sum of squares V (scale 24) of a row of width d: tables.rsqrt(d)
    at reference_rsqrt_index(V).

    Equals SIGMA's ClearText `invsqrt_lut_2(V, 12, d, n)` = (i64)(2^24/sqrt(m·2^(k-7)/d)) for
    1 <= V < 2^(n-1).  Precondition V < 2^(n-1) (checked: RangeViolation), since F2BF16 only scans
    1{V < 2^i} for i <= n-1.  V = 0, where ClearText is undefined (it casts 2^24/0.0 = inf),
    is defined as SIGMA's GPU path computes it: index 0, i.e. tables.rsqrt(d)[0] = floor(2^24·√d).
    In LayerNorm that value is multiplied by x - μ = 0, so the row's output does not depend on it.
    """
    ring_input(v, n, "V", min_bits=GATE_MIN_BITS)
    check_range(v, 0, 1 << (n - 1), op, layer=layer, violations=violations)
    return tables.rsqrt(d, device=v.device)[reference_rsqrt_index(v, n)]


# ================================================================================================
# secure protocol: rsqrt as one interval lookup (docs/rsqrt.md)
# ================================================================================================
# T[index(V)] is a step function of V.  Z_{2^n} splits into K = 128(n-7) intervals [a_j, a_{j+1})
# on which the index is constant (`intervals`).  The dealer gives each row ONE comparison key of
# α = R (V's mask, n bits): lt(y) = XOR-shares of 1{y < R}.  With y_j = V^ - a_j (a_K = 2^n, so
# y_K = y_0):  V in [a_j, a_{j+1})  <=>  R in (y_{j+1}, y_j] cyclically, which is
#     lt(y_j) ^ lt(y_{j+1}) ^ 1{y_{j+1} > y_j}      (the last term, public, marks the one arc
#                                                    that wraps through 0; party 1 adds it).
# These K bits are XOR-shares of the one-hot vector of V's interval: the two parties' bits agree
# everywhere but at the hit, so SIGMA's LUT sign trick (suf.gates.lut) applies unchanged:
# u = ±Σ_j bit_j, v = ±Σ_j bit_j·T_j give u0 + u1 = σ = ±1 and v0 + v1 = σ·T[index(V)]; open
# U^ = 1{σ = +1} ^ r_U and V^ = σ·T + r_V, select(U^, V^) = U·σ·T + r_sel, open it, and
# 2·select - V^ = T + r_out with r_out = 2·r_sel - r_V.  U^ and V^ travel in one exchange of
# (n+1)-bit words 2·<V^> + <U^> (`_open_uv`).

# comparison points (rows x K) walked at once; the walk keeps ~2.5 KB per point at n = 50
CHUNK_POINTS = 1 << 16


@functools.lru_cache(maxsize=None)
def _intervals(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    # Below 2^(n-1) the index is (k, the 7 bits after V's leading one, zero-filled): it can only
    # change where k changes or, inside [2^k, 2^(k+1)), at multiples of 2^max(k-7, 0) after 2^k.
    # From 2^(n-1) on it is constant (0).  Keep each candidate whose index differs from the
    # previous one: the kept points start the maximal intervals of constant index.
    cand = {0, 1 << (n - 1)}
    for k in range(n - 1):
        step = 1 << max(k - 7, 0)
        cand.update((1 << k) + m * step for m in range(min(128, 1 << k)))
    cand = torch.tensor(sorted(cand), dtype=torch.int64)
    index = reference_rsqrt_index(cand, n)
    keep = torch.ones_like(cand, dtype=torch.bool)
    keep[1:] = index[1:] != index[:-1]
    return cand[keep], index[keep]


@functools.lru_cache(maxsize=None)
def _interval_values(n: int, d: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(starts, T[index]) of `intervals` on `device`, made once (read only): what eval needs,
    without host-to-device copies at every call."""
    starts, index = intervals(n, device=device)
    return starts, tables.rsqrt(d, device=device)[index]


def intervals(n: int, *, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(starts, index): the K = 128(n-7) maximal intervals [a_j, a_{j+1}) of Z_{2^n} (a_K = 2^n)
    on which `reference_rsqrt_index` is constant, and that index on each.

    They are [0, 2) (V = 0 and 1 share index 0), the single points 2..127, 128 intervals of
    length 2^(k-7) for each exponent k = 7..n-2, and [2^(n-1), 2^n), outside LayerNorm's range
    V < 2^(n-1), where F2BF16 also gives index 0.
    """
    check_bits(n, GATE_MIN_BITS)
    starts, index = _intervals(n)  # cached: hand out copies
    return starts.to(device=device, copy=True), index.to(device=device, copy=True)


def _check_width(d) -> None:
    if not isinstance(d, int) or isinstance(d, bool) or d < 1:
        raise ValueError(f"rsqrt needs the row width d as an int >= 1, got {d!r}")


def layout(shape, *, n: int, d: int | None = None) -> Layout:
    """One entry of `shape` per row.  d (the row width) picks the public table used online; the
    key and the exchanges do not depend on it (checked when given)."""
    check_bits(n, GATE_MIN_BITS)
    if d is not None:
        _check_width(d)
    N = int(torch.Size(shape).numel())
    if N == 0:
        raise ValueError("rsqrt needs at least one row")
    # no SIGMA header: SIGMA has no such gate (LLAMA's CPU F2BF16 + LUT)
    return Layout([Key("", (Raw("cmp", compare.payload_size(n, N)), Bits("r_u", N))),
                   Call("select", "select", ((N,), (N,)), {"bits": n, "opened": False}),
                   Open("uv", N, n + 1), Open("out", N, n)])


def keygen(dealer, r_in: torch.Tensor, *, n: int, d: int | None = None,
           op: str = "rsqrt") -> torch.Tensor:
    """Keys of rsqrt for V's masks r_in (any shape, one entry per row, Z_{2^n}); returns r_out.

    Per row: the comparison key of α = r_in (n bits), an XOR-shared mask bit r_U, and a select key
    (5 words) for (r_U, r_V).  The key does not depend on d: the table is public and used online.
    """
    check_gate_input(r_in, n, "r_in", min_bits=GATE_MIN_BITS)
    lay = layout(r_in.shape, n=n, d=d)
    k0, k1 = compare.keygen(r_in.flatten(), n, dealer.stream)
    return lut.deal_signed(dealer, op, r_in.shape, lay.key(), "cmp",
                           (compare.to_payload(k0), compare.to_payload(k1)), n)


def _signed_onehot_dot(key, v_hat: torch.Tensor, starts: torch.Tensor, values: torch.Tensor,
                       n: int, party: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(u, v) = ±(Σ_j bit_j, Σ_j bit_j·T_j) per row (+ for party 0), bit_j this party's share of
    1{V in [a_j, a_{j+1})}; rows in chunks of at most CHUNK_POINTS comparison points."""
    K, N = starts.numel(), v_hat.numel()
    step = max(1, CHUNK_POINTS // K)
    us, vs = [], []
    for a in range(0, N, step):
        y = (v_hat[None, a:a + step] - starts[:, None]) & low_mask(n)  # (K, c): y_j = V^ - a_j
        lt = compare.eval_lt(key[a:a + step], y)  # shares of 1{y_j < R}
        y_next, lt_next = y.roll(-1, 0), lt.roll(-1, 0)  # j + 1, cyclically (y_K = y_0)
        bits = lt ^ lt_next ^ (party & (y_next > y).to(torch.int64))
        us.append(bits.sum(0))
        vs.append((values[:, None] * bits).sum(0))
    sign = 1 - 2 * party
    return sign * torch.cat(us), sign * torch.cat(vs)


def _open_uv(party, u_share: torch.Tensor, v_share: torch.Tensor, n: int,
             spec: Open) -> tuple[torch.Tensor, torch.Tensor]:
    """Open U^ (XOR-shared bit) and V^ (additive mod 2^n) in one exchange of (n+1)-bit words
    2·<V^> + <U^>.  Their sum is 2·V^ + u0 + u1 with u0 + u1 = U^ + 2·(u0 & u1), and each party
    knows u0 & u1 = own & (U^ ^ own): it removes that carry from the top n bits."""
    total = party.open((v_share << 1) | u_share, spec)
    u_hat = total & 1
    carry = u_share & (u_hat ^ u_share)
    return u_hat, ((total >> 1) - carry) & low_mask(n)


def eval(party, v_hat: torch.Tensor, *, n: int, d: int, op: str = "rsqrt") -> torch.Tensor:
    """T[index(V)] + r_out from the opened V^ = V + R (any shape, one entry per row): 1/σ at
    scale 12 for rows of width d, as `reference` for every V in Z_{2^n} (for V >= 2^(n-1),
    outside LayerNorm's range, it is T[0] as the reference's formula gives).

    2 exchanges: U^ and V^ together (n + 1 bits per row), then the select (n bits per row).
    """
    check_gate_input(v_hat, n, "v_hat", min_bits=GATE_MIN_BITS)
    _check_width(d)
    lay = layout(v_hat.shape, n=n, d=d)
    N = v_hat.numel()
    key = party.read(op, lay.key())
    k = compare.from_payload(key["cmp"], n, N, party.id, party.device)
    sel_key = select.read(party, (N,), bits=n, op=f"{op}.select")
    starts, values = _interval_values(n, d, party.device)
    u, v = _signed_onehot_dot(k, v_hat.flatten(), starts, values, n, party.id)
    u_share, v_share = lut.signed_shares(party, u, v, key["r_u"], sel_key, n)
    u_hat, v_hat_lut = _open_uv(party, u_share, v_share, n, lay.open("uv"))
    return lut.unsign(party, u_hat, v_hat_lut, sel_key, n, lay.open("out")).view(v_hat.shape)


def work(n: int, rows: int) -> dict:
    """Per party and `rows` rows: comparisons walked (K per row) and PRG calls (n - 7 each)."""
    check_bits(n, GATE_MIN_BITS)
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 1:
        raise ValueError(f"rows must be an int >= 1, got {rows!r}")
    walks = rows * _intervals(n)[0].numel()
    return {"rsqrt_tree_walks": walks, "rsqrt_prg_calls": walks * (n - 7)}


def example(bits: int, count: int) -> Example:
    """One row's V per 8 elements of `count` (each row walks 128(n-7) comparisons), rows of width
    d = 128: V = 0, the largest valid V = 2^(n-1) - 1, V = 1 and 128 first, then V of random
    magnitudes below 2^(n-1)."""
    rows = count // 8 or 1

    def draw(g):
        edges = torch.tensor([0, (1 << (bits - 1)) - 1, 1, 128])[:rows]
        rest = rows - edges.numel()
        rnd = g.ring(rest, bits - 1) >> (g.ring(rest, 6) % (bits - 1))
        return [torch.cat([edges, rnd])]

    return Example((Input("V", 1, (rows,), bits),), {"n": bits, "d": 128}, bits, draw)


GATE = register(Gate("rsqrt", layout, keygen, eval, reference, example))
