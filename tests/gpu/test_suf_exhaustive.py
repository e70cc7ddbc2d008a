"""SUF mode's gates through the secure protocol on EVERY input of their domain at the smallest ring
they run on (n = 32; rsqrt at n = 20), on the GPU: the output equals Sigma mode's reference for
each of the 2^20 GeLU/SiLU/tanh/sigmoid inputs, the 2^21 nExp inputs, every S mod 2^19 of the
inverse and the 2^19 row sums of squares of rsqrt.  Marked `cuda` (seconds there, hours on CPU);
tests/gates/test_suf.py runs the same checks on CPU on smaller domains."""
import pytest
import torch

import suf.compiler  # noqa: F401  (registers SUF mode's gates)
from harness import run_masked
from suf.compiler import library, lower
from suf.core.ring import low_mask
from suf.gates import gelu, inverse, nexp, rsqrt, silu

pytestmark = pytest.mark.cuda


def secure_on(desc, x: torch.Tensor, device: str) -> torch.Tensor:
    """desc's gate between two parties on ring values x, dealt and evaluated on `device`."""
    y, r_out, _ = run_masked(lambda d, r: lower.keygen(d, desc, r, op="g"),
                             lambda p, xh: lower.eval(p, desc, xh, op="g"), x, desc.n_in,
                             desc.n_out, device=device, seed=b"\x3c" * 32, timeout=600.0)
    return ((y - r_out) & low_mask(desc.n_out)).cpu()


def _signed(lo, hi, n):
    return torch.arange(lo, hi, dtype=torch.int64) & low_mask(n)


N = 32
CASES = {
    "suf_gelu": lambda: (library.gelu_descriptor(N), lambda x: gelu.reference(x, n=N)),
    "suf_silu": lambda: (library.silu_descriptor(N), lambda x: silu.reference(x, n=N)),
    "suf_tanh": lambda: (library.tanh_descriptor(N),
                         library.fixed_point_reference(torch.tanh, N)),
    "suf_sigmoid": lambda: (library.sigmoid_descriptor(N),
                            library.fixed_point_reference(torch.sigmoid, N)),
    "suf_nexp": lambda: (library.nexp_descriptor(N), lambda d: nexp.reference(d, n=N)),
    "suf_inverse": lambda: (library.inverse_descriptor(N, 128),
                            lambda s: inverse.reference(s, n=N, length=128)),
    "suf_rsqrt": lambda: (library.rsqrt_descriptor(20, 768),
                          lambda v: rsqrt.reference(v, n=20, d=768)),
}


def domain(desc) -> torch.Tensor:
    """Every input of the descriptor's domain (the whole reduced ring for "low")."""
    if desc.reduce.kind == "low":
        return torch.arange(1 << desc.bits, dtype=torch.int64)
    return _signed(desc.lo, desc.hi, desc.n_in)


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_input_on_the_gpu(name):
    desc, ref = CASES[name]()
    x = domain(desc)
    got = torch.cat([secure_on(desc, part, "cuda") for part in x.split(1 << 20)])
    assert torch.equal(got, ref(x) & low_mask(desc.n_out)), name
