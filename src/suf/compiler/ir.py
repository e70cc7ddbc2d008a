"""The SUF IR (suf_spec.md §2.1): a univariate fixed-point function as intervals with polynomials,
an additive table window, and the exact range reduction that makes a small table index exact.

A `Descriptor` describes f: Z_{2^n_in} -> Z_{2^n_out} on the signed inputs x in [lo, hi):

  1. reduce   y = x                      ("none", b = n_in)
              y = x mod 2^b              ("low": exact when f depends on x mod 2^b only)
              y = floor(x / 2^s) mod 2^b ("shift": TrWithSlack, exact for |x| < 2^(n_in-2))
  2. pieces   Z_{2^b} (y read unsigned) is cut at starts[0] < starts[1] < ... into cyclic arcs
              I_i = [starts[i], starts[i+1]) (the last wraps to starts[0]); interval i carries the
              polynomial P_i(x) = Σ_j polys[i][j]·x^j in the *input* x (signed), so a ReLU-like
              piece (P = x) selects the input exactly.
  3. window   optionally one table T of 2^k entries on the cyclic window y in [w, w + 2^k):
              f adds T[(y - w) mod 2^b] there and nothing elsewhere.  The window is its own range
              gate: no low bits of an un-reduced input ever index a table (suf_spec §4.3, §7).
  f(x) = P_{i(y)}(x) + [y in window]·T[y - w]  mod 2^n_out.

`evaluate` is the cleartext evaluator; `check` compares a descriptor with its cleartext reference
on given inputs and names the first mismatch; `fit_window` builds a descriptor from a reference
(constant tails + one table window) and proves it equal to the reference on the whole domain
(every input of a small domain; on a large one every input of the window and, for a monotone
reference, the constant tails by their end points: a monotone function equal at both ends of an
interval is constant on it).  suf.compiler.lower turns a descriptor into an FSS gate.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from suf.core.checks import check_bits
from suf.core.ring import Ring, low_mask

REDUCTIONS = ("none", "low", "shift")
MAX_DOMAIN_CHECK = 1 << 24  # domains of at most this many inputs are checked input by input
MAX_WINDOW_BITS = 22  # the softmax inverse at L = 1024 reads S mod 2^22


@dataclass(frozen=True)
class Reduce:
    kind: str = "none"
    bits: int = 0  # b, the width of y (n_in for "none")
    shift: int = 0  # s, for "shift"


@dataclass(frozen=True)
class Window:
    start: int  # w in [0, 2^b)
    table: tuple  # 2^k signed ints

    @property
    def k(self) -> int:
        return len(self.table).bit_length() - 1


@dataclass(frozen=True)
class Descriptor:
    name: str
    n_in: int
    n_out: int
    lo: int  # the domain: signed x in [lo, hi)
    hi: int
    reduce: Reduce
    starts: tuple  # interval starts on y (unsigned), increasing; the last arc wraps around
    polys: tuple  # one tuple of coefficients per interval
    window: Window | None = None

    def __post_init__(self):
        check_bits(self.n_in, 2, 63, "n_in")
        check_bits(self.n_out, 2, 63, "n_out")
        half = 1 << (self.n_in - 1)
        if not -half <= self.lo < self.hi <= half:
            raise ValueError(f"{self.name}: the domain [{self.lo}, {self.hi}) must be a non-empty "
                             f"part of the signed {self.n_in}-bit range")
        r = self.reduce
        if r.kind not in REDUCTIONS:
            raise ValueError(f"{self.name}: reduce must be one of {REDUCTIONS}, got {r.kind!r}")
        if r.kind == "none" and (r.bits != self.n_in or r.shift):
            raise ValueError(f"{self.name}: reduce 'none' keeps all {self.n_in} bits")
        if r.kind == "low" and (not 1 <= r.bits <= self.n_in or r.shift):
            raise ValueError(f"{self.name}: reduce 'low' needs 1 <= bits <= {self.n_in}")
        if r.kind == "shift" and not (1 <= r.shift < self.n_in - 1 and 2 <= r.bits <= self.n_in):
            raise ValueError(f"{self.name}: reduce 'shift' needs 1 <= shift < n_in - 1")
        b = r.bits
        if not self.starts or len(self.starts) != len(self.polys) or self.starts[0] < 0 or \
                any(a >= c for a, c in zip(self.starts, self.starts[1:])) or self.starts[-1] >= 1 << b:
            raise ValueError(f"{self.name}: starts must increase inside [0, 2^{b}) with one "
                             f"polynomial per interval")
        if any(len(p) == 0 for p in self.polys):
            raise ValueError(f"{self.name}: every interval needs a polynomial (use (0,) for 0)")
        if self.degree > 0 and self.n_out > self.n_in:
            raise ValueError(f"{self.name}: polynomials of degree >= 1 need n_out <= n_in "
                             f"(x is known mod 2^n_in only)")
        w = self.window
        if w is not None:
            size = len(w.table)
            if size < 1 or size & (size - 1) or size > 1 << min(b, MAX_WINDOW_BITS):
                raise ValueError(f"{self.name}: the window table needs 2^k entries, "
                                 f"k <= min(b, {MAX_WINDOW_BITS})")
            if not 0 <= w.start < 1 << b:
                raise ValueError(f"{self.name}: the window start must lie in [0, 2^{b})")

    @property
    def bits(self) -> int:
        """b, the width of the reduced input y."""
        return self.reduce.bits

    @property
    def degree(self) -> int:
        return max(len(p) for p in self.polys) - 1

    @property
    def intervals(self) -> int:
        return len(self.starts)


# ================================================================================================
# the cleartext evaluator
# ================================================================================================
def reduced(desc: Descriptor, x: torch.Tensor) -> torch.Tensor:
    """y (unsigned, Z_{2^b}) of ring values x of Z_{2^n_in}."""
    r = desc.reduce
    if r.kind == "shift":
        return (Ring(desc.n_in).signed(x) >> r.shift) & low_mask(r.bits)
    return x & low_mask(r.bits)


# tensors made from a descriptor's tuples, once per (descriptor, device): the inverse's table
# has 2^19 entries, and an online call must not rebuild it (the descriptor is kept alive here)
_TENSORS: dict = {}


def _cached(desc, what: str, device, make) -> torch.Tensor:
    dev = torch.device("cpu" if device is None else device)
    key = (id(desc), what, str(dev))
    hit = _TENSORS.get(key)
    if hit is None or hit[0] is not desc:
        cpu = _TENSORS.get((id(desc), what, "cpu"))
        t = cpu[1] if cpu is not None and cpu[0] is desc else make()
        hit = _TENSORS[key] = (desc, t.to(dev))
    return hit[1]


def coefficients(desc: Descriptor, device=None) -> torch.Tensor:
    """The polynomials as an int64 (intervals, degree + 1) tensor, coefficients mod 2^64."""
    def make():
        d = desc.degree + 1
        rows = [[wrap64(c) for c in p] + [0] * (d - len(p)) for p in desc.polys]
        return torch.tensor(rows, dtype=torch.int64)
    return _cached(desc, "coefficients", device, make)


def window_table(desc: Descriptor, device=None) -> torch.Tensor:
    """The window's table as an int64 tensor (entries mod 2^64)."""
    return _cached(desc, "window", device, lambda: torch.tensor(
        [wrap64(t) for t in desc.window.table], dtype=torch.int64))


