"""The Triton kernels of suf.fss.kernels, bit for bit against the torch path (suf.fss.dpf,
compare, lut) on the same key tensors.

The torch path runs with the kernels switched off (`torch_path`), so these tests keep comparing two
implementations after dpf/compare/lut call the kernels themselves.  Keys come as random tensors
(bit equality of the walks) and from keygen (the outputs reconstruct to the point function,
1{x < alpha} and the rotated table entry).  x covers alpha-1, alpha, alpha+1, the neighbours
across the leaf and tree boundaries, and random points.

The kernel tests are marked `cuda` (the conftest hook skips them without a GPU) and run at full
size there; tests/unit/test_kernels_interpret.py runs the same kernels at small sizes in Triton's
interpreter on CPU tensors.  The input checks run everywhere.
"""
import contextlib
import os

import pytest
import torch

from suf.fss import compare, dpf, kernels, lut, window
from suf.fss.dpf import DPFKey
from suf.fss.lut import LUTKey
from suf.prg import Stream, expand
from suf.core.ring import low_mask

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
DEV = "cuda"
needs_triton = pytest.mark.skipif(kernels.triton is None, reason="needs Triton")
N = 4096
WIDTHS = (8, 9, 13, 32, 37, 50, 64)
MIN64 = -(2**63)


