"""SIGMA's public lookup tables, built exactly as SIGMA builds them.

Every entry is a double-precision formula cast to an integer, i.e. truncated toward zero, as in
`fss/gpu_lut.h` (`genLUT<T, f>(bits, scaleIn, scaleOut)`) and LLAMA's `Rsqrt` table.  The tables
are computed once in float64 on the CPU (IEEE division and square root are correctly rounded; every
erf/exp value lies at least 3e-5 away from an integer, so libm differences cannot change an entry)
and copied to the caller's device.  tests/gates/test_reference_vectors.py checks them entry for entry
against SIGMA's own dumps.

| table              | bits             | entry i                                             | used by   |
|--------------------|------------------|-----------------------------------------------------|-----------|
| relu_sub_gelu      | 8                | (ReLU(x) - x·Φ(x))·2^12, x = i/64                    | GeLU      |
| relu_sub_silu      | 10               | (ReLU(x) - x/(1+e^-x))·2^12, x = i/64                | SiLU      |
| nexp_lsb           | 8                | e^(-i/4096)·2^12                                    | nExp      |
| nexp_msb           | 8                | e^(-i/16)·2^12                                      | nExp      |
| inverse            | ceil(log2 L) + 6 | 2^18/i; entry 0 = 2^18/2^bits (the wrap of S = L)   | softmax   |
| rsqrt              | 13               | 2^24/sqrt(((m+128)·2^(e-7))/d), i = m·64 + e        | LayerNorm |

The rsqrt table uses a *signed* exponent e - 7, as SIGMA's ClearText does.  SIGMA's GPU code
(LLAMA `Rsqrt`, `backend/sigma.h`) computes e in uint64, so e - 7 wraps for e < 7 and those
896 entries become 0; this table does not reproduce that bug (docs/reference_accuracy.md).
"""
from __future__ import annotations

import functools
import math

import torch

from suf.core.config import SCALE

RSQRT_BITS = 13  # 7-bit mantissa, 6-bit exponent


def ceil_log2(k: int) -> int:
    """ceil(log2 k) for an integer k >= 1, computed exactly."""
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"ceil_log2 needs an integer >= 1, got {k!r}")
    return (k - 1).bit_length()


def _check_params(bits: int, *scales: int) -> None:
    if not isinstance(bits, int) or not 1 <= bits <= 24:
        raise ValueError(f"table bitwidth must be an int in [1, 24], got {bits!r}")
    for s in scales:
        if not isinstance(s, int) or not 0 <= s <= 40:
            raise ValueError(f"table scale must be an int in [0, 40], got {s!r}")


def _to_entries(values: torch.Tensor) -> torch.Tensor:
    """T(double): truncation toward zero, as SIGMA's casts do."""
    return torch.trunc(values).to(torch.int64)


_ON_DEVICE: dict = {}  # (build, args, device) -> the table's one copy on that GPU


def _deliver(build, *args, device=None) -> torch.Tensor:
    """The table on `device`.  The cached CPU master is never handed out: CPU callers get their
    own copy; on a GPU all callers share one copy per device (read only), so that an online gate
    does not copy its table from host memory at every call (nor inside a CUDA graph capture)."""
    device = torch.device("cpu" if device is None else device)
    if device.type == "cpu":
        return build(*args).clone()
    key = (build, args, device)
    if key not in _ON_DEVICE:
        _ON_DEVICE[key] = build(*args).to(device)
    return _ON_DEVICE[key]


@functools.lru_cache(maxsize=None)
def _relu_sub_gelu(bits: int, scale_in: int, scale_out: int) -> torch.Tensor:
    x = torch.arange(2**bits, dtype=torch.float64) / 2.0**scale_in
    g = 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
    return _to_entries((torch.clamp(x, min=0.0) - g) * 2.0**scale_out)


@functools.lru_cache(maxsize=None)
def _relu_sub_silu(bits: int, scale_in: int, scale_out: int) -> torch.Tensor:
    x = torch.arange(2**bits, dtype=torch.float64) / 2.0**scale_in
    s = x / (1.0 + torch.exp(-x))
    return _to_entries((torch.clamp(x, min=0.0) - s) * 2.0**scale_out)


@functools.lru_cache(maxsize=None)
def _nexp(bits: int, scale_in: int, scale_out: int) -> torch.Tensor:
    i = torch.arange(2**bits, dtype=torch.float64)
    return _to_entries(torch.exp(-i / 2.0**scale_in) * 2.0**scale_out)


