"""Comparison 1{x < α} from a DPF key by prefix parity (Grotto; SIGMA's DReLU "DCF", sigma_spec §2.3).

The key is the DPF key of α itself (suf.fss.dpf), evaluated along x's path only: one PRG call per
level, no sibling expansions.  For n <= 7 the key is a truth table with the bits j < α set.

Rule (P = this party's output bit):
  * walk x's path; at level i, before stepping, XOR the node's control bit t into P when the
    direction changes (x's bit i differs from bit i-1, with a "left" step before the root);
  * at the leaf block (pos = x & 127): if the last step went right XOR its bits pos+1..127,
    else its bits 0..pos;
  * party 1 flips P.
Why (full version in docs/fss.md): let v_0 (root) .. v_{D-1} be the nodes above the leaf on x's
path, x_i the step taken at v_i, and T_i = t^0(v_i) ^ t^1(v_i) = 1{α under v_i} (so T_0 = 1); the
two parties' leaf blocks XOR to the one-hot of α if α is in x's leaf, else to 0.  Then
  1{x < α} = XOR over i with x_i = 0 of 1{α under the right child of v_i}  ^  1{α in x's leaf, > pos}
and 1{α under the right child of v_i} = T_i ^ T_{i+1} (i < D-1).  Each T_i (0 < i < D) is then
counted once for each neighbouring left step, i.e. iff x_i != x_{i-1}; for the last level the
right-child term and the in-leaf term merge into the leaf bits 0..pos (left) or pos+1..127 (right).
T_0 is counted iff x_0 = 0, while the rule XORs it iff x_0 = 1; the difference is T_0 = 1, the flip.
"""
from __future__ import annotations

import torch

from suf import prg
from suf.fss import dpf, kernels, sstable
from suf.fss.dpf import Key, TableKey
from suf.fss.sstable import low_mask, parity



def keygen(alphas: torch.Tensor, n: int, stream: prg.Stream) -> tuple[Key, Key]:
    """Keys (k0, k1) of 1{x < α}: for n >= 8 exactly dpf.keygen's keys, for n <= 7 truth tables."""
    dpf.check_deal(alphas, n, stream)
    if n <= dpf.LEAF_BITS:
        return sstable.keygen(alphas, n, stream, "lt")
    return dpf.keygen(alphas, n, stream)


def eval_lt(key: Key, x: torch.Tensor, *, n: int | None = None,
            party: int | None = None) -> torch.Tensor:
    """This party's XOR-share of 1{x < α}; x of shape (N,) or (E, N) evaluates each key at E points.

    n, party: when given, the key must be for n-bit inputs and belong to that party.
    """
    dpf.check_key(key, n, party)
    dpf.check_points(key, x)
    if isinstance(key, TableKey):
        if key.kind != "lt":
            raise ValueError("eval_lt needs a comparison key; this truth table is a point key")
        return sstable.lookup(key, x)
    fused = dpf.fused_walk(kernels.dpf_eval_lt, key, x)
    if fused is not None:
        return fused
    block, tbits = dpf.walk(key, x)
    # bit n-1-i of x is the step at level i and of tbits its t; bit n-1-i of x ^ (x >>> 1) is
    # that step XOR the step before it ("left", 0, before the root)
    turns = x ^ ((x >> 1) & ((1 << 63) - 1))
    upto = low_mask((x & 127) + 1)  # bits 0..pos of the leaf block
    inside = torch.where(((x >> 7) & 1)[..., None] == 1, ~upto, upto)
    v = block & inside
    v[..., 0] ^= tbits & turns  # tbits has no bits below 7, so its parity adds P
    return parity(v) ^ key.party


# -- serialization: SIGMA's comparison-key layout (dpf.py) -------------------------------------
def payload_size(n: int, N: int) -> int:
    """16(n-7)N + 32N + 4(n-7)·ceil(N/32) bytes for n >= 8; 2^max(0, n-3)·N for n <= 7."""
    return dpf.payload_size("lt", n, N)


def to_payload(key: Key) -> torch.Tensor:
    return dpf.to_payload(key, "lt")


def to_bytes(key: Key) -> bytes:
    return dpf.to_bytes(key, "lt")


def from_payload(buf, n: int, N: int, party: int, device="cpu") -> Key:
    return dpf.from_payload(buf, n, N, party, "lt", device)


from_bytes = from_payload
