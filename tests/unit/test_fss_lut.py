"""SIGMA's DPF table lookup, FSS part (suf.fss.lut): (u, v) shares, the sign-bit map, key bytes."""
import pytest
import torch

from suf.fss import compare, dpf, lut
from suf.prg import Stream

KEY = bytes(range(32))


def stream(device="cpu", sid=0):
    return Stream(KEY, sid, device=device)


def lookup(k0, k1, x_hat, table):
    """Both parties' (u, v), reconstructed to (σ, T[x̂ - α]) through U = 1{σ = +1}."""
    u0, v0 = lut.eval(k0, x_hat, table)
    u1, v1 = lut.eval(k1, x_hat, table)
    sigma = u0 + u1
    U = lut.sign_bit_share(u0, 0) ^ lut.sign_bit_share(u1, 1)
    assert bool(((sigma == 1) | (sigma == -1)).all())
    assert torch.equal(U, (sigma == 1).long())
    return sigma, (2 * U - 1) * (v0 + v1)


@pytest.mark.parametrize("k", range(1, 9))
def test_exhaustive(k):
    """Every α = r_in mod 2^k and every x̂: one key per α, evaluated at all 2^k inputs."""
    st = stream()
    size = 1 << k
    r_in = st.words64(size) & ~(size - 1) | torch.arange(size)  # high bits random, low bits = α
    table = st.words64(size)
    k0, k1 = lut.keygen(r_in, k, st)
    x_hat = torch.arange(size)[:, None].expand(-1, size)  # x_hat[e, i] = e
    _, got = lookup(k0, k1, x_hat, table)
    assert torch.equal(got, table[(x_hat - r_in) & (size - 1)])


@pytest.mark.parametrize("k", (9, 10))
def test_exhaustive_cross(k):
    """Every α at 12 inputs (α-1, α, α+1 among them), and 12 α at every input."""
    st = stream()
    size = 1 << k
    alphas = torch.arange(size)
    table = st.words64(size)
    k0, k1 = lut.keygen(alphas, k, st)
    x_hat = torch.cat([torch.stack([(alphas - 1) & (size - 1), alphas, (alphas + 1) & (size - 1)]),
                       st.ring((9, size), k)])
    _, got = lookup(k0, k1, x_hat, table)
    assert torch.equal(got, table[(x_hat - alphas) & (size - 1)])
    pick = torch.tensor([0, 1, 127, 128, 129, 255, 256, size // 2, size - 129, size - 128,
                         size - 2, size - 1])
    x_hat = torch.arange(size)[:, None].expand(-1, 12)
    _, got = lookup(lut.LUTKey(k0.dpf[pick]), lut.LUTKey(k1.dpf[pick]), x_hat, table)
    assert torch.equal(got, table[(x_hat - pick) & (size - 1)])


@pytest.mark.parametrize("k", (11, 13, 16))
def test_larger_tables(k):
    st = stream()
    size = 1 << k
    N = 6
    r_in = st.words64(N)
    r_in[:2] = torch.tensor([0, size - 1])
    table = st.words64(size)
    k0, k1 = lut.keygen(r_in, k, st)
    alphas = r_in & (size - 1)
    x_hat = torch.stack([(alphas - 1) & (size - 1), alphas, (alphas + 1) & (size - 1),
                         st.ring(N, k)])
    _, got = lookup(k0, k1, x_hat, table)
    assert torch.equal(got, table[(x_hat - alphas) & (size - 1)])


def test_u_and_v_definition():
    """u = Σ w_j and v = Σ T[x̂ - j]·w_j with w = +bits (party 0) or -bits (party 1), mod 2^64."""
    st = stream()
    k, N = 9, 20
    table = st.words64(1 << k)
    keys = lut.keygen(st.words64(N), k, st)
    x_hat = st.ring(N, k)
    for key in keys:
        bits = dpf.eval_all(key.dpf)
        sign = 1 - 2 * key.party
        rows = table[(x_hat[:, None] - torch.arange(1 << k)) & ((1 << k) - 1)]
        u, v = lut.eval(key, x_hat, table, k=k, party=key.party)
        assert torch.equal(u, sign * bits.sum(1))
        assert torch.equal(v, sign * (rows * bits).sum(1))


def test_chunks(monkeypatch):
    """Keys are expanded a chunk at a time: no N·2^k tensor, the same result."""
    st = stream()
    k, N = 10, 40
    table = st.words64(1 << k)
    k0, k1 = lut.keygen(st.words64(N), k, st)
    x_hat = st.ring((2, N), k)
    whole = lut.eval(k0, x_hat, table)
    sizes = []
    expand_all = dpf.eval_all

    def spy(key, **kw):
        sizes.append(key.N)
        return expand_all(key, **kw)

    monkeypatch.setattr(dpf, "eval_all", spy)
    monkeypatch.setattr(lut, "CHUNK_ENTRIES", 7 * 2 * (1 << k))
    parts = lut.eval(k0, x_hat, table)
    assert sizes == [7] * 5 + [5]
    assert torch.equal(parts[0], whole[0]) and torch.equal(parts[1], whole[1])
    # by default a 13-bit table is looked up 2^22 / 2^13 = 512 keys at a time (32 MiB temporaries)
    monkeypatch.setattr(lut, "CHUNK_ENTRIES", 1 << 22)
    sizes.clear()
    k13, _ = lut.keygen(st.words64(600), 13, st)
    lut.eval(k13, st.ring(600, 13), st.words64(1 << 13))
    assert sizes == [512, 88]


