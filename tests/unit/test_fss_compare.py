"""The comparison 1{x < α} from a DPF key (suf.fss.compare): reconstruction, the rule, key bytes."""
import pytest
import torch

from suf.fss import compare, dpf
from suf.fss.sstable import TableKey, low_mask, parity
from suf.prg import Stream

KEY = bytes(range(32))
LARGE = (11, 13, 16, 20, 32, 37, 40, 50, 63, 64)
MIN64 = -(2**63)


def stream(device="cpu", sid=0):
    return Stream(KEY, sid, device=device)


def mask(n):
    return -1 if n == 64 else (1 << n) - 1


def ult(a, b):
    """a < b for n-bit values held in int64 (unsigned order, also for n = 64)."""
    return ((a ^ MIN64) < (b ^ MIN64)).long()


def reconstruct(k0, k1, x):
    return compare.eval_lt(k0, x) ^ compare.eval_lt(k1, x)


@pytest.mark.parametrize("n", range(1, 10))
def test_exhaustive(n):
    """Every α and every x: 2^n keys, each evaluated at all 2^n points."""
    alphas = torch.arange(1 << n)
    k0, k1 = compare.keygen(alphas, n, stream())
    x = torch.arange(1 << n)[:, None].expand(-1, 1 << n)  # x[e, i] = e
    s0 = compare.eval_lt(k0, x)
    assert torch.equal(s0 ^ compare.eval_lt(k1, x), (x < alphas).long())
    if n >= 4:  # each share alone is far from the truth table
        assert int((s0 != (x < alphas).long()).sum()) > (1 << (2 * n)) // 4


def test_exhaustive_cross_n10():
    """n = 10 (3 tree levels): every α at 24 points, and 24 α (block edges and ends) at every x."""
    n = 10
    st = stream()
    alphas = torch.arange(1 << n)
    k0, k1 = compare.keygen(alphas, n, st)
    m = mask(n)
    fixed = torch.tensor([0, 1, 126, 127, 128, 129, 255, 256, 383, 384, 511, 512, 513, 639, 640,
                          767, 768, 895, 896, 1022, 1023])
    x = torch.cat([fixed[:, None].expand(-1, 1 << n),
                   torch.stack([(alphas - 1) & m, alphas, (alphas + 1) & m])])
    assert torch.equal(reconstruct(k0, k1, x), (x < alphas).long())
    pick = torch.cat([fixed, torch.tensor([300, 700, 1000])])
    x = torch.arange(1 << n)[:, None].expand(-1, pick.shape[0])
    assert torch.equal(reconstruct(k0[pick], k1[pick], x), (x < pick).long())


@pytest.mark.parametrize("n", LARGE)
def test_large(n):
    """Random α with α = 0, 2^n - 1 and leaf-block edges; x = α-1, α, α+1, 0, 2^n - 1, random."""
    st = stream()
    N = 16
    m = mask(n)
    alphas = st.words64(N) & m
    alphas[:4] = torch.tensor([0, m, 127, 128])
    k0, k1 = compare.keygen(alphas, n, st)
    x = torch.stack([(alphas - 1) & m, alphas, (alphas + 1) & m, torch.zeros(N, dtype=torch.int64),
                     torch.full((N,), m), st.words64(N) & m, alphas ^ 1, alphas ^ 128])
    assert torch.equal(reconstruct(k0, k1, x), ult(x, alphas))


def test_same_key_as_dpf():
    alphas = torch.tensor([0, 17, 200, 255, 256, 4095])
    c = compare.keygen(alphas, 12, stream())
    d = dpf.keygen(alphas, 12, stream())
    for name in ("seed", "cw", "tr", "leaf"):
        assert torch.equal(getattr(c[0], name), getattr(d[0], name))
    t0, t1 = compare.keygen(alphas & 63, 6, stream())
    assert isinstance(t0, TableKey) and t0.kind == "lt"
    assert torch.equal(t0.table ^ t1.table, low_mask(alphas & 63))


def test_three_points_per_key():
    """One key, E = 3 points (SIGMA's GeLU: DReLU and the two ends of an interval)."""
    n = 33
    st = stream()
    alphas = st.ring(50, n)
    k0, k1 = compare.keygen(alphas, n, st)
    m = mask(n)
    x = torch.stack([st.ring(50, n), (alphas + 255) & m, (alphas - 255) & m])
    s0 = compare.eval_lt(k0, x)
    assert s0.shape == (3, 50)
    assert torch.equal(s0 ^ compare.eval_lt(k1, x), (x < alphas).long())
    assert torch.equal(s0[2], compare.eval_lt(k0, x[2]))


