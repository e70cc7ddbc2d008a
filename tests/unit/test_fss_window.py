"""The windowed DPF evaluation's torch path (suf.fss.window.eval_window) by brute force: every
window point through dpf.eval_point, per party, and the two parties' (S, W) reconstructed.

The kernel (suf.fss.kernels.dpf_window) is checked against this path in test_kernels_interpret.py
and test_fss_kernels.py; here the Triton dispatch is off, also under TRITON_INTERPRET=1.
"""
import pytest
import torch

from suf.fss import dpf, kernels, window
from suf.fss.sstable import TableKey
from suf.prg import Stream

MIN64 = -(2**63)


@pytest.fixture(autouse=True)
def torch_path(monkeypatch):
    monkeypatch.setattr(dpf, "USE_KERNELS", False)
    monkeypatch.setattr(kernels, "available", lambda *tensors: False)


def _mask(n):
    return -1 if n == 64 else (1 << n) - 1


def _case(n, k, seed):
    """Keys of alphas around 8 windows: starts at 2^n - 1, 2^n - 2^(k-1) (around 0), 0, the end
    of a 2^max(k,8) subtree and random; alphas just before, at the first and last point of, just
    after, and at random offsets from the window."""
    gen = torch.Generator().manual_seed(seed)
    m, size = _mask(n), 1 << k
    start = torch.randint(MIN64, 2**63 - 1, (8,), dtype=torch.int64, generator=gen) & m
    start[:4] = torch.tensor([m, (m - (size >> 1) + 1) & m, 0, (1 << max(k, 8)) - 1])
    offset = torch.randint(0, 2 * size, (8,), generator=gen)
    offset[:4] = torch.tensor([-1, 0, size - 1, size])
    alpha = (start + offset) & m
    weights = torch.randint(MIN64, 2**63 - 1, (size,), dtype=torch.int64, generator=gen)
    k0, k1 = dpf.keygen(alpha, n, Stream(bytes([seed % 256]) * 32))
    return k0, k1, start, alpha, weights


@pytest.mark.parametrize("n,k", [(8, 0), (8, 3), (8, 7), (8, 8), (9, 5), (9, 9), (10, 8),
                                 (11, 11), (12, 9), (13, 10), (20, 10), (33, 9),
                                 (64, 9)])
def test_brute_force(n, k):
    k0, k1, start, alpha, weights = _case(n, k, 10 * n + k)
    m, size = _mask(n), 1 << k
    points = (start + torch.arange(size)[:, None]) & m  # (2^k, N): point start + i of each key
    out = []
    for key in (k0, k1):
        bits = dpf.eval_point(key, points)
        S, W = window.eval_window(key, start, k, weights)
        assert torch.equal(S, bits.sum(0))
        assert torch.equal(W, (weights[:, None] * bits).sum(0))
        out.append((S, W))
    i = (alpha - start) & m
    inside = (i >= 0) & (i < size)  # i < 0: an offset >= 2^63 (n = 64)
    sigma = out[0][0] - out[1][0]
    assert torch.equal(sigma.abs(), inside.long())
    assert torch.equal(out[0][1] - out[1][1], sigma * weights[torch.where(inside, i, 0)])
    assert bool(inside[1:3].all()) and (k == n or not bool(inside[[0, 3]].any()))


def test_chunks_give_the_same_sums(monkeypatch):
    k0, _, start, _, weights = _case(12, 9, 5)
    want = window.eval_window(k0, start, 9, weights)
    monkeypatch.setattr(window, "CHUNK_BITS", 1)  # one key per chunk
    got = window.eval_window(k0, start, 9, weights)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def test_prg_calls():
    assert window.prg_calls(40, 16) == 2 * (24 + 511)
    assert window.prg_calls(33, 5) == 2 * (25 + 1)
    assert window.prg_calls(19, 19) == 4095


def test_bad_input_is_named():
    k0, _, start, _, weights = _case(10, 6, 1)
    with pytest.raises(ValueError, match="weights must be an int64 tensor of 2"):
        window.eval_window(k0, start, 6, weights[:-1])
    with pytest.raises(ValueError, match="weights must be an int64 tensor of 2"):
        window.eval_window(k0, start, 6, weights.int())
    with pytest.raises(ValueError, match="weights lie on meta"):
        window.eval_window(k0, start, 6, weights.to("meta"))
    with pytest.raises(ValueError, match="start must hold one point per key"):
        window.eval_window(k0, start.expand(2, -1), 6, weights)
    with pytest.raises(ValueError, match="start must have shape"):
        window.eval_window(k0, start[:-1], 6, weights)
    with pytest.raises(TypeError):
        window.eval_window(k0, start.int(), 6, weights)
    with pytest.raises(ValueError, match="k"):
        window.eval_window(k0, start, 11, torch.zeros(1 << 11, dtype=torch.int64))
    table_key, _ = dpf.keygen(torch.tensor([3]), 5, Stream(bytes(32)))
    assert isinstance(table_key, TableKey)
    with pytest.raises(TypeError, match="DPF tree key"):
        window.eval_window(table_key, torch.tensor([0]), 2, torch.zeros(4, dtype=torch.int64))
