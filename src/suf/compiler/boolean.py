"""Predicates and Boolean helpers of a SUF descriptor (suf.compiler.ir.BitsDescriptor) as an FSS
gate, correct for two parties (suf_spec.md §2.2, §2.4: the published code ANDed XOR shares
locally and let both parties apply NOT, which cancels).

  predicates  "lt"/"msb" on the reduced y: one DPF over Z_{2^b} at r_y serves them all by prefix
              parity (an interval [a, c) of unsigned y from the walks at a and c; walks at a
              shared cut are made once).  "ltlow" on x's low f bits: one DPF over Z_{2^f} at
              r_x mod 2^f per distinct f, the interval [0, γ) of x^ mod 2^f - r.
  NOT, const  applied by party 1 only (XOR shares: both flipping would cancel).
  XOR         local.
  AND         a dealer's bit triple (u, v, w = u·v), XOR-shared: open d = a ^ u and e = b ^ v,
              then a·b = w ^ d·v ^ e·u ^ d·e (the last term by party 1).  Every AND at the same
              AND-depth shares one exchange.
  outputs     opened masked: out ^ r_out (one exchange).
"""
from __future__ import annotations

import torch

from suf.compiler import ir
from suf.compiler.lower import arc_bit, reduce_eval, reduce_keygen, reduce_steps, walk
from suf.core.checks import check_gate_input
from suf.core.ring import low_mask
from suf.fss import compare
from suf.mpc.gate import Bits, Key, Layout, Open, Raw


class Plan:
    """Walk points, keys and the AND schedule of one descriptor (host ints only)."""

    def __init__(self, desc: ir.BitsDescriptor):
        self.desc = desc
        b = desc.bits
        self.arcs = {}  # predicate index -> (a, c) on y
        self.low = {}  # predicate index -> (f, γ)
        for i, p in enumerate(desc.predicates):
            if p.kind == "ltlow":
                self.low[i] = (p.f, p.value)
            else:
                self.arcs[i] = ir.predicate_interval(p, b)
        if self.arcs and b < 8:
            raise ValueError(f"{desc.name}: predicates on y need at least 8 bits, got {b}")
        self.cuts = sorted({c for arc in self.arcs.values() for c in arc})
        self.fs = sorted({f for f, _ in self.low.values()})
        # every AND node, by depth (post-order within a depth)
        self.ands: list[list] = []
        for e in desc.outputs:
            self._schedule(e)

    def _schedule(self, e) -> int:
        """The AND-depth of e (ANDs on the path to a leaf), registering its AND nodes."""
        if e[0] in ("p", "const"):
            return 0
        if e[0] == "not":
            return self._schedule(e[1])
        d = max(self._schedule(e[1]), self._schedule(e[2]))
        if e[0] == "xor":
            return d
        while len(self.ands) <= d:
            self.ands.append([])
        if e not in self.ands[d]:
            self.ands[d].append(e)
        return d + 1

    @property
    def and_count(self) -> int:
        return sum(len(level) for level in self.ands)


def layout(desc: ir.BitsDescriptor, shape) -> Layout:
    plan = Plan(desc)
    N = int(torch.Size(shape).numel())
    if N == 0:
        raise ValueError(f"{desc.name}: needs at least one element")
    parts = [Raw("dpf", compare.payload_size(desc.bits, N))] if plan.arcs else []
    parts += [Raw(f"dpf{f}", compare.payload_size(f, N)) for f in plan.fs]
    if plan.and_count:
        parts.append(Bits("triples", 3 * plan.and_count * N))
    O = len(desc.outputs)
    parts.append(Bits("r_out", O * N))
    steps = reduce_steps(desc, N) if plan.arcs else []
    steps.append(Key("", tuple(parts)))
    steps += [Open(f"and{d}", 2 * len(level) * N, 1) for d, level in enumerate(plan.ands)]
    steps.append(Open("out", O * N, 1))
    return Layout(steps)


