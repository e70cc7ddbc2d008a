"""SIGMA's DPF-based table lookup, FSS part (sigma_spec §2.4, suf_spec §3.2).

The dealer gives each party an eval-all DPF key for α = r_in mod 2^k.  On a public masked input x̂
each party expands its whole key (2^k output bits b_j, XOR-shared one-hot at α), weights them with
w_j = +b_j (party 0) or -b_j (party 1) and computes, mod 2^64,
    u = Σ_j w_j,      v = Σ_j T[(x̂ - j) mod 2^k] · w_j.
Off α the two parties' bits are equal and their weights cancel, so u0 + u1 = σ = b0_α - b1_α ∈ {±1}
and v0 + v1 = σ·T[x̂ - α]: the public table rotated by x̂ and dotted with the one-hot vector.
`sign_bit_share` turns u into an XOR-share of U = 1{σ = +1}; then T[x̂ - α] = (2U - 1)·(v0 + v1).
Opening U and v and the final select are protocol steps (suf.gates), not part of this module.

Key bytes: SIGMA's eval-all layout (dpf.py), 16(k-7) + 36 bytes per key for k >= 8; for k <= 7
(SIGMA has no LUT there) a truth table of 2^max(0, k-3) bytes.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from suf import prg
from suf.core.checks import check_bits, check_party
from suf.fss import dpf, kernels
from suf.fss.dpf import EVAL_ALL_MAX_BITS, Key
from suf.core.ring import Ring

INT64 = torch.int64
# table entries gathered per chunk of keys: 32 MiB per int64 temporary on CPU, 512 MiB on a GPU,
# where fewer, larger chunks save kernel launches
CHUNK_ENTRIES = 1 << 22
CUDA_CHUNK_ENTRIES = 1 << 26


@dataclass
class LUTKey:
    """N LUT keys of one party: the point key of α = r_in mod 2^k (a DPFKey, or a TableKey for k <= 7)."""
    dpf: Key

    def __post_init__(self):
        dpf.check_key(self.dpf)
        if getattr(self.dpf, "kind", "point") != "point":
            raise ValueError("a LUT key holds a point key, not a comparison truth table")
        if self.dpf.n > EVAL_ALL_MAX_BITS:
            raise ValueError(f"LUT keys are for tables of at most 2^{EVAL_ALL_MAX_BITS} entries, "
                             f"got k={self.dpf.n}")

    @property
    def k(self) -> int:
        return self.dpf.n

    @property
    def party(self) -> int:
        return self.dpf.party

    @property
    def N(self) -> int:
        return self.dpf.N

    @property
    def device(self) -> torch.device:
        return self.dpf.device


def keygen(r_in: torch.Tensor, k: int, stream: prg.Stream) -> tuple[LUTKey, LUTKey]:
    """LUT keys for input masks r_in (int64 (N,), any 64-bit ring values): α = r_in mod 2^k."""
    check_bits(k, 1, EVAL_ALL_MAX_BITS, "k")
    Ring(64).check(r_in, "r_in")
    alphas = r_in & ((1 << k) - 1)
    dpf.check_deal(alphas, k, stream, "r_in")
    k0, k1 = dpf.keygen(alphas, k, stream)
    return LUTKey(k0), LUTKey(k1)


def eval(key: LUTKey, x_hat: torch.Tensor, table: torch.Tensor, *, k: int | None = None,
         party: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(u, v) of this party for masked inputs x_hat ((N,) or (E, N), values in [0, 2^k)).

    table: int64 tensor of the 2^k entries (ring values; arithmetic is mod 2^64, the caller reduces
    to its ring).  Works in chunks of keys so that no N·2^k tensor is allocated at once.
    k, party: when given, the key must be for k-bit inputs and belong to that party.
    """
    if not isinstance(key, LUTKey):
        raise TypeError(f"expected a LUTKey, got {type(key).__name__}")
    dpf.check_key(key.dpf, k, party)
    dpf.check_points(key.dpf, x_hat, "x_hat")
    size = 1 << key.k
    if not isinstance(table, torch.Tensor) or table.dtype != INT64:
        raise TypeError("table must be an int64 tensor")
    if tuple(table.shape) != (size,):
        raise ValueError(f"table must hold 2^{key.k} = {size} entries for this {key.k}-bit key, "
                         f"got shape {tuple(table.shape)}")
    if table.device != key.device:
        raise ValueError(f"table lies on {table.device} but the key on {key.device}")
    xs = x_hat.reshape(-1, key.N)  # (E, N)
    E = xs.shape[0]
    k = key.dpf
    if dpf.USE_KERNELS and isinstance(k, dpf.DPFKey) and E <= kernels.MAX_POINTS:
        fused = kernels.dpf_lut(k.seed, k.cw, k.tr, k.leaf, xs, table, k.n, k.party)
        if fused is not None:
            return fused[0].reshape(x_hat.shape), fused[1].reshape(x_hat.shape)
    j = torch.arange(size, dtype=INT64, device=key.device)
    budget = CUDA_CHUNK_ENTRIES if key.device.type == "cuda" else CHUNK_ENTRIES
    step = max(1, budget // (E * size))
    us, vs = [], []
    for a in range(0, key.N, step):
        bits = dpf.eval_all(key.dpf[a:a + step])  # (c, 2^k)
        rotated = table[(xs[:, a:a + step, None] - j) & (size - 1)]  # (E, c, 2^k): T[x̂ - j]
        vs.append((rotated * bits).sum(-1))
        us.append(bits.sum(-1).expand(E, -1))
    sign = 1 - 2 * key.party
    u = sign * torch.cat(us, dim=1)
    v = sign * torch.cat(vs, dim=1)
    return u.reshape(x_hat.shape), v.reshape(x_hat.shape)


def sign_bit_share(u: torch.Tensor, party: int) -> torch.Tensor:
    """This party's XOR-share of U = 1{σ = +1} from its u (u0 + u1 = σ mod 2^64).

    SIGMA (gpu_lut.cu) maps u mod 4 by (u+1)/2 for party 0 and 2 - (4-u)/2 for party 1, then mod 2.
    Both equal bit 1 of u + 1: with a = u0 + 1, b = u1 + 1 we have a + b = σ + 2 ≡ 3 (σ = +1) or
    1 (σ = -1) mod 4, which is odd, so exactly one of a, b is odd, bit 0 produces no carry, and
    bit1(a) ^ bit1(b) = bit1(a + b) = U.  The map is therefore the same for both parties; `party`
    is checked so that callers state whose share they hold.
    """
    Ring(64).check(u, "u")
    check_party(party)
    return ((u + 1) >> 1) & 1


# -- serialization: SIGMA's eval-all key layout (dpf.py) --------------------------------------
def payload_size(k: int, N: int) -> int:
    """16(k-7)N + 36N bytes for k >= 8; 2^max(0, k-3)·N for k <= 7."""
    return dpf.payload_size("evalall", k, N)


def to_payload(key: LUTKey) -> torch.Tensor:
    if not isinstance(key, LUTKey):
        raise TypeError(f"expected a LUTKey, got {type(key).__name__}")
    return dpf.to_payload(key.dpf, "evalall")


def to_bytes(key: LUTKey) -> bytes:
    return to_payload(key).cpu().numpy().tobytes()


def from_payload(buf, k: int, N: int, party: int, device="cpu") -> LUTKey:
    return LUTKey(dpf.from_payload(buf, k, N, party, "evalall", device))


from_bytes = from_payload
