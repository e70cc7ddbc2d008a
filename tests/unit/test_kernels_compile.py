"""Every Triton kernel compiles to PTX for an H100 (sm_90) without a GPU, also with the scalar
arguments Triton may compile in as constants (a value of 1).  The dealer's stream kernel once
called `.to` on such an argument and failed only on the GPU, only for stream id 1.  Needs the
`triton` package (skipped without it).  What the kernels compute, bit for bit against the torch
path, is checked in Triton's interpreter by tests/unit/test_kernels_interpret.py."""
import pytest

triton = pytest.importorskip("triton")

from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from suf.core import ring_kernels  # noqa: E402
from suf.fss import kernels  # noqa: E402
from suf.prg import kernels as prg_kernels  # noqa: E402

P = "*i64"
C = "constexpr"


def compile_ptx(fn, signature: dict, constants: dict) -> str:
    src = ASTSource(fn=fn, signature=signature, constexprs=constants)
    return triton.compile(src, target=GPUTarget("cuda", 90, 32)).asm["ptx"]


@pytest.mark.parametrize("one", [False, True])
def test_stream_kernel(one):
    sig = {"out_ptr": P, "params_ptr": P, "nblocks": C if one else "i32", "ROUNDS": C, "BLOCK": C}
    const = {"ROUNDS": 12, "BLOCK": 128, **({"nblocks": 1} if one else {})}
    assert ".entry" in compile_ptx(prg_kernels._stream_kernel, sig, const)


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
    expand = dict(seed_ptr=P, out_ptr=P, N=C, ROUNDS=C, BLOCK=C)
    assert ".entry" in compile_ptx(kernels._expand_kernel, expand,
                                   dict(N=1, ROUNDS=12, BLOCK=128))
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



@pytest.mark.parametrize("one", [False, True])
def test_window_kernel(one):
    """dpf_window's kernel; with one key, one slice bit (pmask = 1) and k = 0 (size = 1), the
    arguments that may be 1 (LPK, shift, Ls and R are never specialized)."""
    sig = dict(seed_ptr=P, cw_ptr=P, tr_ptr=P, leaf_ptr=P, start_ptr=P, W_ptr=P, S_ptr=P,
               V_ptr=P, N="i32", LPK="i32", shift="i32", Ls="i32", R="i32", pmask="i64",
               nmask="i64", ring="i64", mask32="i32", size="i32", STACK=C, ROUNDS=C, BLOCK=C)
    const = dict(STACK=8, ROUNDS=12, BLOCK=64)
    if one:
        sig.update(N=C, pmask=C, size=C)
        const.update(N=1, pmask=1, size=1)
    assert ".entry" in compile_ptx(kernels._window_kernel, sig, const)