@functools.lru_cache(maxsize=None)
def _inverse(bits: int, scale_in: int, scale_out: int) -> torch.Tensor:
    i = torch.arange(2**bits, dtype=torch.float64)
    i[0] = 2.0**bits  # the index wraps to 0 when the row sum is exactly 2^bits at scale_in
    return _to_entries(2.0 ** (scale_in + scale_out) / i)


@functools.lru_cache(maxsize=None)
def _rsqrt(d: int, scale: int) -> torch.Tensor:
    i = torch.arange(2**RSQRT_BITS, dtype=torch.int64)
    # 2^(e-7) with a signed exponent (SIGMA's GPU code wraps it: see the module doc); exact
    pow2 = torch.tensor([2.0 ** (e - 7) for e in range(64)], dtype=torch.float64)
    m = (i >> 6).to(torch.float64)
    val = (m + 128.0) * pow2[i % 64]  # exact
    return _to_entries(2.0 ** (2 * scale) / torch.sqrt(val / d))


def relu_sub_gelu(bits: int = 8, scale_in: int = 6, scale_out: int = SCALE, *,
                  device=None) -> torch.Tensor:
    """SIGMA `reluSubGelu(bits, scale_in, scale_out)`: ReLU(x) - GeLU(x) (erf form)."""
    _check_params(bits, scale_in, scale_out)
    return _deliver(_relu_sub_gelu, bits, scale_in, scale_out, device=device)


def relu_sub_silu(bits: int = 10, scale_in: int = 6, scale_out: int = SCALE, *,
                  device=None) -> torch.Tensor:
    """SIGMA `reluSubSilu(bits, scale_in, scale_out)`: ReLU(x) - SiLU(x)."""
    _check_params(bits, scale_in, scale_out)
    return _deliver(_relu_sub_silu, bits, scale_in, scale_out, device=device)


def nexp_lsb(bits: int = 8, scale_in: int = 12, scale_out: int = SCALE, *,
             device=None) -> torch.Tensor:
    """SIGMA `nExpLsb(8, 12, 12)`: e^(-i/2^scale_in) at scale_out, for the low byte of max - x."""
    _check_params(bits, scale_in, scale_out)
    return _deliver(_nexp, bits, scale_in, scale_out, device=device)


def nexp_msb(bits: int = 8, scale_in: int = 4, scale_out: int = SCALE, *,
             device=None) -> torch.Tensor:
    """SIGMA `nExpMsb(8, 4, 12)`: e^(-i/2^scale_in) at scale_out, for the high byte of max - x."""
    _check_params(bits, scale_in, scale_out)
    return _deliver(_nexp, bits, scale_in, scale_out, device=device)


def inverse(bits: int, scale_in: int = 6, scale_out: int = SCALE, *,
            device=None) -> torch.Tensor:
    """SIGMA `inv(bits, scale_in, scale_out)`: 2^(scale_in+scale_out)/i, entry 0 = that over 2^bits."""
    _check_params(bits, scale_in, scale_out)
    return _deliver(_inverse, bits, scale_in, scale_out, device=device)


def inverse_bits(length: int) -> int:
    """Index width of the softmax inverse table for rows of `length` entries: ceil(log2 L) + 6."""
    return ceil_log2(length) + 6


def inverse_for_length(length: int, *, device=None) -> torch.Tensor:
    """The softmax inverse table SIGMA builds for sequence length L (`fss/gpu_mha.h`)."""
    return inverse(inverse_bits(length), 6, SCALE, device=device)


def rsqrt(d: int, scale: int = SCALE, *, device=None) -> torch.Tensor:
    """The 13-bit LayerNorm table: entry m·64 + e = 2^(2·scale)/sqrt(((m+128)·2^(e-7))/d).

    The input is the row's sum of squares V at scale 2·scale in SIGMA's bfloat16-like form
    (`suf.gates.rsqrt.reference_rsqrt_index`); the output is 1/σ = sqrt(d/V) at `scale`.
    """
    if not isinstance(d, int) or d < 1:
        raise ValueError(f"rsqrt table needs the row width d as an int >= 1, got {d!r}")
    _check_params(RSQRT_BITS, scale)
    return _deliver(_rsqrt, d, scale, device=device)