def keygen(dealer, desc: ir.BitsDescriptor, r_in: torch.Tensor, *, op: str) -> torch.Tensor:
    """Keys for inputs masked with r_in (Z_{2^n_in}); returns the output bit masks,
    shape r_in.shape + (outputs,)."""
    check_gate_input(r_in, desc.n_in, "r_in")
    plan = Plan(desc)
    lay = layout(desc, r_in.shape)
    N, O = r_in.numel(), len(desc.outputs)
    r_x = r_in.flatten()
    values = {}
    if plan.arcs:
        r_y = reduce_keygen(dealer, desc, r_x, op)
        k0, k1 = compare.keygen(r_y, desc.bits, dealer.stream)
        values["dpf"] = (compare.to_payload(k0), compare.to_payload(k1))
    for f in plan.fs:
        k0, k1 = compare.keygen(r_x & low_mask(f), f, dealer.stream)
        values[f"dpf{f}"] = (compare.to_payload(k0), compare.to_payload(k1))
    if plan.and_count:
        u, v = dealer.mask((plan.and_count, N), 1), dealer.mask((plan.and_count, N), 1)
        values["triples"] = torch.stack([u, v, u & v])
    r_out = dealer.mask((N, O), 1)
    values["r_out"] = r_out
    dealer.deal(op, r_in.shape, lay.key(), values)
    return r_out.view(tuple(r_in.shape) + (O,))


def eval(party, desc: ir.BitsDescriptor, x_hat: torch.Tensor, *, op: str) -> torch.Tensor:
    """The opened masked output bits, shape x_hat.shape + (outputs,)."""
    check_gate_input(x_hat, desc.n_in, "x_hat")
    plan = Plan(desc)
    lay = layout(desc, x_hat.shape)
    N, O = x_hat.numel(), len(desc.outputs)
    x = x_hat.flatten()
    y = reduce_eval(party, desc, x, op) if plan.arcs else None
    key = party.read(op, lay.key())
    preds = {}
    if plan.arcs:
        dk = compare.from_payload(key["dpf"], desc.bits, N, party.id, party.device)
        pts, lt = walk(dk, y, plan.cuts, desc.bits)
        at = {c: j for j, c in enumerate(plan.cuts)}
        for i, (a, c) in plan.arcs.items():
            preds[i] = arc_bit(party, pts[at[a]], lt[at[a]], pts[at[c]], lt[at[c]])
    for f in plan.fs:
        dk = compare.from_payload(key[f"dpf{f}"], f, N, party.id, party.device)
        gammas = sorted({g for ff, g in plan.low.values() if ff == f})
        pts, lt = walk(dk, x & low_mask(f), [0] + gammas, f)
        for i, (ff, g) in plan.low.items():
            if ff == f:
                j = 1 + gammas.index(g)
                preds[i] = arc_bit(party, pts[0], lt[0], pts[j], lt[j])
    shares = _and_levels(party, plan, key, preds, lay, x)
    out = torch.stack([_share(e, preds, shares, party, x) for e in desc.outputs], dim=1)
    out = out ^ key["r_out"].view(N, O)
    return party.open(out.flatten(), lay.open("out")).view(tuple(x_hat.shape) + (O,))


def _share(e, preds: dict, ands: dict, party, like: torch.Tensor) -> torch.Tensor:
    """This party's XOR share of expression e (its ANDs already computed in `ands`)."""
    if e[0] == "p":
        return preds[e[1]]
    if e[0] == "const":
        return torch.full_like(like, e[1] if party.id == 1 else 0)
    if e[0] == "not":
        return _share(e[1], preds, ands, party, like) ^ party.id
    if e[0] == "xor":
        return _share(e[1], preds, ands, party, like) ^ _share(e[2], preds, ands, party, like)
    return ands[e]


def _and_levels(party, plan: Plan, key: dict, preds: dict, lay: Layout, like) -> dict:
    """Every AND node's share, one exchange per AND-depth."""
    N = like.numel()
    ands = {}
    if not plan.and_count:
        return ands
    triples = key["triples"].view(3, plan.and_count, N)
    slot = 0
    for d, level in enumerate(plan.ands):
        a = torch.stack([_share(e[1], preds, ands, party, like) for e in level])
        b = torch.stack([_share(e[2], preds, ands, party, like) for e in level])
        u, v, w = (t[slot:slot + len(level)] for t in triples)
        de = party.open(torch.cat([a ^ u, b ^ v]).flatten(), lay.open(f"and{d}"))
        de = de.view(2, len(level), N)
        z = w ^ (de[0] & v) ^ (de[1] & u) ^ (party.id & de[0] & de[1])
        for i, e in enumerate(level):
            ands[e] = z[i]
        slot += len(level)
    return ands
