"""One configuration: the fixed-point scale, the default ring widths and the timeouts.

Every module reads these names from here; none defines its own copy.
"""
from __future__ import annotations

import os

SCALE = 12  # f: fractional bits of every fixed-point value (SIGMA's scale; floor truncation)

# the nonlinear mode of a model or gate: SIGMA's gates (the default) or the SUF-compiled ones
NONLINEAR_MODES = ("sigma", "suf")

# the truncation after every product and LayerNorm's mean: SIGMA's TrFloor (the default) or
# TrWithSlack ("gap": exact while the value lies in [-2^(n-2), 2^(n-2)))
TRUNCATION_MODES = ("faithful", "gap")



def default_bits(model_name: str) -> int:
    """SIGMA's ring widths (sigma_spec §1.3): 37 for bert-tiny, 50 for every other model here."""
    return 37 if model_name == "bert-tiny" else 50

# seconds a party waits for its peer: one gate between two processes, and one model inference
GATE_TIMEOUT_S = 60.0
MODEL_TIMEOUT_S = 600.0


def debug_checks() -> bool:
    """SUF_DEBUG=1 makes every online gate check that its inputs lie in the ring (a GPU sync per
    check).  Off by default: the online path trusts the masked values it computed itself; the
    reference backend always checks every range precondition."""
    return os.environ.get("SUF_DEBUG", "") not in ("", "0")
