"""Communication counters measured by the transport, scoped by phase, layer and op.

The transport calls `Stats.record(...)` after every completed transfer; the bytes, exchanges and
syncs go to the innermost open scope.  Scopes nest (`with stats.scope(op="softmax", layer=3)`);
a scope's totals are its own counts plus its children's.  Every scope has a phase, "setup"
(one-time work: handshake, publishing masked weights) or "online"; a scope that names none
inherits its parent's, and the root is "online" unless told otherwise.  Likewise `op` and `layer`
are inherited when not given, so `scope(layer=3)` around `scope(op="gelu")` reports gelu of layer 3.

Times: `comm_s` is the time spent inside transport calls (like SIGMA's comm time), attributed like
bytes; `wall_s` is the wall-clock time a scope was open (inclusive of its children), measured on
the host: CUDA work still queued when a scope closes is not waited for.
"""
from __future__ import annotations

import dataclasses
import io
import time
from contextlib import contextmanager

PHASES = ("setup", "online")


@dataclasses.dataclass
class Counters:
    """What one scope (or a sum of scopes) moved.  `bytes_*` are data bytes; syncs apart."""

    bytes_sent: int = 0
    bytes_recv: int = 0
    exchanges: int = 0
    syncs: int = 0
    sync_bytes_sent: int = 0
    sync_bytes_recv: int = 0
    comm_s: float = 0.0

    def __iadd__(self, other: "Counters") -> "Counters":
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self

    @property
    def bytes(self) -> int:
        """Data bytes in both directions (SIGMA's comm figures also add the sync bytes)."""
        return self.bytes_sent + self.bytes_recv

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


class _Scope:
    def __init__(self, parent: "_Scope | None", op, layer, phase: str):
        self.parent = parent
        self.given = (op, layer)
        self.key = (op, layer, phase)  # its key among its parent's children
        self.op = op if op is not None or parent is None else parent.op
        self.layer = layer if layer is not None or parent is None else parent.layer
        self.phase = phase
        self.own = Counters()
        self.wall_s = 0.0
        self.entries = 0
        self.children: dict[tuple, _Scope] = {}

    def label(self) -> str:
        op, layer = self.given
        parts = [p for p in (None if layer is None else f"layer {layer}", op) if p is not None]
        return " ".join(parts) if parts else "(scope)"

    def path(self) -> list[str]:
        node, labels = self, []
        while node.parent is not None:
            labels.append(node.label())
            node = node.parent
        return labels[::-1]

    def total(self) -> Counters:
        c = Counters()
        c += self.own
        for child in self.children.values():
            c += child.total()
        return c

    def walk(self, depth: int = 0):
        yield depth, self
        for child in self.children.values():
            yield from child.walk(depth + 1)