def window_weights(desc: Descriptor, device=None) -> torch.Tensor:
    """The window's table reversed (the order in which the DPF's window points meet it)."""
    return _cached(desc, "weights", device, lambda: window_table(desc).flip(0))


def starts_tensor(desc, device=None) -> torch.Tensor:
    return _cached(desc, "starts", device,
                   lambda: torch.tensor(desc.starts, dtype=torch.int64))


def table_bound(desc: Descriptor) -> int:
    """max |T| over the window's table."""
    return int(window_table(desc).abs().max())


def evaluate(desc: Descriptor, x: torch.Tensor) -> torch.Tensor:
    """f(x) for ring values x of Z_{2^n_in} (any shape), as ring values of Z_{2^n_out}."""
    Ring(desc.n_in).check(x, "x")
    xs = Ring(desc.n_in).signed(x)
    y = reduced(desc, x)
    # the arc holding y; below starts[0], y lies on the last arc (it wraps through 0)
    i = (torch.searchsorted(starts_tensor(desc, x.device), y.contiguous(), right=True) - 1) % \
        desc.intervals
    coef = coefficients(desc, x.device)[i]  # x.shape + (d + 1,)
    out = torch.zeros_like(x)
    power = torch.ones_like(x)
    for j in range(coef.shape[-1]):
        out = out + coef[..., j] * power
        power = power * xs
    w = desc.window
    if w is not None:
        off = (y - w.start) & low_mask(desc.bits)
        inside = off < len(w.table)
        table = window_table(desc, x.device)
        out = out + torch.where(inside, table[off.clamp(max=len(w.table) - 1)], 0)
    return out & low_mask(desc.n_out)


