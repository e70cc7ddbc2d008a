"""The PRG: ChaCha block function against RFC 8439 / `cryptography`, a scalar pure-Python ChaCha12,
and fixed test vectors of G(s) and the dealer stream (the same vectors are checked on CUDA)."""
import pytest
import torch

from suf.prg import Stream, block_words, chacha, chacha_block, expand

M = 2**64


def _scalar_chacha(key_words, counter, nonce, rounds):
    """Straight-line ChaCha on Python ints, independent of suf.prg."""
    def rotl(v, r):
        return ((v << r) | (v >> (32 - r))) & 0xFFFFFFFF

    def qr(s, a, b, c, d):
        s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = rotl(s[d] ^ s[a], 16)
        s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = rotl(s[b] ^ s[c], 12)
        s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = rotl(s[d] ^ s[a], 8)
        s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = rotl(s[b] ^ s[c], 7)

    init = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574, *key_words,
            counter & 0xFFFFFFFF, counter >> 32, *nonce]
    s = list(init)
    for _ in range(rounds // 2):
        for a, b, c, d in [(0, 4, 8, 12), (1, 5, 9, 13), (2, 6, 10, 14), (3, 7, 11, 15),
                           (0, 5, 10, 15), (1, 6, 11, 12), (2, 7, 8, 13), (3, 4, 9, 14)]:
            qr(s, a, b, c, d)
    return [(x + y) & 0xFFFFFFFF for x, y in zip(s, init)]


def _seed_int(pair):
    lo, hi = pair
    return ((hi % M) << 64) | (lo % M)


def _expand_scalar(seed_int, rounds=12):
    k = seed_int & ~1
    words = [(k >> (32 * i)) & 0xFFFFFFFF for i in range(4)] + [0] * 4
    out = _scalar_chacha(words, 0, (0, 0), rounds)
    return [sum(out[4 * j + i] << (32 * i) for i in range(4)) for j in range(4)]


def test_rfc8439_block_function():
    # RFC 8439 §2.3.2: key 00..1f, counter 1, nonce 00:00:00:09:00:00:00:4a:00:00:00:00
    key = [int.from_bytes(bytes(range(4 * i, 4 * i + 4)), "little") for i in range(8)]
    out = chacha_block([torch.tensor(k) for k in key], 1 | (0x09000000 << 32), (0x4A000000, 0),
                       rounds=20)
    assert [hex(v) for v in out.tolist()[:4]] == ["0xe4e7f110", "0x15593bd1", "0x1fdd0f50",
                                                  "0xc47120a3"]
    assert out.tolist()[15] == 0x4E3C50A2


def test_chacha20_matches_cryptography():
    algo = pytest.importorskip("cryptography.hazmat.primitives.ciphers")
    seeds = torch.randint(-2**63, 2**63 - 1, (8, 2))
    ex = expand(seeds, rounds=20)
    for i in range(8):
        key = (_seed_int(seeds[i].tolist()) & ~1).to_bytes(16, "little") + bytes(16)
        ks = algo.Cipher(algo.algorithms.ChaCha20(key, bytes(16)), None).encryptor().update(bytes(64))
        got = b"".join((v % M).to_bytes(8, "little") for v in ex[i].reshape(-1).tolist())
        assert got == ks


def test_expand_matches_scalar_chacha12():
    seeds = torch.randint(-2**63, 2**63 - 1, (64, 2))
    ex = expand(seeds)
    for i in range(64):
        want = _expand_scalar(_seed_int(seeds[i].tolist()))
        got = [_seed_int(b) for b in ex[i].tolist()]
        assert got == want


# G(s) test vectors (ChaCha12, key = s with bit 0 cleared, 16 zero bytes; counter 0, nonce 0).
EXPAND_VECTORS = [
    ((0, 0), ["0x53f955076a9af49b", "0xd583265f12ce1f81", "0x1474e049bbc32904",
              "0x5f15ae2ea589007e"]),
    ((0x0123456789ABCDEF, -0x0123456789ABCDF0),
     ["0x2d9a1d26f9515970", "0x56b580a3e4ac9ae0", "0xd1aa02cb45b5a739", "0x700dda4001c1a675"]),
]


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def test_expand_vectors(device):
    for seed, want in EXPAND_VECTORS:
        ex = expand(torch.tensor([seed], device=device))[0]
        got = [hex(v % M) for v in ex[:2].reshape(-1).tolist()]
        assert got == want
        # the control bit is not part of the key
        ex1 = expand(torch.tensor([[seed[0] | 1, seed[1]]], device=device))[0]
        assert torch.equal(ex, ex1)


STREAM_VECTOR = ["0xb138245391a1983b", "0x8ee64cbdfd4d1477", "0xc7869ff2a1b91b1d",
                 "0x3a724d6bf74afd23", "0xde1588429b4db6e4", "0xda3fe9d1108ba83f",
                 "0x9bce894663a73705", "0x32ec9356c415c143", "0x3c2f6cfcb9dd0307",
                 "0x2db5f089e09024cd"]


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def test_stream_vector_and_continuation(device):
    st = Stream(bytes(range(32)), 7, device=device)
    assert [hex(v % M) for v in st.words64(10).tolist()] == STREAM_VECTOR
    # the stream continues at the next block: words 16.. of a fresh stream
    again = Stream(bytes(range(32)), 7, device=device).words64(40)
    assert torch.equal(st.words64(24).cpu(), again[16:40].cpu())
    r = Stream(bytes(32), device=device).ring((3, 4), 13)
    assert r.shape == (3, 4) and int(r.min()) >= 0 and int(r.max()) < 2**13


@pytest.mark.cuda
def test_stream_kernel_equals_cpu_across_the_counter_word():
    """The fused CUDA stream gives the CPU's words, also where the block counter carries into
    its high 32-bit word, for sizes that are not whole blocks or whole kernel programs."""
    key = bytes(range(100, 132))
    for start, count in ((0, 1), (2**32 - 3, 100), (12345, 8 * 129 + 5)):
        cpu, gpu = Stream(key, 0xDEADBEEF, "cpu"), Stream(key, 0xDEADBEEF, "cuda")
        cpu.block_counter = gpu.block_counter = start
        assert torch.equal(gpu.words64(count).cpu(), cpu.words64(count))
        assert gpu.block_counter == cpu.block_counter


def test_stream_rejects_bad_keys():
    with pytest.raises(ValueError):
        Stream(b"short")
    a, b = Stream.from_os(), Stream.from_os()
    assert not torch.equal(a.words64(4), b.words64(4))


def test_int32_lanes_equal_int64_lanes():
    key = [torch.randint(0, 2**32, (1000,)) for _ in range(8)]
    ctr = torch.randint(0, 2**62, (1000,))
    for rounds in (8, 12, 20):
        a = chacha_block(key, ctr, (5, 2**32 - 1), rounds, lanes32=True)
        b = chacha_block(key, ctr, (5, 2**32 - 1), rounds, lanes32=False)
        assert torch.equal(a, b)


def test_cpu_expand_across_lane_chunks(monkeypatch):
    """The CPU expansion runs in chunks of lanes (here 7, 7 and a short 6) and reads the seeds'
    words through a uint32 view: a non-contiguous (E, N) batch gives the int64 torch path's blocks."""
    monkeypatch.setattr(chacha, "_LANE_CHUNK", 7)
    seeds = torch.randint(-2**63, 2**63 - 1, (5, 4, 2)).transpose(0, 1)
    words = block_words(seeds)
    words[0] &= ~1
    want = chacha_block([*words, 0, 0, 0, 0], 0, lanes32=False)  # (4, 5, 16) 32-bit words
    want = (want[..., 0::2] | (want[..., 1::2] << 32)).view(4, 5, 4, 2)
    assert torch.equal(expand(seeds), want)
