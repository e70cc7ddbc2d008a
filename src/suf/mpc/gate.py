"""The gate interface: a gate's key layout and exchanges declared once, and the registry.

A gate is one module of `suf.gates` that registers a `Gate` with

  layout(*shapes, **params) -> Layout     what one call writes and opens, in protocol order
  keygen(dealer, *r_in, op, **params)     walks the masks, writes both parties' keys -> r_out
  eval(party, *x_hat, op, **params)       walks the masked values with one key -> y_hat
  reference(*x, **params)                 the cleartext fixed-point function
  example(bits, count) -> Example         inputs (owner, shape, width), parameters and a draw of
                                          valid cleartext inputs: what `suf gate NAME` runs

The layout is not a comment beside the code: keygen writes its keys with `Dealer.deal(op, key,
values)` and eval reads them with `Party.read(op, key)` from the same `Key` declarations, and every
exchange is `Party.open(value, layout.open(name))` with the width the layout declares.  A gate's
cost (bytes each party sends, exchanges, key bytes) is therefore a fold over its layout (`cost`),
and tests/gates check the fold against the transport's counters and the dealt key bytes, and the
list of opens against a trace of the exchanges the eval made.

Steps of a layout:
  Key(op, parts, sigma_header)   one key per party, written under `<gate op>.<op>` (op "" = the
                                 gate's own op); parts Words / Bits / Raw in order
  Open(name, count, bits, tb)    one exchange: both parties send `count` `bits`-bit values
  Call(op, gate, shapes, params) a sub-gate (its own layout) under `<gate op>.<op>`
  Header(bytes)                  SIGMA's per-call key header bytes our payload leaves out (tallied
                                 apart to compare with sigma_cost_model.py)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from suf.core.config import NONLINEAR_MODES, TRUNCATION_MODES
from suf.core.errors import InputError
from suf.core.ring import packed_size


# -- the parts of a key ------------------------------------------------------------------------
@dataclass(frozen=True)
class Words:
    """`count` ring words additively shared mod 2^bits, stored as `type_bytes`-byte words."""
    name: str
    count: int
    bits: int
    type_bytes: int = 8

    @property
    def nbytes(self) -> int:
        return self.count * self.type_bytes


@dataclass(frozen=True)
class Bits:
    """`count` XOR-shared bits, packed 32 to a word (SIGMA's `writeShares` for bw = 1)."""
    name: str
    count: int

    @property
    def nbytes(self) -> int:
        return packed_size(1, self.count)


@dataclass(frozen=True)
class Raw:
    """An FSS key's bytes (DPF, comparison, LUT: suf.fss `to_payload`), made in pairs."""
    name: str
    nbytes: int


Part = Words | Bits | Raw


# -- the steps of a layout ---------------------------------------------------------------------
@dataclass(frozen=True)
class Key:
    op: str
    parts: tuple
    sigma_header: int = 0

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for p in self.parts)


@dataclass(frozen=True)
class Open:
    name: str
    count: int
    bits: int
    type_bytes: int = 8

    @property
    def sent(self) -> int:
        return packed_size(self.bits, self.count, self.type_bytes) if self.count else 0


@dataclass(frozen=True)
class Call:
    op: str
    gate: str
    shapes: tuple
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Header:
    bytes: int


class Layout:
    """The steps of one gate call, in protocol order, with lookups by name; `out` is the output's
    shape when it is not the first input's (a matmul's)."""

    def __init__(self, steps, out: tuple | None = None):
        self.steps = list(steps)
        self.out = out

    def key(self, op: str = "") -> Key:
        for s in self.steps:
            if isinstance(s, Key) and s.op == op:
                return s
        raise KeyError(f"no key {op!r} in this layout")

    def open(self, name: str) -> Open:
        for s in self.steps:
            if isinstance(s, Open) and s.name == name:
                return s
        raise KeyError(f"no exchange {name!r} in this layout")

    def calls(self, op: str) -> list[Call]:
        return [s for s in self.steps if isinstance(s, Call) and s.op == op]


# -- a gate and the registry -------------------------------------------------------------------
@dataclass(frozen=True)
class Input:
    """One input of a gate run on its own: the party that holds it in the clear (the client P1
    holds activations, the model owner P0 weights), its shape and its ring width."""
    name: str
    owner: int
    shape: tuple
    bits: int


@dataclass(frozen=True)
class Example:
    """A gate run on its own (`suf gate NAME`): its inputs, parameters, the width of its output,
    and `draw(stream) -> [x, ...]`, cleartext inputs inside the gate's valid range."""
    inputs: tuple
    params: dict
    out_bits: int
    draw: Callable