def test_rule_variants_fail():
    """The rule's details matter: each plausible off-by-one gives wrong answers somewhere."""
    n = 9
    st = stream()
    alphas = torch.arange(1 << n)
    k0, k1 = compare.keygen(alphas, n, st)
    x = torch.cat([torch.stack([(alphas - 1) & 511, alphas, (alphas + 1) & 511]),
                   st.ring((40, 1 << n), n)])
    truth = (x < alphas).long()
    dirs = torch.stack([(x >> (n - 1 - i)) & 1 for i in range(n - 7)])
    walks = [(block, torch.stack([(tbits >> (n - 1 - i)) & 1 for i in range(n - 7)]))
             for block, tbits in (dpf.walk(k, x) for k in (k0, k1))]
    pos, last = x & 127, dirs[-1][..., None] == 1

    def rule(first=0, flip=1, right_from=1, left_to=1):
        """Bits pos+right_from..127 after a right step, 0..pos+left_to-1 after a left step."""
        before = torch.cat([torch.full_like(dirs[:1], first), dirs[:-1]])
        inside = torch.where(last, ~low_mask(pos + right_from), low_mask(pos + left_to))
        out = [(ts & (dirs ^ before)).sum(0) & 1 ^ parity(block & inside) ^ (flip & party)
               for party, (block, ts) in enumerate(walks)]
        return out[0] ^ out[1]

    assert torch.equal(rule(), truth)  # the rule as compare.eval_lt runs it
    for variant in (dict(first=1), dict(flip=0), dict(right_from=0), dict(left_to=0)):
        assert not torch.equal(rule(**variant), truth), variant


# -- key bytes: SIGMA's comparison key, 16(n-7) + 32 + (n-7)/8 bytes per key ----------------
@pytest.mark.parametrize("n, N", [(3, 1), (3, 45), (7, 45), (8, 1), (8, 45), (12, 33), (37, 45),
                                  (64, 40)])
def test_bytes(n, N):
    st = stream()
    alphas = st.words64(N) & mask(n)
    k0, k1 = compare.keygen(alphas, n, st)
    if n <= 7:
        formula = N * 2 ** max(0, n - 3)
    else:
        formula = 16 * (n - 7) * N + 32 * N + 4 * (n - 7) * -(-N // 32)
        if N % 32 == 0:
            assert formula == N * (16 * (n - 7) + 32 + (n - 7) / 8)
    back = []
    for k in (k0, k1):
        buf = compare.to_bytes(k)
        assert len(buf) == compare.payload_size(n, N) == formula
        back.append(compare.from_bytes(buf, n, N, k.party))
        assert compare.to_bytes(back[-1]) == buf
    x = torch.stack([alphas, (alphas + 1) & mask(n), st.words64(N) & mask(n)])
    assert torch.equal(reconstruct(*back, x), ult(x, alphas))
    with pytest.raises(ValueError, match="bytes"):
        compare.from_bytes(buf + b"\0", n, N, 1)


def test_rejects_bad_input(monkeypatch):
    monkeypatch.setenv("SUF_DEBUG", "1")  # values are scanned in debug mode (a GPU sync)
    st = stream()
    k0, k1 = compare.keygen(torch.tensor([3, 9]), 10, st)
    with pytest.raises(ValueError, match="outside"):
        compare.eval_lt(k0, torch.tensor([3, 1024]))
    with pytest.raises(ValueError, match="shape"):
        compare.eval_lt(k0, torch.tensor([3]))
    with pytest.raises(TypeError, match="int64"):
        compare.eval_lt(k0, torch.tensor([3.0, 1.0]))
    with pytest.raises(ValueError, match="10-bit"):
        compare.eval_lt(k0, torch.tensor([3, 1]), n=11)
    with pytest.raises(ValueError, match="party 0"):
        compare.eval_lt(k0, torch.tensor([3, 1]), party=1)
    with pytest.raises(TypeError, match="DPFKey"):
        compare.eval_lt((k0, k1), torch.tensor([3, 1]))
    p0, _ = dpf.keygen(torch.tensor([3, 9]), 5, st)
    with pytest.raises(ValueError, match="comparison key"):
        compare.eval_lt(p0, torch.tensor([3, 1]))
    with pytest.raises(ValueError, match="outside"):
        compare.keygen(torch.tensor([32]), 5, st)
    with pytest.raises(ValueError, match="n must"):
        compare.keygen(torch.tensor([0]), 0, st)


@pytest.mark.cuda
@pytest.mark.parametrize("n", (6, 8, 16, 50, 64))
def test_cuda_matches_cpu(n):
    N = 500
    res = {}
    for dev in ("cpu", "cuda"):
        st = stream(dev)
        alphas = st.words64(N) & mask(n)
        k0, k1 = compare.keygen(alphas, n, st)
        x = torch.stack([(alphas - 1) & mask(n), alphas, st.words64(N) & mask(n)])
        res[dev] = (compare.to_bytes(k0), compare.to_bytes(k1),
                    compare.eval_lt(k0, x).cpu(), compare.eval_lt(k1, x).cpu(), x.cpu(),
                    alphas.cpu())
    cpu, gpu = res["cpu"], res["cuda"]
    assert cpu[0] == gpu[0] and cpu[1] == gpu[1]
    for a, b in zip(cpu[2:], gpu[2:]):
        assert torch.equal(a, b)
    assert torch.equal(cpu[2] ^ cpu[3], ult(cpu[4], cpu[5]))
