"""The DPF (suf.fss.dpf): reconstruction of 1{x == α}, key structure, key bytes, input checks."""
import pytest
import torch

from suf.fss import compare, dpf
from suf.fss.dpf import DPFKey
from suf.fss.sstable import TableKey
from suf.prg import Stream

KEY = bytes(range(32))
LARGE = (11, 13, 16, 20, 32, 37, 40, 50, 63, 64)
MIN64 = -(2**63)


def stream(device="cpu", sid=0):
    return Stream(KEY, sid, device=device)


def mask(n):
    return -1 if n == 64 else (1 << n) - 1


def boundary_alphas(n, count, st):
    """count points of n bits: 0, 2^n - 1, neighbours of a leaf-block edge, the rest random."""
    a = st.words64(count) & mask(n)
    a[:4] = torch.tensor([0, mask(n), 127 & mask(n), 128 & mask(n)])
    return a


def boundary_points(alphas, n, st):
    """(E, N) points: α-1, α, α+1 (mod 2^n), 0, 2^n - 1 and a random one for each key."""
    m = mask(n)
    N = alphas.shape[0]
    return torch.stack([(alphas - 1) & m, alphas, (alphas + 1) & m,
                        torch.zeros(N, dtype=torch.int64), torch.full((N,), m),
                        st.words64(N) & m])


def reconstruct_point(k0, k1, x):
    return dpf.eval_point(k0, x) ^ dpf.eval_point(k1, x)


# -- reconstruction ----------------------------------------------------------------------------
@pytest.mark.parametrize("n", range(1, 11))
def test_eval_all_exhaustive(n):
    """Every α and every x: the two full-domain shares XOR to the one-hot row of α."""
    alphas = torch.arange(1 << n)
    k0, k1 = dpf.keygen(alphas, n, stream())
    s0, s1 = dpf.eval_all(k0), dpf.eval_all(k1)
    assert s0.shape == (1 << n, 1 << n)
    assert torch.equal(s0 ^ s1, torch.eye(1 << n, dtype=torch.int64))
    assert bool(((s0 == 0) | (s0 == 1)).all())
    if n >= 4:  # a single share is no indicator: it holds ones far beyond the N points α
        assert int(s0.sum()) > (1 << (2 * n)) // 4


@pytest.mark.parametrize("n", range(1, 9))
def test_eval_point_exhaustive(n):
    """Every α, every x (one key evaluated at all 2^n points), and the shares equal eval_all's."""
    alphas = torch.arange(1 << n)
    k0, k1 = dpf.keygen(alphas, n, stream())
    x = torch.arange(1 << n)[:, None].expand(-1, 1 << n)  # x[e, i] = e
    b0 = dpf.eval_point(k0, x)
    assert torch.equal(b0 ^ dpf.eval_point(k1, x), (x == alphas).long())
    assert torch.equal(b0, dpf.eval_all(k0).T)


@pytest.mark.parametrize("n", (9, 10))
def test_eval_point_matches_eval_all(n):
    """Walk and breadth-first expansion agree share for share at every α (x at 16 points each)."""
    st = stream()
    alphas = torch.arange(1 << n)
    k0, k1 = dpf.keygen(alphas, n, st)
    x = torch.cat([boundary_points(alphas, n, st), st.ring((10, 1 << n), n)])
    for k in (k0, k1):
        assert torch.equal(dpf.eval_point(k, x), dpf.eval_all(k).gather(1, x.T).T)
    assert torch.equal(reconstruct_point(k0, k1, x), (x == alphas).long())


@pytest.mark.parametrize("n", LARGE)
def test_eval_point_large(n):
    st = stream()
    alphas = boundary_alphas(n, 24, st)
    k0, k1 = dpf.keygen(alphas, n, st)
    # with α ^ 1 and α ^ 128: in α's leaf block but not α, and in the sibling leaf
    x = torch.cat([boundary_points(alphas, n, st), torch.stack([alphas ^ 1, alphas ^ 128])])
    assert torch.equal(reconstruct_point(k0, k1, x), (x == alphas).long())


