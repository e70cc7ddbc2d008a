"""The SUF compiler (suf_spec.md §2): univariate fixed-point functions as descriptors (suf.compiler.ir),
lowered to exact FSS gates with per-element masks (suf.compiler.lower), and SUF mode's gates
(suf.compiler.library, registered on import as suf_gelu, suf_silu, suf_nexp, suf_inverse,
suf_rsqrt, suf_tanh, suf_sigmoid).

    from suf.compiler import compile_function, gate_from
    desc = compile_function("my_tanh", torch.tanh, n=50)      # fitted and checked
    gate = gate_from("my_tanh", lambda n: desc, reference, example)
"""
from suf.compiler import ir, library, lower
from suf.compiler.library import compile_function, descriptor, gate_from

__all__ = ["compile_function", "descriptor", "gate_from", "ir", "library", "lower"]
