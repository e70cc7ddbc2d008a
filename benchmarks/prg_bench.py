"""PRG candidates for the DPF tree expansion, and the fused DPF kernels, in expansions per second.

    PYTHONPATH=src python3 benchmarks/prg_bench.py --out results.json

CPU (any machine): ChaCha12 through the torch path (suf.prg.expand); with the `cryptography`
package also AES-128 keyed by the seed (SIGMA's G: a fresh key schedule per seed, then the left
and right children), ChaCha20 keyed by the seed (OpenSSL's; the same per-key pattern), and
fixed-key AES in Matyas-Meyer-Oseas form (one key, ECB over the whole batch of 2N blocks).
GPU (CUDA and Triton): the standalone expansion kernel (ChaCha8/12/20; it writes all 4 output
blocks, so it is bound by memory), the torch path on the GPU, tree walks of 57 levels (n = 64
point evaluation: ChaCha8/12/20, and a T-table AES-128 keyed per seed with its tables read through
L1 or gathered from shared memory; one block function per level in both), and the fused kernels at the project's targets (n = 32 comparison over 2^20 elements,
LUT eval-all, keygen).  GPU times are kernel times from triton.testing.do_bench (CUDA events).

`--check-aes` verifies the Triton AES against `cryptography` (CPU; run it with TRITON_INTERPRET=1
where there is no GPU) and exits.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time

import torch

import provenance

from suf.fss import kernels
from suf.prg import expand

try:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
except ImportError:
    Cipher = None

triton = kernels.triton
if triton is not None:
    import triton.language as tl
    from triton.testing import do_bench


# -- AES-128 tables (FIPS-197), built from the field arithmetic --------------------------------
def _xtime(a: int) -> int:
    return ((a << 1) ^ 0x1B) & 0xFF if a & 0x80 else a << 1


def _sbox() -> list:
    inv = [0] * 256  # multiplicative inverses by brute force over GF(2^8)
    for a in range(1, 256):
        for b in range(1, 256):
            p, x, y = 0, a, b
            while y:
                if y & 1:
                    p ^= x
                x, y = _xtime(x), y >> 1
            if p == 1:
                inv[a] = b
                break
    out = []
    for a in range(256):
        b, s = inv[a], inv[a]
        for _ in range(4):
            b = ((b << 1) | (b >> 7)) & 0xFF
            s ^= b
        out.append(s ^ 0x63)
    return out


def aes_tables(device) -> torch.Tensor:
    """int32 (5, 256): Te0..Te3 (SubBytes+MixColumns per byte, big-endian columns) and S."""
    S = _sbox()
    te0 = [(_xtime(s) << 24) | (s << 16) | (s << 8) | (_xtime(s) ^ s) for s in S]
    rows = [te0] + [[((v >> r) | (v << (32 - r))) & 0xFFFFFFFF for v in te0] for r in (8, 16, 24)]
    rows.append(S)
    t = torch.tensor(rows, dtype=torch.int64)
    return torch.where(t >= 2**31, t - 2**32, t).to(torch.int32).to(device)


if triton is not None:
    @triton.jit
    def _bswap(w):
        return ((w >> 24) | ((w >> 8) & 0xFF00) | ((w << 8) & 0xFF0000) | (w << 24))

    @triton.jit
    def _lookup(tab, regs, i, SMEM: tl.constexpr):
        """Table word tab[i]: a load through L1, or (SMEM) a gather from the program's copy of the
        tables, which Triton keeps in shared memory."""
        if SMEM:
            return tl.gather(regs, i.to(tl.int32), 0).to(tl.uint32, bitcast=True)
        return tl.load(tab + i).to(tl.uint32, bitcast=True)

    @triton.jit
    def _sb(tab, regs, w, shift: tl.constexpr, SMEM: tl.constexpr):
        """S-box of byte (w >> shift) placed back at `shift`."""
        return _lookup(tab, regs, 1024 + ((w >> shift) & 0xFF), SMEM) << shift

    @triton.jit
    def _te(tab, regs, i: tl.constexpr, w, shift: tl.constexpr, SMEM: tl.constexpr):
        return _lookup(tab, regs, 256 * i + ((w >> shift) & 0xFF), SMEM)

    @triton.jit
    def _aes_child(k0, k1, k2, k3, bit, tab, regs, SMEM: tl.constexpr):
        """AES-128 with key (k0..k3, big-endian words) of the block [2·bit, 0, ..., 0]; the round
        keys are expanded on the fly (a fresh key schedule per call, as SIGMA's GPU code)."""
        s0 = k0 ^ (bit << 25)
        s1 = k1
        s2 = k2
        s3 = k3
        rc = tl.full(k0.shape, 1, tl.uint32)
        for r in tl.static_range(10):
            rot = (k3 << 8) | (k3 >> 24)
            k0 = k0 ^ (_sb(tab, regs, rot, 24, SMEM) | _sb(tab, regs, rot, 16, SMEM)
                       | _sb(tab, regs, rot, 8, SMEM) | _sb(tab, regs, rot, 0, SMEM)) ^ (rc << 24)
            k1 = k1 ^ k0
            k2 = k2 ^ k1
            k3 = k3 ^ k2
            rc = ((rc << 1) ^ tl.where(rc >= 0x80, 0x1B, 0)) & 0xFF
            if r < 9:
                t0 = (_te(tab, regs, 0, s0, 24, SMEM) ^ _te(tab, regs, 1, s1, 16, SMEM)
                      ^ _te(tab, regs, 2, s2, 8, SMEM) ^ _te(tab, regs, 3, s3, 0, SMEM))
                t1 = (_te(tab, regs, 0, s1, 24, SMEM) ^ _te(tab, regs, 1, s2, 16, SMEM)
                      ^ _te(tab, regs, 2, s3, 8, SMEM) ^ _te(tab, regs, 3, s0, 0, SMEM))
                t2 = (_te(tab, regs, 0, s2, 24, SMEM) ^ _te(tab, regs, 1, s3, 16, SMEM)
                      ^ _te(tab, regs, 2, s0, 8, SMEM) ^ _te(tab, regs, 3, s1, 0, SMEM))
                t3 = (_te(tab, regs, 0, s3, 24, SMEM) ^ _te(tab, regs, 1, s0, 16, SMEM)
                      ^ _te(tab, regs, 2, s1, 8, SMEM) ^ _te(tab, regs, 3, s2, 0, SMEM))
            else:
                t0 = (_sb(tab, regs, s0, 24, SMEM) | _sb(tab, regs, s1, 16, SMEM)
                      | _sb(tab, regs, s2, 8, SMEM) | _sb(tab, regs, s3, 0, SMEM))
                t1 = (_sb(tab, regs, s1, 24, SMEM) | _sb(tab, regs, s2, 16, SMEM)
                      | _sb(tab, regs, s3, 8, SMEM) | _sb(tab, regs, s0, 0, SMEM))
                t2 = (_sb(tab, regs, s2, 24, SMEM) | _sb(tab, regs, s3, 16, SMEM)
                      | _sb(tab, regs, s0, 8, SMEM) | _sb(tab, regs, s1, 0, SMEM))
                t3 = (_sb(tab, regs, s3, 24, SMEM) | _sb(tab, regs, s0, 16, SMEM)
                      | _sb(tab, regs, s1, 8, SMEM) | _sb(tab, regs, s2, 0, SMEM))
            s0 = t0 ^ k0
            s1 = t1 ^ k1
            s2 = t2 ^ k2
            s3 = t3 ^ k3
        return s0, s1, s2, s3

    @triton.jit(do_not_specialize=["levels"])
    def _aes_walk_kernel(seed_ptr, x_ptr, tab, out_ptr, N, levels, BLOCK: tl.constexpr,
                         SMEM: tl.constexpr):
        """`levels` steps s <- AES_{s & ~1}(2·bit) along x's bits (a DPF eval without corrections:
        the PRG cost of the walk), the last block's low word out (bytes as SIGMA: key and output
        little-endian 128-bit integers)."""
        key = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        valid = key < N
        lo = tl.load(seed_ptr + 2 * key, mask=valid, other=0)
        hi = tl.load(seed_ptr + 2 * key + 1, mask=valid, other=0)
        x = tl.load(x_ptr + key, mask=valid, other=0)
        w0 = (lo & 0xFFFFFFFF).to(tl.uint32)
        w1 = (lo >> 32).to(tl.uint32)
        w2 = (hi & 0xFFFFFFFF).to(tl.uint32)
        w3 = (hi >> 32).to(tl.uint32)
        regs = tl.load(tab + tl.arange(0, 2048), mask=tl.arange(0, 2048) < 1280, other=0)
        for i in range(levels):
            bit = ((x >> (levels - 1 - i)) & 1).to(tl.uint32)
            o0, o1, o2, o3 = _aes_child(_bswap(w0 & 0xFFFFFFFE), _bswap(w1), _bswap(w2),
                                        _bswap(w3), bit, tab, regs, SMEM)
            w0, w1, w2, w3 = _bswap(o0), _bswap(o1), _bswap(o2), _bswap(o3)
        out_lo = (w0.to(tl.uint64) | (w1.to(tl.uint64) << 32)).to(tl.int64, bitcast=True)
        out_hi = (w2.to(tl.uint64) | (w3.to(tl.uint64) << 32)).to(tl.int64, bitcast=True)
        tl.store(out_ptr + 2 * key, out_lo, mask=valid)
        tl.store(out_ptr + 2 * key + 1, out_hi, mask=valid)


def aes_walk(seeds, x, levels, smem=False):
    out = torch.empty_like(seeds)
    N = seeds.shape[0]
    _aes_walk_kernel[(-(-N // 128),)](seeds, x, aes_tables(seeds.device), out, N, levels,
                                      BLOCK=128, SMEM=smem, num_warps=4)
    return out


def _u128(pair) -> int:
    return (pair[0] % 2**64) | ((pair[1] % 2**64) << 64)


# Known answers of the 3-level AES walk (computed with `cryptography`, which the GPU machine lacks):
# seeds as (lo, hi) int64 pairs, the path x, and the final 128-bit block.
AES_WALK_VECTORS = [
    ((0x0123456789ABCDEF, 0x0F1E2D3C4B5A6978), 5, 0x5998DAAC206724403526DE2DC63A61BB),
    ((-1, -2), 2, 0x6687300A850EE49F0D6DA173B225428E),
    ((5, 0), 7, 0xA6EB011B5066A205636C3BA599184B34),
    ((-0x7000000000000001, 0x55), 0, 0x677B062676C93BBAE2633A18B1A1771F),
]


def _aes_walk_reference(s: int, x: int, levels: int) -> int:
    for lvl in range(levels):
        bit = (x >> (levels - 1 - lvl)) & 1
        enc = Cipher(algorithms.AES((s & ~1).to_bytes(16, "little")), modes.ECB()).encryptor()
        s = int.from_bytes(enc.update(bytes([2 * bit]) + bytes(15)), "little")
    return s


def check_aes(device, smem: bool) -> None:
    """The Triton AES walk against AES-128 keyed by the seed (cryptography, or its known answers)."""
    seeds = torch.tensor([v[0] for v in AES_WALK_VECTORS], dtype=torch.int64)
    x = torch.tensor([v[1] for v in AES_WALK_VECTORS], dtype=torch.int64)
    got = aes_walk(seeds.to(device), x.to(device), 3, smem).cpu()
    for i, (pair, path, want) in enumerate(AES_WALK_VECTORS):
        if Cipher is not None:
            assert _aes_walk_reference(_u128(pair), path, 3) == want, "stale known answer"
        assert _u128(got[i].tolist()) == want, f"AES walk (smem={smem}) mismatch at vector {i}"
    print(f"Triton AES walk (smem={smem}) == AES-128 keyed by the seed, 4 seeds x 3 levels")


# -- CPU ---------------------------------------------------------------------------------------
def _rate(fn, count, min_time=1.0):
    """Calls of fn per second x count, best of repeated runs for at least min_time."""
    fn()
    best, spent = float("inf"), 0.0
    while spent < min_time:
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        best, spent = min(best, dt), spent + dt
    return count / best


def bench_cpu() -> dict:
    res = {"threads": torch.get_num_threads()}
    N = 1 << 16
    seeds = torch.randint(-2**63, 2**63 - 1, (N, 2), dtype=torch.int64)
    res["chacha12_torch_expand"] = _rate(lambda: expand(seeds), N)
    if Cipher is None:
        return res
    keys = [os.urandom(16) for _ in range(1 << 14)]
    pt = bytes(32)  # the left and right plaintext blocks

    def aes_keyed():
        for k in keys:
            Cipher(algorithms.AES(k), modes.ECB()).encryptor().update(pt)

    def chacha20_keyed():
        for k in keys:
            Cipher(algorithms.ChaCha20(k + k, bytes(16)), None).encryptor().update(pt)

    res["aes128_keyed_per_seed_both_children"] = _rate(aes_keyed, len(keys))
    res["chacha20_keyed_per_seed_openssl"] = _rate(chacha20_keyed, len(keys))
    blocks = os.urandom(32 * N)  # fixed-key AES in MMO form: AES_k(s ^ i) ^ s ^ i, i = 0, 1
    enc = Cipher(algorithms.AES(os.urandom(16)), modes.ECB()).encryptor()
    res["aes128_fixed_key_mmo_ecb_batch"] = _rate(lambda: enc.update(blocks), N)
    return res


# -- GPU ---------------------------------------------------------------------------------------
def _ms(fn):
    return do_bench(fn, warmup=50, rep=300)


def bench_gpu() -> dict:
    dev = "cuda"
    res = {"gpu": torch.cuda.get_device_name(), "triton": triton.__version__}
    rnd = lambda *shape: torch.randint(-2**63, 2**63 - 1, shape, dtype=torch.int64, device=dev)
    N = 1 << 24
    seeds = rnd(N, 2)
    warm = rnd(1 << 22, 2)
    do_bench(lambda: kernels.expand(warm), warmup=2000, rep=2000)  # let the clocks settle first
    for r in (8, 12, 20):
        res[f"chacha{r}_triton_expand_4blocks"] = N / _ms(lambda: kernels.expand(seeds, r)) * 1e3
    small = seeds[: 1 << 22]
    res["chacha12_torch_expand_gpu"] = small.shape[0] / _ms(lambda: expand(small)) * 1e3

    # tree walks: n = 64 point evaluation, D - 1 + 1 = 57 block functions per key
    n, Nw = 64, 1 << 22
    D = n - 7
    key = rnd(Nw, 2), rnd(D - 1, Nw, 2), rnd(D - 1, Nw) & 1, rnd(2, Nw, 2)
    x = rnd(Nw)
    for r in (8, 12, 20):
        ms = _ms(lambda: kernels.dpf_eval_point(*key, x, n, 0, rounds=r))
        res[f"chacha{r}_dpf_walk_n64"] = Nw * D / ms * 1e3
    Na = 1 << 20
    for smem in (False, True):
        name = f"aes128_keyed_triton_ttable_{'smem' if smem else 'l1'}_walk_n64"
        try:  # tl.gather (the shared-memory tables) is new in Triton; record a failure, go on
            check_aes(dev, smem)
            ms = _ms(lambda: aes_walk(key[0][:Na].contiguous(), x[:Na].contiguous(), D, smem))
            res[name] = Na * D / ms * 1e3
        except Exception as e:  # noqa: BLE001
            res[name] = f"failed: {type(e).__name__}: {str(e)[:300]}"

    # the targets: n = 32 comparison over 2^20 elements (keys on the GPU), E = 1 and 3 points
    n, Nc = 32, 1 << 20
    D = n - 7
    key = rnd(Nc, 2), rnd(D - 1, Nc, 2), rnd(D - 1, Nc) & 1, rnd(2, Nc, 2)
    x = rnd(3, Nc) & 0xFFFFFFFF
    res["lt_n32_2^20_ms"] = _ms(lambda: kernels.dpf_eval_lt(*key, x[0], n, 0))
    res["lt_n32_2^20_E3_ms"] = _ms(lambda: kernels.dpf_eval_lt(*key, x, n, 0))
    res["point_n32_2^20_ms"] = _ms(lambda: kernels.dpf_eval_point(*key, x[0], n, 0))
    res["lt_n32_expansions_per_s"] = Nc * D / res["lt_n32_2^20_ms"] * 1e3
    alpha = x[0].clone()
    res["keygen_n32_2^20_ms"] = _ms(lambda: kernels.dpf_keygen(alpha, key[0], key[0], n))
    for k in (8, 10, 13, 16):
        Nl = 1 << 20 if k <= 13 else 1 << 16
        lk = rnd(Nl, 2), rnd(k - 8, Nl, 2), rnd(k - 8, Nl) & 1, rnd(2, Nl, 2)
        table = rnd(1 << k)
        xh = rnd(Nl) & ((1 << k) - 1)
        ms = _ms(lambda: kernels.dpf_lut(*lk, xh, table, k, 0))
        res[f"lut_k{k}_N{Nl}_ms"] = ms
    return res


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("--check-aes", action="store_true")
    ap.add_argument("--no-cpu", action="store_true")
    args = ap.parse_args()
    if args.check_aes:
        for smem in (False, True):
            check_aes("cuda" if torch.cuda.is_available() else "cpu", smem)
        return
    res = {"date": datetime.date.today().isoformat(), **provenance.stamp(),
           "command": "PYTHONPATH=src python3 benchmarks/prg_bench.py", "torch": torch.__version__,
           "cpu": _cpu_model(), "cores": os.cpu_count(),
           "unit": "expansions/s unless the name ends in _ms (kernel milliseconds)"}
    if not args.no_cpu:
        res["cpu_results"] = bench_cpu()
    if torch.cuda.is_available() and triton is not None:
        res["gpu_results"] = bench_gpu()
    text = json.dumps(res, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