# -- key structure ---------------------------------------------------------------------------
def test_key_layout_and_control_bits():
    n, N = 20, 40
    st = stream()
    alphas = st.ring(N, n)
    k0, k1 = dpf.keygen(alphas, n, st)
    D = n - 7
    assert (k0.N, k0.depth, k0.party, k1.party) == (N, D, 0, 1)
    assert k0.seed.shape == (N, 2) and k0.cw.shape == (D - 1, N, 2)
    assert k0.tr.shape == (D - 1, N) and k0.leaf.shape == (2, N, 2)
    assert torch.equal((k0.seed[:, 0] ^ k1.seed[:, 0]) & 1, torch.ones(N, dtype=torch.int64))
    assert not bool((k0.seed == k1.seed).all(-1).any())
    # correction words are public to both parties; the root seeds are the only difference
    for name in ("cw", "tr", "leaf"):
        assert torch.equal(getattr(k0, name), getattr(k1, name))
    # along α's path the control bits differ at every node (bit n-1-i: level i's)
    _, t0 = dpf.walk(k0, alphas)
    _, t1 = dpf.walk(k1, alphas)
    assert torch.equal(t0 ^ t1, torch.full((N,), (1 << n) - (1 << 7)))


@pytest.mark.parametrize("n", (8, 12, 37, 63, 64))
def test_walk_of_many_points_per_key_equals_one_point_walks(n):
    """E points per key walk each shared tree node once (points that share a prefix, equal points,
    points in one leaf block) or each their own path (random points, from the depth where no two
    meet): the leaf blocks and control bits equal those of the one-point walks."""
    st = stream()
    N, m = 6, mask(n)
    alphas = boundary_alphas(n, N, st)
    k0, _ = dpf.keygen(alphas, n, st)
    near = (st.words64(N) + torch.arange(0, 2**20, 2**14)[:, None]) & m  # 64 points 2^14 apart
    clustered = torch.cat([near, boundary_points(alphas, n, st), alphas[None], (alphas ^ 5)[None]])
    spread = st.words64(40 * N).view(40, N) & m
    for x in (clustered[torch.randperm(clustered.shape[0])], spread):
        E = x.shape[0]
        block, ts = dpf.walk(k0, x)
        one_each, ts_one = dpf.walk(k0[torch.arange(N).repeat(E)], x.reshape(-1))
        assert torch.equal(block, one_each.view(E, N, 2))
        assert torch.equal(ts, ts_one.view(E, N))


def test_keygen_is_deterministic_in_the_stream():
    alphas = torch.tensor([5, 300, 1000, 7])
    a = dpf.keygen(alphas, 10, stream())
    b = dpf.keygen(alphas, 10, stream())
    c = dpf.keygen(alphas, 10, stream(sid=1))
    for name in ("seed", "cw", "tr", "leaf"):
        assert torch.equal(getattr(a[0], name), getattr(b[0], name))
    assert not torch.equal(a[0].seed, c[0].seed)
    assert torch.equal(reconstruct_point(*c, alphas), torch.ones(4, dtype=torch.int64))


def test_slicing_keys():
    st = stream()
    alphas = st.ring(10, 12)
    k0, k1 = dpf.keygen(alphas, 12, st)
    x = alphas[3:7]
    assert torch.equal(reconstruct_point(k0[3:7], k1[3:7], x), torch.ones(4, dtype=torch.int64))
    t0, t1 = dpf.keygen(alphas & 31, 5, stream())
    assert isinstance(t0, TableKey) and t0[2:4].N == 2
    assert torch.equal(reconstruct_point(t0[2:4], t1[2:4], alphas[2:4] & 31),
                       torch.ones(2, dtype=torch.int64))


# -- key bytes -------------------------------------------------------------------------------
# SIGMA's per-key bytes (sigma_spec §2.2): comparison/point and eval-all keys
SIGMA_BYTES = {("point", 8): 48.125, ("point", 12): 112.625, ("point", 15): 161,
               ("point", 32): 435.125, ("point", 35): 483.5, ("point", 38): 531.875,
               ("point", 39): 548, ("evalall", 8): 52, ("evalall", 13): 132}


@pytest.mark.parametrize("kind_n", sorted(SIGMA_BYTES))
def test_payload_size_matches_sigma_table(kind_n):
    kind, n = kind_n
    assert dpf.payload_size(kind, n, 32) == SIGMA_BYTES[kind_n] * 32
    assert dpf.payload_size("lt", n, 32) == dpf.payload_size("point", n, 32)


