"""Every Triton kernel compiles to PTX for an H100 (sm_90) without a GPU, also with the scalar
arguments Triton may compile in as constants (a value of 1).  The dealer's stream kernel once
called `.to` on such an argument and failed only on the GPU, only for stream id 1.  Needs the
`triton` package (the GPU machines have it; CI's CPU machines skip)."""
import pytest

triton = pytest.importorskip("triton")

from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from suf.core import ring_kernels  # noqa: E402
from suf.fss import kernels  # noqa: E402

P = "*i64"
C = "constexpr"


def compile_ptx(fn, signature: dict, constants: dict) -> str:
    src = ASTSource(fn=fn, signature=signature, constexprs=constants)
    return triton.compile(src, target=GPUTarget("cuda", 90, 32)).asm["ptx"]


@pytest.mark.parametrize("one", [False, True])
def test_stream_kernel(one):
    sig = {"out_ptr": P, "params_ptr": P, "nblocks": C if one else "i32", "ROUNDS": C, "BLOCK": C}
    const = {"ROUNDS": 12, "BLOCK": 128, **({"nblocks": 1} if one else {})}
    assert ".entry" in compile_ptx(kernels._stream_kernel, sig, const)


@pytest.mark.parametrize("bits", [3, 13, 50, 63])
@pytest.mark.parametrize("one", [False, True])
def test_pack_kernels(bits, one):
    n = C if one else "i32"
    ones = {"n": 1, "nwords": 1} if one else {}
    assert ".entry" in compile_ptx(
        ring_kernels._pack_kernel, {"x_ptr": P, "out_ptr": P, "n": n, "nwords": n, "BITS": C,
                                    "BLOCK": C}, {"BITS": bits, "BLOCK": 256, **ones})
    assert ".entry" in compile_ptx(
        ring_kernels._unpack_kernel, {"w_ptr": P, "out_ptr": P, "n": n, "BITS": C, "BLOCK": C},
        {"BITS": bits, "BLOCK": 256, **({"n": 1} if one else {})})


def test_fss_kernels_with_one_key():
    walk = dict(seed_ptr=P, cw_ptr=P, tr_ptr=P, leaf_ptr=P, x_ptr=P, out_ptr=P, N=C, n="i32",
                party="i32", E=C, LT=C, ROUNDS=C, BLOCK=C)
    assert ".entry" in compile_ptx(kernels._walk_kernel, walk,
                                   dict(N=1, E=2, LT=True, ROUNDS=12, BLOCK=128))
    keygen = dict(alpha_ptr=P, root0_ptr=P, root1_ptr=P, seed0_ptr=P, seed1_ptr=P, cw_ptr=P,
                  tr_ptr=P, leaf_ptr=P, N=C, n="i32", ROUNDS=C, BLOCK=C)
    assert ".entry" in compile_ptx(kernels._keygen_kernel, keygen,
                                   dict(N=1, ROUNDS=12, BLOCK=128))
    lut = dict(seed_ptr=P, cw_ptr=P, tr_ptr=P, leaf_ptr=P, x_ptr=P, T_ptr=P, u_ptr=P, v_ptr=P,
               N=C, party=C, k="i32", E=C, STACK=C, ROUNDS=C, BLOCK=C)
    assert ".entry" in compile_ptx(kernels._lut_kernel, lut,
                                   dict(N=1, party=1, E=1, STACK=8, ROUNDS=12, BLOCK=64))


def test_stream_kernel_interpreted_equals_the_cpu_stream():
    """Triton's interpreter (a subprocess: TRITON_INTERPRET is read at import) runs the stream
    kernel on CPU tensors: the same words as suf.prg's torch stream, for stream ids and key words
    equal to 1 and across the counter's 32-bit carry."""
    import os
    import subprocess
    import sys

    code = """
import torch
from suf.fss import kernels
from suf.prg import Stream
key = bytes([1, 0, 0, 0] * 8)
for sid, start, n in ((1, 1, 9), (0xDEADBEEF, 2**32 - 3, 100), (7, 0, 8 * 129 + 5)):
    cpu = Stream(key, sid, "cpu")
    cpu.block_counter = start
    want = cpu.words64(n)
    nb = -(-n // 8)
    params = torch.tensor([*cpu.key_words, sid, start], dtype=torch.int64)
    out = torch.empty((nb, 8), dtype=torch.int64)
    kernels._stream_kernel[kernels._grid(nb, kernels._BLOCK)](out, params, nb, ROUNDS=12,
                                                             BLOCK=kernels._BLOCK)
    assert torch.equal(out.reshape(-1)[:n], want), (sid, start, n)
"""
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
