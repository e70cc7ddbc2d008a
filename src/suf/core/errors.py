"""One error hierarchy: every error suf raises on purpose is a `SufError`, so that a caller (the
CLI above all) can tell a user's mistake or a failed peer from a bug, and report it in one line.

Each class also derives from the built-in exception it refines (ValueError, ConnectionError, ...),
so code that catches those keeps working.
"""
from __future__ import annotations


class SufError(Exception):
    """Base of every error suf raises on purpose (bad input, bad key files, peers, ranges)."""


class InputError(SufError, ValueError):
    """A bad argument: a shape, a model name or path, a text, an option value."""


class KeyFileError(SufError, ValueError):
    """A key or deployment file that is missing, truncated, corrupt, used, or made for another
    party, model or dealing."""


class PeerError(SufError, ConnectionError):
    """The peer disconnected, stalled past the timeout, or sent malformed data."""


class HandshakeError(SufError, ValueError):
    """The peers disagree on the dealing, model or party roles."""


class DoesNotFit(SufError, RuntimeError):
    """A configuration whose keys or memory do not fit the machine (refused up front)."""


def _fmt(v: int) -> str:
    """An integer, written as ±2^k when it is a power of two of 2^8 or more."""
    a = abs(v)
    if a >= 256 and a & (a - 1) == 0:
        return f"{'-' if v < 0 else ''}2^{a.bit_length() - 1}"
    return str(v)


class RangeViolation(SufError, ValueError):
    """An input outside the range where a SIGMA protocol equals its cleartext reference.

    Attributes: `op` (what was checked), `layer` (the caller's context string or None), `index`
    (the element's multi-index in the checked tensor), `value` (its value) and `bound`
    (lo, hi): the valid range is lo <= value < hi.
    """

    def __init__(self, op: str, index: tuple[int, ...], value: int, bound: tuple[int, int],
                 layer: str | None = None):
        self.op = op
        self.layer = layer
        self.index = index
        self.value = value
        self.bound = bound
        where = f"{op} [{layer}]" if layer else op
        super().__init__(f"{where}: element {index} = {_fmt(value)} is outside the valid range "
                         f"[{_fmt(bound[0])}, {_fmt(bound[1])})")