def check(desc: Descriptor, reference, x: torch.Tensor) -> None:
    """ValueError naming the first input of x (ring values) where the descriptor and the
    reference (a function of ring values -> ring values of Z_{2^n_out}) differ."""
    got, want = evaluate(desc, x), reference(x) & low_mask(desc.n_out)
    bad = got != want
    if bool(bad.any()):
        i = int(torch.nonzero(bad.flatten())[0])
        xs = Ring(desc.n_in).signed(x.flatten()[i:i + 1]).item()
        raise ValueError(f"{desc.name}: the descriptor gives {got.flatten()[i].item()} at x = {xs}, "
                         f"the reference {want.flatten()[i].item()}")


def edges(desc: Descriptor) -> torch.Tensor:
    """Signed inputs on every interval and window edge ±1 (and the domain's ends), inside the
    domain: where an exact lowering is most likely to slip."""
    b, r = desc.bits, desc.reduce
    cuts = set(desc.starts)
    if desc.window is not None:
        cuts |= {desc.window.start, (desc.window.start + len(desc.window.table)) % (1 << b)}
    pts = {desc.lo, desc.hi - 1, 0, -1, 1}
    for c in cuts:
        ys = c - (1 << b) if c >= 1 << (b - 1) else c  # y signed
        base = [ys << r.shift] if r.kind == "shift" else \
            [ys + m * (1 << b) for m in (-1, 0, 1)] if r.kind == "low" else [ys]
        for v in base:
            for dv in (-1, 0, 1):
                pts.add(v + dv)
                if r.kind == "shift":
                    pts.add(v + dv * (1 << r.shift) + (1 << r.shift) - 1)
    pts = sorted(p for p in pts if desc.lo <= p < desc.hi)
    return torch.tensor(pts, dtype=torch.int64) & low_mask(desc.n_in)


# ================================================================================================
# builders
# ================================================================================================
def fit_window(name: str, reference, *, n_in: int, n_out: int, lo: int, hi: int,
               reduce_low: int | None = None, monotone: bool = False,
               max_window_bits: int = 16) -> Descriptor:
    """A descriptor equal to `reference` on [lo, hi): constant tails and one table window.

    reference: ring values of Z_{2^n_in} -> ring values of Z_{2^n_out} (vectorised torch).
    reduce_low: b when f depends on x mod 2^b only (then the domain is the whole ring and the
    window may cover all of Z_{2^b}; checked on random lifts of every reduced input).
    monotone: declare the reference monotone, so that constant tails are proven by their ends.

    The window is the smallest power-of-two run of inputs outside which f is constant on each
    side; its table holds f minus the right tail's constant, the left tail is its own interval.
    Raises ValueError when that needs more than 2^max_window_bits entries or the check fails.
    """
    check_bits(max_window_bits, 0, MAX_WINDOW_BITS, "max_window_bits")
    if reduce_low is not None:
        return _fit_reduced(name, reference, n_in, n_out, reduce_low, max_window_bits)
    size = hi - lo
    dense_lo = lo if size <= MAX_DOMAIN_CHECK else max(lo, -(1 << (max_window_bits + 1)))
    dense_hi = hi if size <= MAX_DOMAIN_CHECK else min(hi, 1 << (max_window_bits + 1))
    if size > MAX_DOMAIN_CHECK and not monotone:
        raise ValueError(f"{name}: a domain of {size} inputs is checked exhaustively only up to "
                         f"{MAX_DOMAIN_CHECK}; declare the reference monotone or reduce it")
    xs = torch.arange(dense_lo, dense_hi, dtype=torch.int64)
    f = _signed_out(reference(xs & low_mask(n_in)), n_out)
    left, right = _end_value(reference, lo, n_in, n_out), _end_value(reference, hi - 1, n_in, n_out)
    varying = torch.nonzero(f != right).flatten()
    not_left = torch.nonzero(f != left).flatten()
    if varying.numel() == 0:  # constant on the dense part: one interval
        a, z = dense_lo, dense_lo
    else:
        a = int(xs[not_left[0]]) if not_left.numel() else dense_hi
        z = int(xs[varying[-1]])
    k = max(0, (z - a).bit_length())
    if z >= a and (1 << k) < z - a + 1:
        k += 1
    if k > max_window_bits:
        raise ValueError(f"{name}: f varies over [{a}, {z}], more than a window of "
                         f"2^{max_window_bits} entries")
    if z - lo + 1 <= 1 << k:  # the window can absorb the left tail
        a = lo
    b = n_in
    # table entries past the domain's end are never read: give them the right tail's value
    run = torch.arange(a, a + (1 << k)).clamp(max=hi - 1)
    tab = _signed_out(reference(run & low_mask(n_in)), n_out) - right
    # a left tail inside the window needs no interval of its own
    pieces = [(-(1 << (b - 1)), (left,))] if a > lo else []
    starts, polys = partition(b, pieces + [(min(a, -(1 << (b - 1))) if a == lo else a, (right,))])
    desc = Descriptor(name, n_in, n_out, lo, hi, Reduce("none", n_in), starts, polys,
                      Window(a & low_mask(b), tuple(int(t) for t in tab)))
    check(desc, reference, xs & low_mask(n_in))
    if size > MAX_DOMAIN_CHECK:  # monotone tails: equal ends prove them constant
        for end_lo, end_hi, val in ((lo, dense_lo, left), (dense_hi, hi, right)):
            if end_hi > end_lo and {_end_value(reference, end_lo, n_in, n_out),
                                    _end_value(reference, end_hi - 1, n_in, n_out)} != {val}:
                raise ValueError(f"{name}: f is not constant on [{end_lo}, {end_hi})")
        check(desc, reference, edges(desc))
    return desc


