"""Exact matrix products in the ring Z_{2^n} on torch.int64 tensors, on CPU and CUDA.

`ring_matmul(a, b, bits)` is (a @ b) mod 2^bits, batched like torch.matmul, with a and b read as
int64 values mod 2^bits (any int64 is accepted; only its residue matters).  The result is in
[0, 2^bits) (for 64 bits: the int64 bit pattern), identical on every device.

On CPU torch multiplies int64 matrices itself (wrapping mod 2^64).  CUDA has no int64 GEMM, so
there the product is assembled from float64 GEMMs on limbs (`limb_matmul`, any device):

    x = sum_{i<L} 2^(w·i) x_i   with unsigned w-bit limbs x_i, w·L >= bits, so
    a @ b = sum_{s<L} 2^(w·s) D_s  (mod 2^bits),   D_s = sum_{i+j=s} a_i @ b_j.

Limb pairs with i + j >= L carry a weight 2^(w·(i+j)) >= 2^bits and vanish, leaving L(L+1)/2
limb products.  Each D_s is ONE GEMM over limbs stacked along K: [a_0 … a_s] @ [b_s; …; b_0].
A float64 GEMM of integers is exact while every partial sum stays below 2^53, which holds when
L·K·(2^w − 1)^2 <= 2^53.  `limb_plan` picks the fewest limbs for which all of K fits (50 bits,
K <= 174762: 3 limbs of 17 bits, 6 limb products); if none does, limbs of at most 16 bits and K in
chunks whose int64 results are added.
"""
from __future__ import annotations

import torch

from suf.core.checks import check_bits
from suf.core.ring import low_mask

INT64 = torch.int64
FLOAT64 = torch.float64
_EXACT = 2**53  # float64 represents every integer of magnitude <= 2^53


def _check_operands(a, b) -> tuple[int, ...]:
    """Validate a (..., M, K) and b (..., K, N); return the broadcast batch shape."""
    for name, x in (("a", a), ("b", b)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.dtype != INT64:
            raise TypeError(f"{name} must have dtype torch.int64, got {x.dtype}")
        if x.dim() < 2:
            raise ValueError(f"{name} must have at least 2 dimensions (..., rows, cols), "
                             f"got shape {tuple(x.shape)}")
    if a.device != b.device:
        raise ValueError(f"a is on {a.device} but b is on {b.device}")
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"inner dimensions differ: a is {tuple(a.shape)}, b is {tuple(b.shape)}")
    try:
        return tuple(torch.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
    except RuntimeError:
        raise ValueError(f"batch dimensions do not broadcast: a is {tuple(a.shape)}, "
                         f"b is {tuple(b.shape)}") from None


def limb_plan(bits: int, k: int) -> tuple[int, int, int]:
    """(limbs L, limb width w, K chunk) for an exact float64 limb product of inner size k.

    L·chunk·(2^w − 1)^2 <= 2^53 always; chunk >= k unless L = ceil(bits/16) still does not fit k.
    """
    check_bits(bits, 1, 64, "bits")
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"inner size k must be a non-negative int, got {k!r}")
    for limbs in range(1, -(-bits // 16) + 1):
        width = -(-bits // limbs)
        chunk = _EXACT // (limbs * ((1 << width) - 1) ** 2)
        if chunk >= max(k, 1):
            break
    return limbs, width, chunk


def _limb_product(a: torch.Tensor, b: torch.Tensor, limbs: int, width: int,
                  batch: tuple[int, ...]) -> torch.Tensor:
    """sum_s 2^(w·s) D_s mod 2^64 for one K chunk (exact float64 GEMMs, see the module doc)."""
    k = a.shape[-1]
    mask = (1 << width) - 1
    shifts = torch.arange(limbs, dtype=INT64, device=a.device) * width
    # row m of al: [a_0 | a_1 | … | a_{L-1}] (limbs side by side along K)
    al = ((a.unsqueeze(-2) >> shifts[:, None]) & mask).to(FLOAT64).flatten(-2)
    # bl: [b_{L-1}; …; b_1; b_0] (limbs stacked along K, highest first)
    bl = ((b.unsqueeze(-3) >> shifts.flip(0)[:, None, None]) & mask).to(FLOAT64).flatten(-3, -2)
    diag = torch.empty((limbs, *batch, a.shape[-2], b.shape[-1]), dtype=FLOAT64, device=a.device)
    for s in range(limbs):  # D_s = [a_0 … a_s] @ [b_s; …; b_0]
        torch.matmul(al[..., : (s + 1) * k], bl[..., (limbs - 1 - s) * k:, :], out=diag[s])
    # every D_s is an exact integer < 2^53; weight it by 2^(w·s) and add, wrapping mod 2^64
    weights = shifts.view(limbs, *[1] * (diag.dim() - 1))
    return (diag.to(INT64) << weights).sum(0)


def limb_matmul(a: torch.Tensor, b: torch.Tensor, bits: int) -> torch.Tensor:
    """(a @ b) mod 2^bits from float64 limb GEMMs (the CUDA path of `ring_matmul`, any device)."""
    check_bits(bits, 1, 64, "bits")
    return _limb_matmul(a, b, bits, _check_operands(a, b))


def _limb_matmul(a: torch.Tensor, b: torch.Tensor, bits: int,
                 batch: tuple[int, ...]) -> torch.Tensor:
    k = a.shape[-1]
    limbs, width, chunk = limb_plan(bits, k)
    out = None
    for k0 in range(0, max(k, 1), chunk):  # one pass for k = 0 too (yields zeros)
        part = _limb_product(a[..., k0:k0 + chunk], b[..., k0:k0 + chunk, :], limbs, width, batch)
        out = part if out is None else out.add_(part)
    return out if bits == 64 else out & low_mask(bits)


def ring_matmul(a: torch.Tensor, b: torch.Tensor, bits: int) -> torch.Tensor:
    """(a @ b) mod 2^bits for int64 ring matrices a (..., M, K), b (..., K, N), batch dims
    broadcast as in torch.matmul.  Exact on every device; the result is int64 in [0, 2^bits)."""
    check_bits(bits, 1, 64, "bits")
    batch = _check_operands(a, b)
    if a.device.type != "cpu":
        return _limb_matmul(a, b, bits, batch)
    out = torch.matmul(a, b)  # int64 GEMM, wraps mod 2^64
    return out if bits == 64 else out & low_mask(bits)
