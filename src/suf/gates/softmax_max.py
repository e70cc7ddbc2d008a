"""Row maxima of packed rows (sigma_spec §3.8, SIGMA `gpuMaxpool`): softmax's tournament max.

The input x^ (P,) holds rows packed one after the other, `counts` (a tuple of R ints) entries per
row: full rows of L, or the rows 1..L of a causal block (softmax._Rows).  The output is the masked
row maxima (R,) in Z_{2^(n-f+2)} (SIGMA's `reducedBw`).  Each level pairs neighbours (2w, 2w+1)
of every row: max = a + ReLU(b - a), the difference taken mod 2^(n-f+2) and its sign read on
n-f+1 bits (ReLU(n-f+1 -> n-f+2), suf.gates.relu); an odd leftover is paired with itself, a dummy
ReLU of 0 as in SIGMA's causal kernel.  ceil(log2 max count) levels of 2 exchanges.  Exact (= the
true row max mod 2^(n-f+2)) when every row's spread max - min is < 2^(n-f).

`counts` are host ints: the level sizes and the pairing indices are made from them without reading
anything back from the device.
"""
from __future__ import annotations

from collections import Counter
from functools import lru_cache

import torch

from suf.core.checks import check_bits, check_gate_input, ring_input
from suf.core.config import SCALE as F
from suf.core.ring import Ring, low_mask
from suf.gates import relu
from suf.gates.gelu import GATE_MIN_BITS
from suf.mpc.gate import Call, Example, Gate, Header, Input, Layout, register

SIGMA_HEADER = 4  # SIGMA's maxpool key header


def reduced_bits(n: int) -> int:
    """Softmax's max and nExp run in Z_{2^(n-f+2)} (40 bits at n = 50; SIGMA `reducedBw`)."""
    return n - F + 2


def check_counts(counts, total: int | None = None) -> tuple[int, ...]:
    """`counts` as a non-empty tuple of ints >= 1 (entries per row), summing to `total` if given;
    host-side only."""
    if not isinstance(counts, (tuple, list)):
        raise TypeError(f"counts must be a tuple of ints (entries per row), got "
                        f"{type(counts).__name__}")
    if not all(type(c) is int for c in counts):
        bad = next(c for c in counts if type(c) is not int)
        raise TypeError(f"counts must be ints (entries per row), got {bad!r}")
    if not counts:
        raise ValueError("counts must name at least one row")
    counts = tuple(counts)
    if min(counts) < 1:
        raise ValueError(f"counts must be >= 1, got {min(counts)}")
    if total is not None and sum(counts) != total:
        raise ValueError(f"counts must sum to the {total} entries of the flat packed rows, got "
                         f"sum {sum(counts)}")
    return counts