def _fit_reduced(name, reference, n_in, n_out, b, max_window_bits) -> Descriptor:
    check_bits(b, 1, min(n_in, MAX_WINDOW_BITS), "reduce_low")
    if b > max_window_bits:
        raise ValueError(f"{name}: a reduced ring of 2^{b} inputs needs max_window_bits >= {b}")
    ys = torch.arange(1 << b, dtype=torch.int64)
    tab = _signed_out(reference(ys), n_out)
    half = 1 << (n_in - 1)
    desc = Descriptor(name, n_in, n_out, -half, half, Reduce("low", b), (0,), ((0,),),
                      Window(0, tuple(int(t) for t in tab)))
    check(desc, reference, ys)
    gen = torch.Generator().manual_seed(b)
    lift = torch.randint(0, 1 << (n_in - b), (ys.numel(),), generator=gen) << b
    check(desc, reference, (ys + lift) & low_mask(n_in))  # f depends on x mod 2^b only
    return desc


def partition(b: int, pieces: list) -> tuple[tuple, tuple]:
    """Intervals of the signed line [-2^(b-1), 2^(b-1)) given as (signed start, poly), the first at
    -2^(b-1), as cyclic arcs on Z_{2^b}: (unsigned starts, polys), equal neighbours merged, the
    last piece joined to the first through 2^(b-1) when their polynomials agree."""
    half = 1 << (b - 1)
    merged = []
    for s, p in pieces:
        if -half <= s < half and (not merged or p != merged[-1][1]):
            merged.append((s, p))
    if len(merged) > 1 and merged[0][1] == merged[-1][1]:
        merged.pop(0)
    arcs = sorted((s & low_mask(b), p) for s, p in merged)
    return tuple(s for s, _ in arcs), tuple(p for _, p in arcs)


def _end_value(reference, x: int, n_in: int, n_out: int) -> int:
    return int(_signed_out(reference(torch.tensor([x]) & low_mask(n_in)), n_out)[0])


def _signed_out(v: torch.Tensor, n_out: int) -> torch.Tensor:
    return Ring(n_out).signed(v & low_mask(n_out))


def wrap64(c: int) -> int:
    """An int as the int64 with the same value mod 2^64."""
    c &= (1 << 64) - 1
    return c - (1 << 64) if c >= 1 << 63 else c


