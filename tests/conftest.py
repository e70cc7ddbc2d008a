"""The one GPU hook: a test marked `cuda` is skipped where torch sees no CUDA device.

Folders follow the layers: unit (core, prg, fss, keys, net), gates (every gate against its
reference, SIGMA's vectors and its declared cost), e2e (models, runtime, CLI), gpu (CPU == GPU).
A test that needs CUDA is marked `cuda` and does not check for a GPU itself.  Without a GPU
the Triton kernels still run, in Triton's interpreter at small sizes
(tests/unit/test_kernels_interpret.py).
The helpers `harness`, `vectors` and `sigma_cost_model` live beside this file (pytest puts this
folder on sys.path).  The fixture `suf_gate_calls` records the calls of SUF mode's
gates (nonlinear mode "suf").
"""
from __future__ import annotations

import pytest
import torch


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU (torch sees no CUDA device)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def suf_gate_calls(monkeypatch):
    """Spies on SUF mode's gates: for each of gelu, silu, nexp, inverse, rsqrt, wraps the
    registered "suf_<name>" to record its calls.  Yields the list of (gate, function) calls;
    teardown restores the registry."""
    import suf.compiler  # noqa: F401  (registers SUF mode's gates)
    from suf.mpc import gate as gates

    calls = []

    def spy(name, what, f):
        def wrapped(*args, **kwargs):
            calls.append((name, what))
            return f(*args, **kwargs)
        return wrapped

    for g in gates.SUF_FORMS:
        name = f"suf_{g}"
        base = gates.REGISTRY[name]
        monkeypatch.setitem(gates.REGISTRY, name, gates.Gate(
            name, base.layout, spy(name, "keygen", base.keygen), spy(name, "eval", base.eval),
            spy(name, "reference", base.reference), base.example))
    yield calls