class Stats:
    """Scoped counters of one party's transport (see the module docstring)."""

    def __init__(self, phase: str = "online"):
        _check_phase(phase)
        self._root = _Scope(None, None, None, phase)
        self._stack = [self._root]
        self._t0 = time.perf_counter()

    # -- scoping --------------------------------------------------------------------------------
    @contextmanager
    def scope(self, op: str | None = None, layer: int | None = None, phase: str | None = None):
        """Attribute the transfers made inside the `with` block to (phase, layer, op)."""
        if op is not None and (not isinstance(op, str) or not op):
            raise TypeError(f"scope op must be a non-empty str, got {op!r}")
        if layer is not None and (not isinstance(layer, int) or isinstance(layer, bool)):
            raise TypeError(f"scope layer must be an int, got {layer!r}")
        parent = self._stack[-1]
        if phase is None:
            phase = parent.phase
        _check_phase(phase)
        key = (op, layer, phase)
        node = parent.children.get(key)
        if node is None:
            node = parent.children[key] = _Scope(parent, op, layer, phase)
        node.entries += 1
        self._stack.append(node)
        start = time.perf_counter()
        try:
            yield
        finally:
            node.wall_s += time.perf_counter() - start
            self._stack.pop()

    def path(self) -> tuple:
        """The open scopes, outermost first, as (op, layer, phase) keys (see `following`)."""
        return tuple(node.key for node in self._stack[1:])

    @contextmanager
    def following(self):
        """Yields `go(path)`: it moves the open scopes to `path` (a `path()` recorded earlier,
        possibly by another Stats), closing those not on it and opening the missing ones; all
        are closed when the block ends.  Work recorded under scopes and replayed later is
        attributed to the same scopes this way (suf.runtime.graphs)."""
        opened: list = []  # [(key, the scope's context manager)], outermost first

        def go(path: tuple) -> None:
            keep = 0
            while keep < min(len(opened), len(path)) and opened[keep][0] == path[keep]:
                keep += 1
            while len(opened) > keep:
                opened.pop()[1].__exit__(None, None, None)
            for key in path[keep:]:
                cm = self.scope(op=key[0], layer=key[1], phase=key[2])
                cm.__enter__()
                opened.append((key, cm))

        try:
            yield go
        finally:
            go(())

    def where(self) -> str:
        """The innermost open scope, as a path (for error messages)."""
        node = self._stack[-1]
        return f"{node.phase}: " + (" / ".join(node.path()) or "(no scope)")

    # -- recording (called by the transport) ----------------------------------------------------
    def record(self, sent: int = 0, recv: int = 0, exchanges: int = 0, syncs: int = 0,
               comm_s: float = 0.0) -> None:
        """Add one completed transfer to the innermost scope; a sync's bytes go to the sync columns."""
        own = self._stack[-1].own
        if syncs:
            own.syncs += syncs
            own.sync_bytes_sent += sent
            own.sync_bytes_recv += recv
        else:
            own.bytes_sent += sent
            own.bytes_recv += recv
        own.exchanges += exchanges
        own.comm_s += comm_s

    # -- reading --------------------------------------------------------------------------------
    def total(self, phase: str | None = None) -> Counters:
        """Everything counted, or only the scopes of one phase."""
        if phase is None:
            return self._root.total()
        _check_phase(phase)
        c = Counters()
        for _, node in self._root.walk():
            if node.phase == phase:
                c += node.own
        return c

    def by_op(self, phase: str = "online") -> dict[str, Counters]:
        """Own counts grouped by (inherited) op name, over all layers; "-" for no op."""
        _check_phase(phase)
        out: dict[str, Counters] = {}
        for _, node in self._root.walk():
            if node.phase == phase:
                c = out.setdefault(node.op or "-", Counters())
                c += node.own
        return out

    def to_dict(self) -> dict:
        """A JSON-able report: totals, per phase, per op, and every scope (depth-first)."""
        scopes = []
        for depth, node in self._root.walk():
            if node.parent is None:
                continue
            scopes.append({"path": node.path(), "depth": depth, "phase": node.phase,
                           "op": node.op, "layer": node.layer, "entries": node.entries,
                           "wall_s": node.wall_s, "own": node.own.as_dict(),
                           "total": node.total().as_dict()})
        return {
            "wall_s": time.perf_counter() - self._t0,
            "total": self.total().as_dict(),
            "unscoped": self._root.own.as_dict(),
            "phases": {p: self.total(p).as_dict() for p in PHASES},
            "by_op": {p: {k: v.as_dict() for k, v in self.by_op(p).items()} for p in PHASES},
            "scopes": scopes,
        }

    def table(self, title: str | None = None):
        """A rich Table: one row per scope (rolled-up totals, indented), then per-phase totals."""
        from rich.table import Table

        t = Table(title=title)
        for name in ("scope", "phase", "entries", "sent B", "recv B", "exchanges", "syncs",
                     "comm s", "wall s"):
            t.add_column(name, justify="left" if name in ("scope", "phase") else "right")

        def row(label, phase, entries, c: Counters, wall, style=None):
            t.add_row(label, phase, entries, f"{c.bytes_sent:,}", f"{c.bytes_recv:,}",
                      f"{c.exchanges:,}", f"{c.syncs:,}", f"{c.comm_s:.4f}", wall, style=style)

        for depth, node in self._root.walk():
            if node.parent is None:
                if node.own != Counters():
                    row("(unscoped)", node.phase, "", node.own, "")
                continue
            row("  " * (depth - 1) + node.label(), node.phase, f"{node.entries:,}", node.total(),
                f"{node.wall_s:.4f}")
        t.add_section()
        for p in PHASES:
            row(f"total {p}", p, "", self.total(p), "", style="bold")
        row("total", "", "", self.total(), f"{time.perf_counter() - self._t0:.4f}", style="bold")
        return t

    def render(self, title: str | None = None, width: int = 120) -> str:
        """The table as plain text."""
        from rich.console import Console

        console = Console(file=io.StringIO(), width=width, color_system=None)
        console.print(self.table(title))
        return console.file.getvalue()


def _check_phase(phase) -> None:
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
