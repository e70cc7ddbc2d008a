"""`suf plan`: predict an inference's costs without running it.

`PlanBackend` walks the same model graph as the three other backends, on shape-only ("meta")
tensors, and adds up each gate's predicted cost (suf.graph.cost, which mirrors every protocol and is
tested equal to the measured counters).  `plan` turns the totals into the report: online bytes
(both directions), exchanges, key bytes per party, peak memory per party, and `sigma_scope`: the
same figures for SIGMA's benchmark graph (the transformer blocks only, output mask in the key),
with our LayerNorm rsqrt apart, so they can be compared with sigma_cost_model.py.  In SUF mode
(`nonlinear="suf"`) the graph runs the SUF gates and "rsqrt" is "suf_rsqrt"; with
`truncation="gap"` products and LayerNorm means truncate with TrWithSlack.
"""
from __future__ import annotations

import contextlib
import os
import shutil

import torch

from suf.graph.backends import META, PlanBackend
from suf.keys import sigma_padded_size
from suf.mpc.gate import Cost, nonlinear_gate
from suf.models.loading import ModelSpec, param_shapes
from suf.runtime.jobs import SECRET_BYTES, input_shapes
from suf.models.transformer import forward
from suf.core.ring import packed_size

SIGMA_SYNC_BYTES = 2  # SIGMA's comm figures include the initial 1-byte sync, both directions


def _rsqrt(c: Cost, nonlinear: str) -> dict:
    """The LayerNorm rsqrt part (ours, not SIGMA's CPU one), reported apart."""
    sent, exchanges, key = c.by_gate.get(nonlinear_gate("rsqrt", nonlinear), (0, 0, 0))
    return {"rsqrt_comm_bytes": 2 * sent, "rsqrt_key_bytes": key, "rsqrt_exchanges": exchanges}


def _figures(c: Cost, nonlinear: str) -> dict:
    return {"comm_bytes": 2 * c.sent, "exchanges": c.exchanges, "key_bytes": c.key,
            "sigma_header_bytes": c.sigma_header, **_rsqrt(c, nonlinear),
            "per_gate": {g: {"comm_bytes": 2 * s, "exchanges": e, "key_bytes": k}
                         for g, (s, e, k) in sorted(c.by_gate.items())}}


def plan(spec: ModelSpec, length: int, batch: int = 1, key_dir: str | None = None, *,
         nonlinear: str = "sigma", truncation: str = "faithful") -> dict:
    """The predicted costs of one inference of `spec` at (B = batch, L = length) in the
    nonlinear mode `nonlinear` ("sigma" or "suf") and truncation mode `truncation` ("faithful"
    or "gap")."""
    be = PlanBackend(spec.bits, param_shapes(spec), nonlinear, truncation)
    inputs = [torch.empty(s, dtype=torch.int64, device=META)
              for s in input_shapes(spec, batch, length)]
    out = forward(be, spec, inputs[0], inputs[1] if len(inputs) > 1 else None)
    blocks = Cost()
    for c in be.layers.values():
        blocks += c
    gates = blocks + be.outside
    n_in = sum(x.numel() for x in inputs)
    input_bytes = packed_size(spec.bits, n_in)  # the client's x^, sent once to P0 (online)
    mask_words = 8 * (n_in + out.numel())       # the client's input and output masks
    weights = sum(int(torch.Size(s).numel()) for s in param_shapes(spec).values())
    act = 8 * out.numel()
    result = {
        "model": spec.name, "bits": spec.bits, "nonlinear": nonlinear, "truncation": truncation,
        "seq": length,
        "batch": batch,
        "comm_bytes": 2 * gates.sent + input_bytes,
        "exchanges": gates.exchanges + 1,
        "key_bytes_p0": gates.key + SECRET_BYTES,  # + the dealing's handshake secret
        "key_bytes_p1": gates.key + mask_words + SECRET_BYTES,
        "sigma_header_bytes": gates.sigma_header,
        "rsqrt": _rsqrt(gates, nonlinear),
        "setup_weight_bytes": packed_size(spec.bits, weights),
        # keys held in memory + masked weights + a working set of ~64 activations of the output size
        "peak_memory_bytes_per_party_estimate": gates.key + mask_words + 8 * weights + 64 * act,
        "per_layer": [{"layer": i, **_figures(c, nonlinear)}
                      for i, c in sorted(be.layers.items())],
        "outside_layers": _figures(be.outside, nonlinear),
    }
    sigma = _figures(blocks, nonlinear)
    sigma["comm_bytes"] += SIGMA_SYNC_BYTES
    sigma["key_bytes"] = sigma_padded_size(blocks.key + blocks.sigma_header + act)
    result["sigma_scope"] = sigma
    result["warnings"] = _fit_warnings(result, key_dir)
    return result


def _fit_warnings(result: dict, key_dir: str | None) -> list[str]:
    """Warn when the keys exceed the free disk (key files) or the RAM (keys in memory)."""
    warnings = []
    need = result["key_bytes_p0"] + result["key_bytes_p1"]
    disk = shutil.disk_usage(key_dir or ".").free
    if need > disk:
        warnings.append(f"both key files need {need / 2**30:.2f} GiB, the disk at "
                        f"{os.path.abspath(key_dir or '.')} has {disk / 2**30:.2f} GiB free")
    with contextlib.suppress(OSError, ValueError):
        ram = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        mem = 2 * result["peak_memory_bytes_per_party_estimate"]
        if mem > ram:
            warnings.append(f"both parties with keys in memory need about {mem / 2**30:.2f} GiB, "
                            f"{ram / 2**30:.2f} GiB of RAM is free")
    return warnings