# ================================================================================================
# predicates and Boolean helpers
# ================================================================================================
PREDICATES = ("lt", "msb", "ltlow")


@dataclass(frozen=True)
class Predicate:
    """A bit of the input: "lt" 1{y < value} (y signed on b bits), "msb" MSB(y) = 1{y < 0},
    "ltlow" 1{(x mod 2^f) < value} on the input's low f bits."""
    kind: str
    value: int = 0
    f: int = 0


@dataclass(frozen=True)
class BitsDescriptor:
    """Boolean outputs of predicates of one input: each output an expression over the
    predicates, as nested tuples ("p", i), ("not", e), ("xor", e, e), ("and", e, e), ("const", c).
    Shares the input's domain and reduction with `Descriptor`."""
    name: str
    n_in: int
    lo: int
    hi: int
    reduce: Reduce
    predicates: tuple
    outputs: tuple

    def __post_init__(self):
        check_bits(self.n_in, 2, 63, "n_in")
        Descriptor(self.name, self.n_in, 2, self.lo, self.hi, self.reduce, (0,), ((0,),))
        b, half = self.reduce.bits, 1 << (self.reduce.bits - 1)
        for p in self.predicates:
            if p.kind not in PREDICATES:
                raise ValueError(f"{self.name}: predicate kind must be one of {PREDICATES}, "
                                 f"got {p.kind!r}")
            if p.kind == "lt" and not -half < p.value < half:  # else empty or the whole ring
                raise ValueError(f"{self.name}: lt needs -2^{b - 1} < value < 2^{b - 1}")
            if p.kind == "ltlow" and not (1 <= p.f <= self.n_in and 0 < p.value < 1 << p.f):
                raise ValueError(f"{self.name}: ltlow needs 1 <= f <= n_in and 0 < value < 2^f")
        if not self.outputs:
            raise ValueError(f"{self.name}: needs at least one output")
        for e in self.outputs:
            _check_expr(e, len(self.predicates), self.name)

    @property
    def bits(self) -> int:
        return self.reduce.bits


def _check_expr(e, count: int, name: str) -> None:
    arity = {"p": 1, "const": 1, "not": 1, "xor": 2, "and": 2}
    if not isinstance(e, tuple) or not e or e[0] not in arity or len(e) != 1 + arity[e[0]]:
        raise ValueError(f"{name}: bad expression {e!r}")
    if e[0] == "p" and not (isinstance(e[1], int) and 0 <= e[1] < count):
        raise ValueError(f"{name}: no predicate {e[1]!r}")
    if e[0] == "const" and e[1] not in (0, 1):
        raise ValueError(f"{name}: constants are 0 or 1, got {e[1]!r}")
    if e[0] in ("not", "xor", "and"):
        for sub in e[1:]:
            _check_expr(sub, count, name)


def predicate_interval(p: Predicate, b: int) -> tuple[int, int]:
    """The cyclic interval [a, c) of unsigned y (Z_{2^b}) where an "lt"/"msb" predicate holds."""
    beta = 0 if p.kind == "msb" else p.value
    return 1 << (b - 1), beta & low_mask(b)


def evaluate_predicates(desc: BitsDescriptor, x: torch.Tensor) -> list:
    Ring(desc.n_in).check(x, "x")
    y = Ring(desc.bits).signed(reduced(desc, x))
    out = []
    for p in desc.predicates:
        if p.kind == "ltlow":
            out.append(((x & low_mask(p.f)) < p.value).to(torch.int64))
        else:
            out.append((y < (0 if p.kind == "msb" else p.value)).to(torch.int64))
    return out


def evaluate_expr(e, preds: list, like: torch.Tensor) -> torch.Tensor:
    if e[0] == "p":
        return preds[e[1]]
    if e[0] == "const":
        return torch.full_like(like, e[1])
    if e[0] == "not":
        return 1 - evaluate_expr(e[1], preds, like)
    a, b = evaluate_expr(e[1], preds, like), evaluate_expr(e[2], preds, like)
    return a ^ b if e[0] == "xor" else a & b


def evaluate_bits(desc: BitsDescriptor, x: torch.Tensor) -> torch.Tensor:
    """The outputs' bits, shape x.shape + (outputs,)."""
    preds = evaluate_predicates(desc, x)
    return torch.stack([evaluate_expr(e, preds, x) for e in desc.outputs], dim=-1)
