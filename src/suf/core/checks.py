"""Input preconditions of the SIGMA gates, checked on cleartext values.

SIGMA's protocols are exact only inside hard-coded ranges (sigma_spec §6.9): outside them the
secure output silently differs from the fixed-point function (and for TrWithSlack it even depends
on the dealer's random mask).  Every `reference...` function checks its preconditions with
`check_range` and reports the first violating element as a `RangeViolation`: raised by default, or
appended to a caller's list (`violations=[]`), in which case the reference goes on and returns what
its formula gives.
"""
from __future__ import annotations

import torch

from suf.core.config import debug_checks
from suf.core.errors import RangeViolation
from suf.core.ring import Ring


def check_range(values: torch.Tensor, lo: int, hi: int, op: str, *, layer: str | None = None,
                violations: list | None = None, where: torch.Tensor | None = None) -> bool:
    """Check lo <= values < hi elementwise (only where `where` is true, if given).

    On the first violating element (in C order) raise a RangeViolation, or append it to
    `violations` when a list is given.  Returns True when every element is inside.
    """
    bad = (values < lo) | (values >= hi)
    if where is not None:
        bad &= where
    if not bool(bad.any()):
        return True
    first = tuple(int(i) for i in torch.nonzero(bad)[0].tolist())
    err = RangeViolation(op, first, int(values[first].item()), (lo, hi), layer)
    if violations is None:
        raise err
    violations.append(err)
    return False


def check_bits(n: int, min_bits: int = 2, max_bits: int = 63, what: str = "ring bitwidth n") -> None:
    """The one bit-width check: ValueError unless n is an int in [min_bits, max_bits]."""
    if not isinstance(n, int) or isinstance(n, bool) or not min_bits <= n <= max_bits:
        raise ValueError(f"{what} must be an int in [{min_bits}, {max_bits}], got {n!r}")


def check_party(party) -> int:
    """The one party check: ValueError unless party is the int 0 or 1; returns it."""
    if isinstance(party, bool) or not isinstance(party, int) or party not in (0, 1):
        raise ValueError(f"party must be 0 or 1, got {party!r}")
    return party


def ring_input(x: torch.Tensor, n: int, what: str = "x", *, min_bits: int = 2,
               max_bits: int = 63) -> Ring:
    """Validate a bitwidth n in [min_bits, max_bits] and that x holds values of Z_{2^n}.

    Returns Ring(n).  TypeError for a non-tensor or a dtype other than int64, ValueError for a bad
    bitwidth or a value outside [0, 2^n).
    """
    check_bits(n, min_bits, max_bits)
    ring = Ring(n)
    ring.check(x, what)
    return ring


def check_gate_input(x: torch.Tensor, n: int, what: str = "x", *, min_bits: int = 2,
                     max_bits: int = 63) -> Ring:
    """The online form of `ring_input`: the bitwidth and x's type (host-side checks, no GPU sync)
    always; the values only in debug mode (SUF_DEBUG=1, suf.core.config.debug_checks), since
    scanning them costs a device synchronisation per gate.  Returns Ring(n)."""
    check_bits(n, min_bits, max_bits)
    ring = Ring(n)
    if debug_checks():
        ring.check(x, what)
    else:
        ring.check_type(x, what)
    return ring
