"""The one GPU hook: a test marked `cuda` is skipped where torch sees no CUDA device.

Folders follow the layers: unit (core, prg, fss, keys, net), gates (every gate against its
reference, SIGMA's vectors and its declared cost), e2e (models, runtime, CLI), gpu (CPU == GPU).
A test that needs CUDA is marked `cuda` and does not check for a GPU itself.  Without a GPU
the Triton kernels still run, in Triton's interpreter at small sizes
(tests/unit/test_kernels_interpret.py).
The helpers `harness`, `vectors` and `sigma_cost_model` live beside this file (pytest puts this
folder on sys.path).
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
