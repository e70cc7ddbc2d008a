"""SIGMA's gates, one module per gate (suf.mpc.gate describes the interface: key layout, keygen,
eval, reference, example).  Importing this package registers every gate; `tables` holds the
public lookup tables, `beaver` and `tr_gadget` the pieces several gates share.

Adding a gate: write its module (see docs/architecture.md), add it to the import below, and add
its test file under tests/gates/.
"""
from suf.gates import (causal_matmul, drelu, gelu, inverse, layernorm, less_than, linear, lut,
                       matmul, mul, nexp, relu, rsqrt, select, sign_extend, silu, softmax,
                       softmax_max, tr, tr_with_slack, trfloor)
from suf.mpc.gate import REGISTRY

__all__ = ["REGISTRY", "causal_matmul", "drelu", "gelu", "inverse", "layernorm", "less_than",
           "linear", "lut",
           "matmul", "mul", "nexp", "relu", "rsqrt", "select", "sign_extend", "silu", "softmax",
           "softmax_max", "tr", "tr_with_slack", "trfloor"]