def test_sign_bit_share():
    """Both SIGMA maps, (u+1)/2 for P0 and 2 - (4-u)/2 for P1 on u mod 4, give U = 1{σ = +1}."""
    st = stream()
    u0 = torch.cat([torch.arange(-8, 8), st.words64(64)])
    for sigma in (1, -1):
        u1 = sigma - u0
        s0, s1 = lut.sign_bit_share(u0, 0), lut.sign_bit_share(u1, 1)
        assert torch.equal(s0 ^ s1, torch.full_like(u0, int(sigma == 1)))
        assert torch.equal(s0, ((u0 & 3) + 1) // 2 % 2)
        assert torch.equal(s1, (2 - (4 - (u1 & 3)) // 2) % 2)
    with pytest.raises(ValueError, match="party"):
        lut.sign_bit_share(u0, 2)
    with pytest.raises(TypeError):
        lut.sign_bit_share(u0.int(), 0)


# -- key bytes: SIGMA's eval-all key, 16(k-7) + 36 bytes per key --------------------------
@pytest.mark.parametrize("k", (4, 7, 8, 10, 13))
@pytest.mark.parametrize("N", (1, 33))
def test_bytes(k, N):
    st = stream()
    table = st.words64(1 << k)
    keys = lut.keygen(st.words64(N), k, st)
    formula = N * 2 ** max(0, k - 3) if k <= 7 else N * (16 * (k - 7) + 36)
    x_hat = st.ring(N, k)
    for key in keys:
        buf = lut.to_bytes(key)
        assert len(buf) == lut.payload_size(k, N) == formula
        back = lut.from_bytes(buf, k, N, key.party)
        assert back.k == k and back.party == key.party and back.N == N
        for a, b in zip(lut.eval(back, x_hat, table), lut.eval(key, x_hat, table)):
            assert torch.equal(a, b)
    if k in (8, 13):  # SIGMA's LUT key (sigma_spec §2.4) is this + 1/8 B mask bit + 40 B select
        assert lut.payload_size(k, 32) / 32 + 0.125 + 40 == {8: 92.125, 13: 172.125}[k]


def test_rejects_bad_input(monkeypatch):
    monkeypatch.setenv("SUF_DEBUG", "1")  # values are scanned in debug mode (a GPU sync)
    st = stream()
    k0, k1 = lut.keygen(torch.tensor([5, 100]), 8, st)
    table = torch.zeros(256, dtype=torch.int64)
    x = torch.tensor([1, 2])
    with pytest.raises(ValueError, match="2\\^8 = 256 entries"):
        lut.eval(k0, x, torch.zeros(512, dtype=torch.int64))
    with pytest.raises(TypeError, match="table"):
        lut.eval(k0, x, torch.zeros(256, dtype=torch.int32))
    with pytest.raises(ValueError, match="outside"):
        lut.eval(k0, torch.tensor([1, 256]), table)
    with pytest.raises(ValueError, match="8-bit"):
        lut.eval(k0, x, table, k=9)
    with pytest.raises(ValueError, match="party 1"):
        lut.eval(k1, x, table, party=0)
    with pytest.raises(TypeError, match="LUTKey"):
        lut.eval(k0.dpf, x, table)
    with pytest.raises(ValueError, match="k must"):
        lut.keygen(torch.tensor([1]), 33, st)
    with pytest.raises(TypeError, match="int64"):
        lut.keygen(torch.tensor([1.0]), 8, st)
    with pytest.raises(ValueError, match="r_in"):
        lut.keygen(torch.zeros(2, 2, dtype=torch.int64), 8, st)
    lt0, _ = compare.keygen(torch.tensor([3]), 5, st)
    with pytest.raises(ValueError, match="point key"):
        lut.LUTKey(lt0)
    with pytest.raises(ValueError, match="bytes"):
        lut.from_bytes(lut.to_bytes(k0), 9, 2, 0)


@pytest.mark.cuda
@pytest.mark.parametrize("k", (6, 8, 13))
def test_cuda_matches_cpu(k):
    N = 1000
    res = {}
    for dev in ("cpu", "cuda"):
        st = stream(dev)
        table = st.words64(1 << k)
        r_in = st.words64(N)
        k0, k1 = lut.keygen(r_in, k, st)
        x_hat = st.ring(N, k)
        out = [*lut.eval(k0, x_hat, table), *lut.eval(k1, x_hat, table)]
        res[dev] = ([lut.to_bytes(k0), lut.to_bytes(k1)], [o.cpu() for o in out],
                    (table.cpu(), r_in.cpu(), x_hat.cpu()))
    assert res["cpu"][0] == res["cuda"][0]
    for a, b in zip(res["cpu"][1], res["cuda"][1]):
        assert torch.equal(a, b)
    u0, v0, u1, v1 = res["cpu"][1]
    table, r_in, x_hat = res["cpu"][2]
    sigma = u0 + u1
    assert torch.equal(sigma * (v0 + v1), table[(x_hat - r_in) & ((1 << k) - 1)])
