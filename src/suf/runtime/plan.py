"""`suf plan`: predict an inference's costs without running it.

`PlanBackend` walks the same model graph as the three other backends, on shape-only ("meta")
tensors, and adds up each gate's predicted cost (suf.graph.cost, which mirrors every protocol and is
tested equal to the measured counters).  `plan` turns the totals into the report: online bytes
(both directions), exchanges, key bytes per party, peak memory per party, and `sigma_scope`: the
same figures for SIGMA's benchmark graph (the transformer blocks only, output mask in the key),
with our LayerNorm rsqrt apart, so they can be compared with sigma_cost_model.py.
"""
from __future__ import annotations

import contextlib
import os
import shutil

import torch

from suf.graph import cost
from suf.keys import sigma_padded_size
from suf.graph.backends import F, Backend
from suf.models.loading import ModelSpec, param_shapes, spec_from_config
from suf.runtime.inference import _input_shapes
from suf.models.transformer import forward
from suf.core.ring import packed_size

META = torch.device("meta")
SIGMA_SYNC_BYTES = 2  # SIGMA's comm figures include the initial 1-byte sync, both directions


class PlanBackend(Backend):
    """Shape-only walk of the graph; `layers[i]` and `outside` hold the predicted costs."""

    def __init__(self, spec: ModelSpec):
        shapes = param_shapes(spec)
        super().__init__(spec.bits, {k: torch.empty(s, dtype=torch.int64, device=META)
                                     for k, s in shapes.items()})
        self.layers: dict[int, cost.Cost] = {}
        self.outside = cost.Cost()

    def _add(self, c: cost.Cost) -> None:
        if self._layer is None:
            self.outside += c
        else:
            self.layers.setdefault(self._layer, cost.Cost())
            self.layers[self._layer] += c

    def linear(self, x, name, shift=F):
        w = self.param(f"{name}.w")
        out = torch.empty((*x.shape[:-1], w.shape[-1]), dtype=torch.int64, device=META)
        self._add(cost.matmul(self.n, shift, x.numel(), w.numel(), out.numel()))
        return out

    def matmul(self, a, b, op, shift, causal=False):
        out = torch.matmul(a, b)
        if causal:
            L = out.shape[-1]
            packed = out.numel() // (L * L) * (L * (L + 1) // 2)
            self._add(cost.beaver(a.numel(), b.numel(), packed) + cost.open_(self.n, packed)
                      + cost.trfloor(self.n, shift, packed))
        else:
            self._add(cost.matmul(self.n, shift, a.numel(), b.numel(), out.numel()))
        return out

    def softmax(self, x, op, causal=False):
        L = x.shape[-1]
        self._add(cost.softmax(self.n, x.numel() // L, L, causal))
        return torch.empty_like(x)

    def gelu(self, x, op="gelu"):
        self._add(cost.gelu(self.n, x.numel()))
        return torch.empty_like(x)

    def layernorm(self, x, name):
        d = x.shape[-1]
        self._add(cost.layernorm(self.n, x.numel() // d, d))
        return torch.empty_like(x)


def _figures(c: cost.Cost) -> dict:
    return {"comm_bytes": 2 * c.sent, "exchanges": c.exchanges, "key_bytes": c.key,
            "sigma_header_bytes": c.sigma_header,
            "rsqrt_comm_bytes": c.rsqrt.get("rsqrt_comm_bytes", 0),
            "rsqrt_key_bytes": c.rsqrt.get("rsqrt_key_bytes", 0),
            "rsqrt_exchanges": c.rsqrt.get("rsqrt_exchanges", 0)}


def plan(spec: ModelSpec, length: int, batch: int = 1, key_dir: str | None = None) -> dict:
    """The predicted costs of one inference of `spec` at (B = batch, L = length)."""
    be = PlanBackend(spec)
    inputs = [torch.empty(s, dtype=torch.int64, device=META)
              for s in _input_shapes(spec, batch, length)]
    out = forward(be, spec, inputs[0], inputs[1] if len(inputs) > 1 else None)
    blocks = cost.Cost()
    for c in be.layers.values():
        blocks += c
    gates = blocks + be.outside
    n_in = sum(x.numel() for x in inputs)
    input_bytes = packed_size(spec.bits, n_in)  # the client's x^, sent once to P0 (online)
    mask_words = 8 * (n_in + out.numel())       # the client's input and output masks
    weights = sum(int(torch.Size(s).numel()) for s in param_shapes(spec).values())
    act = 8 * out.numel()
    result = {
        "model": spec.name, "bits": spec.bits, "seq": length, "batch": batch,
        "comm_bytes": 2 * gates.sent + input_bytes,
        "exchanges": gates.exchanges + 1,
        "key_bytes_p0": gates.key,
        "key_bytes_p1": gates.key + mask_words,
        "sigma_header_bytes": gates.sigma_header,
        "rsqrt": {k: gates.rsqrt.get(k, 0) for k in ("rsqrt_comm_bytes", "rsqrt_key_bytes",
                                                     "rsqrt_exchanges", "rsqrt_tree_walks",
                                                     "rsqrt_prg_calls")},
        "setup_weight_bytes": packed_size(spec.bits, weights),
        # keys held in memory + masked weights + a working set of ~64 activations of the output size
        "peak_memory_bytes_per_party_estimate": gates.key + mask_words + 8 * weights + 64 * act,
        "per_layer": [{"layer": i, **_figures(c)} for i, c in sorted(be.layers.items())],
        "outside_layers": _figures(be.outside),
    }
    sigma = _figures(blocks)
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


def spec_for(name: str, bits: int | None = None) -> ModelSpec:
    """The ModelSpec of a model name (as `load_model`) from its config alone: no weights."""
    import transformers

    from suf.models.transformer import NAMED, SHIPPED, _named_config, _shipped_path

    if name in NAMED:
        config = _named_config(name)
    elif name in SHIPPED:
        config = transformers.AutoConfig.from_pretrained(_shipped_path(name))
    else:
        config = transformers.AutoConfig.from_pretrained(name)
    return spec_from_config(config, bits=bits, name=name)