@contextlib.contextmanager
def torch_path():
    """Run suf.fss with the Triton dispatch switched off (dpf's switch and the kernels' own)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dpf, "USE_KERNELS", False)
        mp.setattr(kernels, "available", lambda *tensors: False)
        yield


def _rand64(shape, gen):
    return torch.randint(MIN64, 2**63 - 1, shape, dtype=torch.int64, generator=gen).to(DEV)


def _ult(a, b):
    """a < b as unsigned 64-bit values held in int64."""
    return (a ^ MIN64) < (b ^ MIN64)


def _random_key(n, gen, party, count=N):
    D = n - 7
    return DPFKey(n, party, _rand64((count, 2), gen), _rand64((D - 1, count, 2), gen),
                  _rand64((D - 1, count), gen) & 1, _rand64((2, count, 2), gen))


def _parts(key):
    return key.seed, key.cw, key.tr, key.leaf


def _points(alpha, n, gen):
    """Two (3, N) batches: alpha-1, alpha, alpha+1; alpha's neighbours across bit 0 and the leaf
    boundary, and random points."""
    m = low_mask(n)
    return (torch.stack([(alpha - 1) & m, alpha, (alpha + 1) & m]),
            torch.stack([alpha ^ 1, alpha ^ (1 << 7), _rand64(alpha.shape, gen) & m]))


def _deal(alpha, n, seed_byte):
    """Keys from dpf.keygen (torch path) and the root seeds its stream drew."""
    roots = Stream(bytes([seed_byte]) * 32, device=DEV).blocks((2, alpha.shape[0]))
    with torch_path():
        k0, k1 = dpf.keygen(alpha, n, Stream(bytes([seed_byte]) * 32, device=DEV))
    return k0, k1, roots


# -- kernels against torch --------------------------------------------------------------------
@pytest.mark.cuda
@needs_triton
@pytest.mark.parametrize("rounds", [12, 8, 20])
def test_expand_matches_prg(rounds):
    gen = torch.Generator().manual_seed(rounds)
    seeds = _rand64((N, 2), gen)
    assert torch.equal(kernels.expand(seeds, rounds), expand(seeds, rounds))
    assert torch.equal(kernels.expand(seeds.view(4, -1, 2), rounds),
                       expand(seeds, rounds).view(4, -1, 4, 2))


@pytest.mark.cuda
@needs_triton
@pytest.mark.parametrize("n", WIDTHS)
def test_walks_match_torch_on_random_keys(n):
    gen = torch.Generator().manual_seed(n)
    alpha = _rand64((N,), gen) & low_mask(n)
    for party in (0, 1):
        key = _random_key(n, gen, party)
        for x in _points(alpha, n, gen):
            point = kernels.dpf_eval_point(*_parts(key), x, n, party)
            lt = kernels.dpf_eval_lt(*_parts(key), x, n, party)
            with torch_path():
                assert torch.equal(point, dpf.eval_point(key, x))
                assert torch.equal(lt, compare.eval_lt(key, x))
            # one point per key gives the same bits as three
            assert torch.equal(kernels.dpf_eval_lt(*_parts(key), x[2], n, party), lt[2])
            assert torch.equal(kernels.dpf_eval_point(*_parts(key), x[0], n, party), point[0])


@pytest.mark.cuda
@needs_triton
@pytest.mark.parametrize("n", WIDTHS)
def test_keygen_matches_torch_and_reconstructs(n):
    gen = torch.Generator().manual_seed(100 + n)
    alpha = _rand64((N,), gen) & low_mask(n)
    alpha[:4] = torch.tensor([0, 1, 127, low_mask(n)])  # the domain's ends and a leaf's end
    k0, k1, roots = _deal(alpha, n, n)
    got = kernels.dpf_keygen(alpha, roots[0], roots[1], n)
    for g, w in zip(got, (k0.seed, k1.seed, k0.cw, k0.tr, k0.leaf)):
        assert torch.equal(g, w)
    for x in _points(alpha, n, gen):
        lt = [kernels.dpf_eval_lt(*_parts(k), x, n, k.party) for k in (k0, k1)]
        pt = [kernels.dpf_eval_point(*_parts(k), x, n, k.party) for k in (k0, k1)]
        assert torch.equal(lt[0] ^ lt[1], _ult(x, alpha[None]).long())
        assert torch.equal(pt[0] ^ pt[1], (x == alpha[None]).long())


@pytest.mark.cuda
@needs_triton
@pytest.mark.parametrize("k", range(8, 17))
def test_lut_matches_torch_and_reconstructs(k):
    gen = torch.Generator().manual_seed(200 + k)
    count = min(N, 256)
    alpha = _rand64((count,), gen) & low_mask(k)
    x_hat = torch.stack([_rand64((count,), gen) & low_mask(k), alpha, (alpha + 1) & low_mask(k)])
    table = _rand64((1 << k,), gen)
    keys = _deal(alpha, k, k)[:2]
    u, v = [], []
    for key in keys:
        got = kernels.dpf_lut(*_parts(key), x_hat, table, k, key.party)
        with torch_path():
            want = lut.eval(LUTKey(key), x_hat, table)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
        assert torch.equal(kernels.dpf_lut(*_parts(key), x_hat[0], table, k, key.party)[1],
                           got[1][0])
        u.append(got[0])
        v.append(got[1])
    sigma = u[0] + u[1]
    assert bool(((sigma == 1) | (sigma == -1)).all())
    assert torch.equal(v[0] + v[1], sigma * table[(x_hat - alpha) & low_mask(k)])


@pytest.mark.cuda
@needs_triton
@pytest.mark.parametrize("lanes", [kernels.WINDOW_LANES, 0])
@pytest.mark.parametrize("n,k,count", [(40, 16, 2048), (33, 9, 4096), (19, 19, 1024),
                                       (64, 12, 512), (64, 20, 64), (31, 12, 1024),
                                       (32, 12, 1024), (12, 5, 4096), (8, 8, 512)])
def test_window_matches_torch_and_reconstructs(n, k, count, lanes, monkeypatch):
    """dpf_window at the gates' sizes (nExp n=40 k=16, GELU n=33 k=9, inverse n=19 k=19 over the
    whole ring) and at the edges (n = 31 | 32: the kernel's two ways of placing the window in a
    slice), with the default slicing and the fewest PRG calls (lanes = 0: the DFS fills the
    STACK for k >= 16); windows around 0 and alphas at their ends."""
    monkeypatch.setattr(kernels, "WINDOW_LANES", lanes)
    gen = torch.Generator().manual_seed(300 + n + k)
    m, size = low_mask(n), 1 << k
    start = _rand64((count,), gen) & m
    start[:4] = torch.tensor([m, (m - size // 2 + 1) & m, 0, (1 << max(k, 8)) - 1])
    offset = torch.randint(0, 2 * size, (count,), generator=gen).to(DEV)
    offset[:4] = torch.tensor([-1, 0, size - 1, size])
    alpha = (start + offset) & m
    weights = _rand64((size,), gen)
    out = []
    for key in _deal(alpha, n, n)[:2]:
        got = kernels.dpf_window(*_parts(key), start, weights, n, k)
        with torch_path():
            want = window.eval_window(key, start, k, weights)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
        out.append(got)
    i = (alpha - start) & m
    inside = (i >= 0) & (i < size)  # i < 0: an offset >= 2^63 (n = 64)
    sigma = out[0][0] - out[1][0]
    assert torch.equal(sigma.abs(), inside.long())
    assert torch.equal(out[0][1] - out[1][1], sigma * weights[torch.where(inside, i, 0)])


# -- input checks and the fallback (run everywhere) -------------------------------------------
def _cpu_key(n, count=5):
    gen = torch.Generator().manual_seed(1)
    D = n - 7
    return (torch.randint(0, 9, (count, 2), generator=gen),
            torch.randint(0, 9, (D - 1, count, 2), generator=gen),
            torch.randint(0, 2, (D - 1, count), generator=gen),
            torch.randint(0, 9, (2, count, 2), generator=gen))


@pytest.mark.skipif(INTERPRET, reason="the interpreter runs CPU tensors")
def test_cpu_tensors_fall_back_to_torch():
    key = _cpu_key(13)
    x = torch.arange(5)
    assert kernels.dpf_eval_point(*key, x, 13, 0) is None
    assert kernels.dpf_eval_lt(*key, x, 13, 1) is None
    assert kernels.expand(key[0]) is None
    assert kernels.dpf_lut(*_cpu_key(9), x, torch.zeros(512, dtype=torch.int64), 9, 0) is None
    assert kernels.dpf_keygen(x, key[0], key[0], 13) is None
    assert kernels.dpf_window(*key, x, torch.zeros(1024, dtype=torch.int64), 13, 10) is None
    assert not kernels.available(x)


def test_bad_input_is_named():
    seed, cw, tr, leaf = _cpu_key(13)
    x = torch.arange(5)
    with pytest.raises(ValueError, match="cw must have shape"):
        kernels.dpf_eval_lt(seed, cw[1:], tr, leaf, x, 13, 0)
    with pytest.raises(ValueError, match="n must be"):
        kernels.dpf_eval_lt(seed, cw, tr, leaf, x, 7, 0)
    with pytest.raises(TypeError, match="leaf must have dtype"):
        kernels.dpf_eval_point(seed, cw, tr, leaf.int(), x, 13, 0)
    with pytest.raises(ValueError, match="x must have shape"):
        kernels.dpf_eval_point(seed, cw, tr, leaf, torch.zeros(4, 5, dtype=torch.int64), 13, 0)
    with pytest.raises(ValueError, match="party must be"):
        kernels.dpf_eval_point(seed, cw, tr, leaf, x, 13, 2)
    with pytest.raises(ValueError, match="rounds"):
        kernels.expand(seed, rounds=7)
    with pytest.raises(ValueError, match="table must have shape"):
        kernels.dpf_lut(*_cpu_key(9), x, torch.zeros(256, dtype=torch.int64), 9, 0)
    with pytest.raises(ValueError, match="n must be"):
        kernels.dpf_lut(seed, cw, tr, leaf, x, torch.zeros(128, dtype=torch.int64), 7, 0)
    with pytest.raises(ValueError, match="root1 must have shape"):
        kernels.dpf_keygen(x, seed, seed[:4], 13)
    weights = torch.zeros(1024, dtype=torch.int64)
    with pytest.raises(ValueError, match="weights must have shape"):
        kernels.dpf_window(seed, cw, tr, leaf, x, weights[:-1], 13, 10)
    with pytest.raises(ValueError, match="start must have shape"):
        kernels.dpf_window(seed, cw, tr, leaf, x[:4], weights, 13, 10)
    with pytest.raises(ValueError, match="window bits k"):
        kernels.dpf_window(seed, cw, tr, leaf, x, weights, 13, 14)
    with pytest.raises(TypeError, match="weights must have dtype"):
        kernels.dpf_window(seed, cw, tr, leaf, x, weights.int(), 13, 10)