@lru_cache(maxsize=64)
def _pairs_per_level(counts: tuple[int, ...]) -> tuple[int, ...]:
    """ReLUs of each tournament level: a row of k candidates takes ceil(k/2) (so causal rows of
    L = 2^t take H·(L²/2^(i+2) + L/2) at level i, full rows H·L·L/2^(i+1))."""
    rows = Counter(counts)  # entries -> number of rows
    out = []
    while max(rows) > 1:
        halves = Counter()
        for k, r in rows.items():
            halves[(k + 1) // 2] += r
        out.append(sum(k * r for k, r in halves.items()))
        rows = halves
    return tuple(out)


def _check_shape(shape, counts: tuple[int, ...]) -> None:
    if len(shape) != 1:
        raise ValueError(f"the max takes the flat packed rows (P,) that counts splits, got shape "
                         f"{tuple(shape)}")
    check_counts(counts, int(shape[0]))


def layout(shape, *, n: int, counts) -> Layout:
    check_bits(n, GATE_MIN_BITS)
    counts = check_counts(counts)
    _check_shape(shape, counts)
    red = reduced_bits(n)
    return Layout([Header(SIGMA_HEADER)] +
                  [Call("relu", "relu", ((k,),), {"m": red - 1, "bits_out": red})
                   for k in _pairs_per_level(counts)], out=(len(counts),))


def _counts_tensor(counts: tuple[int, ...], device) -> torch.Tensor:
    device = torch.device(device)
    if all(c == counts[0] for c in counts):
        return torch.full((len(counts),), counts[0], dtype=torch.int64, device=device)
    return _uneven_counts(counts, device)


@lru_cache(maxsize=64)
def _uneven_counts(counts: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Uneven row lengths (causal rows) on `device`, copied there once (read only)."""
    return torch.tensor(counts, dtype=torch.int64).to(device)


def _levels(counts: tuple[int, ...], device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The pairs (a, b) of each level, as indices into that level's packed candidates: row by row
    (2w, 2w+1) for w < ceil(k/2), an odd leftover paired with itself."""
    cnt = _counts_tensor(counts, device)
    rows = torch.arange(len(counts), device=device)
    out = []
    for total in _pairs_per_level(counts):
        half = (cnt + 1) // 2
        start = torch.cumsum(cnt, 0) - cnt
        row = torch.repeat_interleave(rows, half, output_size=total)
        w = torch.arange(total, device=device) - (torch.cumsum(half, 0) - half)[row]
        out.append((start[row] + 2 * w, start[row] + torch.minimum(2 * w + 1, cnt[row] - 1)))
        cnt = half
    return out


def keygen(dealer, r_x: torch.Tensor, *, n: int, counts, op: str = "max") -> torch.Tensor:
    """Keys of the row maxima of packed rows masked with r_x (Z_{2^n}); returns the (R,) output
    masks in Z_{2^(n-f+2)}."""
    ring_input(r_x, n, "r_x", min_bits=GATE_MIN_BITS)
    layout(r_x.shape, n=n, counts=counts)
    counts = tuple(counts)
    red = reduced_bits(n)
    dealer.sigma_header_bytes += SIGMA_HEADER
    cur = r_x & low_mask(red)
    for a, b in _levels(counts, r_x.device):
        r_relu = relu.keygen(dealer, (cur[b] - cur[a]) & low_mask(red), m=red - 1, bits_out=red,
                             op=f"{op}.relu")
        cur = (cur[a] + r_relu) & low_mask(red)
    return cur


def eval(party, x_hat: torch.Tensor, *, n: int, counts, op: str = "max") -> torch.Tensor:
    """The masked row maxima (R,) in Z_{2^(n-f+2)}; 2 exchanges per level."""
    check_gate_input(x_hat, n, "x_hat", min_bits=GATE_MIN_BITS)
    layout(x_hat.shape, n=n, counts=counts)
    counts = tuple(counts)
    red = reduced_bits(n)
    cur = x_hat & low_mask(red)
    for a, b in _levels(counts, x_hat.device):
        relu_hat = relu.eval(party, (cur[b] - cur[a]) & low_mask(red), m=red - 1, bits_out=red,
                             op=f"{op}.relu")
        cur = (cur[a] + relu_hat) & low_mask(red)
    return cur


# -- cleartext ----------------------------------------------------------------------------------
def tournament(x: torch.Tensor, *, n: int, count: torch.Tensor | None = None) -> torch.Tensor:
    """Row maxima of rows on the last axis by SIGMA's pairwise tournament, in Z_{2^(n-f+2)}.

    x: (..., W) ring values of Z_{2^n}; count: (...) number of leading entries of each row that
    take part (default W; causal row i has i + 1).  Each level pairs neighbours (2w, 2w+1):
    max = a + ReLU(b - a), the difference taken mod 2^(n-f+2) and its sign read on n-f+1 bits
    (the ReLU's comparison width).  An odd row carries its last element to the next level
    unchanged (the protocol's dummy ReLU of 0 gives the same).  ceil(log2 W) levels.
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
        relu_ = torch.where((diff >> sign_bit) & 1 == 0, diff, torch.zeros_like(diff))
        cur = r.wrap(a + relu_)
        cnt = (cnt + 1) // 2
    return cur[..., 0]


def reference(x: torch.Tensor, *, n: int, counts, layer=None, violations=None) -> torch.Tensor:
    """The row maxima (R,) of the packed rows x (P,) by the tournament (`tournament`)."""
    ring_input(x, n, min_bits=GATE_MIN_BITS)
    counts = check_counts(counts)
    _check_shape(x.shape, counts)
    cnt = torch.tensor(counts, dtype=torch.int64, device=x.device)
    row = torch.repeat_interleave(torch.arange(len(counts), device=x.device), cnt)
    col = torch.arange(x.numel(), device=x.device) - (torch.cumsum(cnt, 0) - cnt)[row]
    padded = torch.zeros((len(counts), max(counts)), dtype=x.dtype, device=x.device)
    padded[row, col] = x
    return tournament(padded, n=n, count=cnt)


def example(bits: int, count: int) -> Example:
    """Rows of 1, 2, ..., 8, 1, 2, ... entries (the last one cut to fill `count`)."""
    counts, k, left = [], 1, count
    while left:
        counts.append(min(k, left))
        left -= counts[-1]
        k = k % 8 + 1
    counts = tuple(counts)

    def draw(g):
        # a random level per row, entries below it by less than 2^(n-f) (wide) or 2^17 (small),
        # none wrapping past -2^(n-1)
        row = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
        level = Ring(bits).signed(g.ring(len(counts), bits)).clamp(
            min=(1 << (bits - F)) - (1 << (bits - 1)))[row]
        wide, small = g.ring(count, bits - F), g.ring(count, 17)
        return [(level - torch.where(row % 2 == 0, wide, small)) & low_mask(bits)]

    return Example((Input("x", 1, (count,), bits),), {"n": bits, "counts": counts},
                   reduced_bits(bits), draw)


GATE = register(Gate("softmax_max", layout, keygen, eval, reference, example))