@dataclass(frozen=True)
class Gate:
    name: str
    layout: Callable[..., Layout]
    keygen: Callable
    eval: Callable
    reference: Callable
    example: Callable[[int, int], Example]


REGISTRY: dict[str, Gate] = {}


def register(gate: Gate) -> Gate:
    if gate.name in REGISTRY:
        raise ValueError(f"gate {gate.name!r} registered twice")
    REGISTRY[gate.name] = gate
    return gate


def get(name: str) -> Gate:
    if name not in REGISTRY:
        raise KeyError(f"unknown gate {name!r}; registered: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


# -- the nonlinear mode: which gate computes a nonlinear function -------------------------------
SUF_FORMS = ("gelu", "silu", "nexp", "inverse", "rsqrt")  # each has "suf_<name>", same interface


def check_nonlinear(mode) -> str:
    """`mode` if it is a nonlinear mode ("sigma" or "suf"); for "suf", the SUF gates must be
    registered.  InputError otherwise."""
    if mode not in NONLINEAR_MODES:
        raise InputError(f"nonlinear mode must be one of {', '.join(map(repr, NONLINEAR_MODES))}, "
                         f"got {mode!r}")
    missing = [f"suf_{g}" for g in SUF_FORMS if mode == "suf" and f"suf_{g}" not in REGISTRY]
    if missing:
        raise InputError(f"nonlinear mode 'suf' needs the SUF gates, not registered: "
                         f"{', '.join(missing)}")
    return mode


def nonlinear_gate(name: str, mode: str) -> str:
    """The gate that computes SIGMA's gate `name` in nonlinear `mode`: "suf_<name>" in SUF mode
    for the SUF_FORMS, `name` otherwise."""
    check_nonlinear(mode)
    return f"suf_{name}" if mode == "suf" and name in SUF_FORMS else name


# -- the truncation mode: which gate truncates products and LayerNorm's mean --------------------
def check_truncation(mode) -> str:
    """`mode` if it is a truncation mode ("faithful" or "gap"); InputError otherwise."""
    if mode not in TRUNCATION_MODES:
        raise InputError(f"truncation mode must be one of "
                         f"{', '.join(map(repr, TRUNCATION_MODES))}, got {mode!r}")
    return mode


def truncation_gate(mode: str) -> str:
    """The gate of truncation `mode`: "trfloor" (faithful) or "tr_with_slack" (gap)."""
    return "trfloor" if check_truncation(mode) == "faithful" else "tr_with_slack"


# -- cost: a fold over the layout ----------------------------------------------------------------
@dataclass
class Cost:
    """One party's cost of some gate calls: bytes it sends (it receives as many), exchanges, key
    payload bytes, SIGMA's per-call key headers (apart), and the same figures per gate name
    (`by_gate`, inclusive of sub-gates) for reports."""
    sent: int = 0
    exchanges: int = 0
    key: int = 0
    sigma_header: int = 0
    by_gate: dict = field(default_factory=dict)

    def __iadd__(self, other: "Cost") -> "Cost":
        self.sent += other.sent
        self.exchanges += other.exchanges
        self.key += other.key
        self.sigma_header += other.sigma_header
        for g, c in other.by_gate.items():
            mine = self.by_gate.setdefault(g, [0, 0, 0])
            for i in range(3):
                mine[i] += c[i]
        return self

    def __add__(self, other: "Cost") -> "Cost":
        out = Cost()
        out += self
        out += other
        return out


def cost(gate: str, *shapes, **params) -> Cost:
    """The cost of one call of `gate` on inputs of `shapes`: the fold of its layout."""
    c = Cost()
    for s in get(gate).layout(*shapes, **params).steps:
        if isinstance(s, Key):
            c.key += s.nbytes
            c.sigma_header += s.sigma_header
        elif isinstance(s, Open):
            if s.count:
                c.sent += s.sent
                c.exchanges += 1
        elif isinstance(s, Header):
            c.sigma_header += s.bytes
        elif isinstance(s, Call):
            c += cost(s.gate, *s.shapes, **s.params)
        else:
            raise TypeError(f"unknown layout step {s!r}")
    own = c.by_gate.setdefault(gate, [0, 0, 0])
    own[0] += c.sent
    own[1] += c.exchanges
    own[2] += c.key
    return c


def opens(gate: str, *shapes, **params) -> list[Open]:
    """Every exchange of one call, sub-gates included, in protocol order."""
    out = []
    for s in get(gate).layout(*shapes, **params).steps:
        if isinstance(s, Open) and s.count:
            out.append(s)
        elif isinstance(s, Call):
            out += opens(s.gate, *s.shapes, **s.params)
    return out
