"""Windowed evaluation of a DPF: the point function of α over Z_{2^n}, evaluated only on a window
of 2^k consecutive points [s, s + 2^k) (cyclic), and dotted with public weights.

For the two parties' keys of α the output bits b0(j), b1(j) agree at every j ≠ α, so over a window
    S_b = Σ_i b_b(s + i),   W_b = Σ_i w_i · b_b(s + i)
give S_0 - S_1 = σ·1{α ∈ window} and W_0 - W_1 = σ·1{α ∈ window}·w_{α - s}, σ = b0(α) - b1(α) = ±1.
This is SIGMA's LUT sign trick (suf.fss.lut) restricted to a window: the window itself is the range
test (exact_design.md §1, "windowed-DPF LUT"), so a table of 2^k entries can be indexed exactly by
an input that lives in a ring of any width.

Cost per point set: the window lies inside two aligned subtrees of 2^max(k,8) points; each is
reached by walking n - max(k,8) levels and expanded fully (2^(max(k,8)-7) leaf blocks), i.e. about
2^(max(k,8)-6) PRG calls.  When the window is the whole ring (k = n) one full expansion is used.
On CUDA the Triton kernel suf.fss.kernels.dpf_window gives the same (S, W) and expands only the
slices of the two subtrees that meet the window.
"""
from __future__ import annotations

import torch

from suf import prg
from suf.core.checks import check_bits
from suf.fss import dpf, kernels
from suf.fss.dpf import LEAF_BITS, DPFKey
from suf.fss.sstable import block_bits

INT64 = torch.int64
# bits materialised per chunk of keys (int64 each): 32 MiB on CPU, 1 GiB on a GPU
CHUNK_BITS = 1 << 22
CUDA_CHUNK_BITS = 1 << 27


def _descend(key: DPFKey, node: torch.Tensor, level: int) -> torch.Tensor:
    """Seeds (with control bit 0) of the nodes `node` (int64 (c,), the node's index among the
    2^level nodes of that level) of keys `key` (c keys): `level` steps from the root, level < depth."""
    s = key.seed
    for i in range(level):
        t = s[:, 0] & 1
        right = ((node >> (level - 1 - i)) & 1) == 1
        g = prg.expand(s)
        child = torch.where(right[:, None], g[:, 1, :], g[:, 0, :])
        cw = key.cw[i]
        corr = torch.stack([torch.where(right, (cw[:, 0] & ~1) | key.tr[i], cw[:, 0]), cw[:, 1]],
                           dim=-1)
        s = child ^ (corr & -t[:, None])
    return s


def _expand(key: DPFKey, seeds: torch.Tensor, level: int) -> torch.Tensor:
    """All leaf blocks under nodes at `level` (seeds (c, m, 2), m nodes per key): (c, m·2^(D-level), 2)."""
    c, D = seeds.shape[0], key.depth
    s = seeds
    for i in range(level, D):
        t = s[..., 0] & 1
        g = prg.expand(s)[..., :2, :]  # (c, M, 2 directions, 2)
        if i < D - 1:
            cw = key.cw[i]
            cw_right = torch.stack([(cw[:, 0] & ~1) | key.tr[i], cw[:, 1]], dim=-1)
            corr = torch.stack([cw, cw_right], dim=1)  # (c, 2, 2)
        else:
            corr = key.leaf.transpose(0, 1)
        g = g ^ (corr[:, None] & -t[..., None, None])
        s = g.reshape(c, -1, 2)
    return s


def _window_bits(key: DPFKey, start: torch.Tensor, k: int) -> torch.Tensor:
    """(c, 2^k) output bits of this party at points start + i, i in [0, 2^k) (mod 2^n)."""
    n = key.n
    kk = max(k, LEAF_BITS + 1)
    level = n - kk
    if level == 0:  # the window is the whole ring: one full expansion, read twice around
        blocks = _expand(key, key.seed[:, None, :], 0)
        bits = block_bits(blocks).flatten(1)
        bits = torch.cat([bits, bits], dim=1)
    else:
        node = start >> kk
        nxt = (node + 1) & ((1 << level) - 1)
        seeds = torch.stack([_descend(key, node, level), _descend(key, nxt, level)], dim=1)
        bits = block_bits(_expand(key, seeds, level)).flatten(1)  # (c, 2^(kk+1))
    off = start & ((1 << kk) - 1) if level else start
    idx = off[:, None] + torch.arange(1 << k, dtype=INT64, device=start.device)
    return bits.gather(1, idx)


def eval_window(key: DPFKey, start: torch.Tensor, k: int,
                weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """This party's (S, W) = (Σ_i b(s + i), Σ_i weights[i]·b(s + i)) over the window of 2^k points
    starting at `start` (int64 (N,), one point per key, values in [0, 2^n)), mod 2^64.

    weights: int64 (2^k,) public, on the key's device.  k <= n.
    """
    if not isinstance(key, DPFKey):
        raise TypeError(f"windowed evaluation needs a DPF tree key (n >= 8), got "
                        f"{type(key).__name__}")
    check_bits(k, 0, key.n, "k")
    dpf.check_points(key, start, "start")
    if start.dim() != 1:
        raise ValueError(f"start must hold one point per key, shape ({key.N},)")
    if not isinstance(weights, torch.Tensor) or weights.dtype != INT64 or \
            tuple(weights.shape) != (1 << k,):
        raise ValueError(f"weights must be an int64 tensor of 2^{k} entries")
    if weights.device != key.device:
        raise ValueError(f"weights lie on {weights.device} but the key on {key.device}")
    if dpf.USE_KERNELS:
        fused = kernels.dpf_window(key.seed, key.cw, key.tr, key.leaf, start, weights, key.n, k)
        if fused is not None:
            return fused
    span = 1 << (max(k, LEAF_BITS + 1) + 1)
    budget = CUDA_CHUNK_BITS if key.device.type == "cuda" else CHUNK_BITS
    step = max(1, budget // span)
    counts, dots = [], []
    for a in range(0, key.N, step):
        bits = _window_bits(key[a:a + step], start[a:a + step], k)
        counts.append(bits.sum(1))
        dots.append((bits * weights).sum(1))
    return torch.cat(counts), torch.cat(dots)


def prg_calls(n: int, k: int) -> int:
    """PRG calls per point set of one party: two descents and two full subtree expansions (one
    expansion when the window is the whole ring)."""
    kk = max(k, LEAF_BITS + 1)
    if kk >= n:
        return (1 << (n - LEAF_BITS)) - 1
    return 2 * ((n - kk) + (1 << (kk - LEAF_BITS)) - 1)