@pytest.mark.parametrize("n", (1, 2, 3, 5, 7, 8, 9, 13, 40, 50, 64))
@pytest.mark.parametrize("N", (1, 33))
def test_bytes_round_trip(n, N):
    st = stream()
    alphas = st.words64(N) & mask(n)
    k0, k1 = dpf.keygen(alphas, n, st)
    D = n - 7
    for kind in ("point", "evalall"):
        if kind == "evalall" and n > dpf.EVAL_ALL_MAX_BITS:
            continue
        if n <= 7:
            formula = N * 2 ** max(0, n - 3)
        elif kind == "point":
            formula = 16 * D * N + 32 * N + 4 * D * -(-N // 32)
        else:
            formula = 16 * D * N + 36 * N
        for k in (k0, k1):
            buf = dpf.to_bytes(k, kind)
            assert isinstance(buf, bytes)
            assert len(buf) == dpf.payload_size(kind, n, N) == formula
            back = dpf.from_bytes(buf, n, N, k.party, kind)
            assert type(back) is type(k) and back.party == k.party and back.n == n
            fields = ("table",) if n <= 7 else ("seed", "cw", "tr", "leaf")
            for name in fields:
                assert torch.equal(getattr(back, name), getattr(k, name))
            assert dpf.to_bytes(back, kind) == buf


def test_bytes_layout():
    """scw level-major (root seed first), then l0, l1, then tR aligned with scw (level 0 zero)."""
    n, N = 10, 33
    st = stream()
    k0, _ = dpf.keygen(st.ring(N, n), n, st)
    buf = dpf.to_bytes(k0, "point")
    blocks = torch.frombuffer(bytearray(buf[:16 * 5 * N]), dtype=torch.int64).view(5, N, 2)
    assert torch.equal(blocks[0], k0.seed) and torch.equal(blocks[1:3], k0.cw)
    assert torch.equal(blocks[3:], k0.leaf)
    words = torch.frombuffer(bytearray(buf[16 * 5 * N:]), dtype=torch.int32).view(3, 2).long()
    assert int(words[0].abs().sum()) == 0
    for lv in (1, 2):
        bits = [(int(words[lv, j // 32]) >> (j % 32)) & 1 for j in range(N)]
        assert bits == k0.tr[lv - 1].tolist()
    ev = dpf.to_bytes(k0, "evalall")
    w = torch.frombuffer(bytearray(ev[16 * 5 * N:]), dtype=torch.int32).long()
    assert torch.equal(w, k0.tr[0] | (k0.tr[1] << 1))


def test_bytes_rejects_bad_payloads(monkeypatch):
    monkeypatch.setenv("SUF_DEBUG", "1")  # payloads are scanned in debug mode (a GPU sync)
    n, N = 10, 5
    k0, _ = dpf.keygen(torch.arange(N), n, stream())
    buf = dpf.to_bytes(k0)
    with pytest.raises(ValueError, match="bytes"):
        dpf.from_bytes(buf[:-1], n, N, 0)
    with pytest.raises(ValueError, match="bytes"):
        dpf.from_bytes(buf, n + 1, N, 0)
    with pytest.raises(TypeError):
        dpf.from_bytes(list(buf), n, N, 0)
    with pytest.raises(ValueError, match="level 0"):
        dpf.from_bytes(buf[:16 * 5 * N] + b"\x01" + buf[16 * 5 * N + 1:], n, N, 0)
    with pytest.raises(ValueError, match="party"):
        dpf.from_bytes(buf, n, N, 2)
    with pytest.raises(ValueError, match="kind"):
        dpf.from_bytes(buf, n, N, 0, "dcf")
    with pytest.raises(ValueError, match="N"):
        dpf.payload_size("point", n, 0)
    with pytest.raises(ValueError, match="at most 32"):
        dpf.payload_size("evalall", 33, 1)
    t0, _ = dpf.keygen(torch.tensor([3]), 5, stream())
    with pytest.raises(ValueError, match="comparison|'point'"):
        dpf.to_bytes(t0, "lt")
    with pytest.raises(ValueError, match="beyond"):
        dpf.from_bytes(b"\xff", 2, 1, 0)  # a 2-bit table has 4 entries


# -- input checks ----------------------------------------------------------------------------
def test_keygen_rejects_bad_input():
    st = stream()
    with pytest.raises(TypeError, match="int64"):
        dpf.keygen(torch.tensor([1, 2], dtype=torch.int32), 10, st)
    with pytest.raises(TypeError, match="Tensor"):
        dpf.keygen([1, 2], 10, st)
    with pytest.raises(ValueError, match="outside"):
        dpf.keygen(torch.tensor([1024]), 10, st)
    with pytest.raises(ValueError, match="outside"):
        dpf.keygen(torch.tensor([-1]), 10, st)
    with pytest.raises(ValueError, match="1-D"):
        dpf.keygen(torch.zeros(2, 2, dtype=torch.int64), 10, st)
    with pytest.raises(ValueError, match="1-D"):
        dpf.keygen(torch.zeros(0, dtype=torch.int64), 10, st)
    for n in (0, 65, True, 8.0):
        with pytest.raises(ValueError, match="n must"):
            dpf.keygen(torch.tensor([0]), n, st)
    with pytest.raises(TypeError, match="Stream"):
        dpf.keygen(torch.tensor([0]), 10, b"key")


def test_eval_rejects_bad_input(monkeypatch):
    monkeypatch.setenv("SUF_DEBUG", "1")  # values are scanned in debug mode (a GPU sync)
    n = 12
    k0, k1 = dpf.keygen(torch.tensor([1, 2, 3]), n, stream())
    with pytest.raises(ValueError, match="outside"):
        dpf.eval_point(k0, torch.tensor([0, 1, 1 << n]))
    with pytest.raises(ValueError, match="shape"):
        dpf.eval_point(k0, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="shape"):
        dpf.eval_point(k0, torch.zeros(1, 1, 3, dtype=torch.int64))
    with pytest.raises(TypeError, match="int64"):
        dpf.eval_point(k0, torch.tensor([0, 1, 2], dtype=torch.int32))
    with pytest.raises(ValueError, match="12-bit"):
        dpf.eval_point(k0, torch.tensor([0, 1, 2]), n=13)
    with pytest.raises(ValueError, match="party 1"):
        dpf.eval_point(k1, torch.tensor([0, 1, 2]), party=0)
    with pytest.raises(TypeError, match="DPFKey"):
        dpf.eval_point("key", torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="at most 32"):
        dpf.eval_all(dpf.keygen(torch.tensor([0]), 33, stream())[0])
    lt0, _ = compare.keygen(torch.tensor([1, 2, 3]), 6, stream())
    with pytest.raises(ValueError, match="point key"):
        dpf.eval_point(lt0, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="point key"):
        dpf.eval_all(lt0)
    assert torch.equal(dpf.eval_point(k0, torch.tensor([1, 2, 3]), n=12, party=0)
                       ^ dpf.eval_point(k1, torch.tensor([1, 2, 3]), n=12, party=1),
                       torch.ones(3, dtype=torch.int64))


def test_key_constructor_checks():
    k0, _ = dpf.keygen(torch.tensor([1, 2, 3]), 12, stream())
    with pytest.raises(ValueError, match="cw has shape"):
        DPFKey(12, 0, k0.seed, k0.cw[:2], k0.tr, k0.leaf)
    with pytest.raises(ValueError, match="tr has shape"):
        DPFKey(12, 0, k0.seed, k0.cw, k0.tr[:2], k0.leaf)
    with pytest.raises(TypeError, match="leaf"):
        DPFKey(12, 0, k0.seed, k0.cw, k0.tr, k0.leaf.int())
    with pytest.raises(ValueError, match="party"):
        DPFKey(12, 3, k0.seed, k0.cw, k0.tr, k0.leaf)
    with pytest.raises(ValueError, match="n in"):
        DPFKey(7, 0, k0.seed, k0.cw, k0.tr, k0.leaf)
    with pytest.raises(ValueError, match="n in"):
        TableKey(8, 0, "point", torch.zeros(3, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="kind"):
        TableKey(3, 0, "dcf", torch.zeros(3, 2, dtype=torch.int64))


# -- CPU and CUDA deal and evaluate identically -------------------------------------------
@pytest.mark.cuda
@pytest.mark.parametrize("n", (5, 8, 13, 37, 64))
def test_cuda_matches_cpu(n):
    N = 300
    out = {}
    for dev in ("cpu", "cuda"):
        st = stream(dev)
        alphas = st.words64(N) & mask(n)
        k0, k1 = dpf.keygen(alphas, n, st)
        x = boundary_points(alphas.cpu(), n, stream(sid=5)).to(dev)
        res = [dpf.eval_point(k0, x), dpf.eval_point(k1, x)]
        if n <= 13:
            res += [dpf.eval_all(k0), dpf.eval_all(k1)]
        out[dev] = (k0, k1, [r.cpu() for r in res], dpf.to_bytes(k0), dpf.to_bytes(k1))
    (c0, c1, cres, cb0, cb1), (g0, g1, gres, gb0, gb1) = out["cpu"], out["cuda"]
    assert cb0 == gb0 and cb1 == gb1  # identical keys, byte for byte
    for a, b in zip(cres, gres):
        assert torch.equal(a, b)
    assert torch.equal(cres[0] ^ cres[1], (x.cpu() == alphas.cpu()).long())
    assert torch.equal(dpf.eval_point(dpf.from_bytes(cb0, n, N, 0, device="cuda"), x).cpu(),
                       cres[0])
