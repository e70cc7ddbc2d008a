"""One model graph, four backends (DESIGN.md "One model, three backends"; SIGMA `backend/sigma.h`).

The model forward (suf.models.transformer) is written once against a backend.  The int64 ring
tensors flowing through it mean different things per backend:

  ReferenceBackend   cleartext fixed-point values x (scale 12) in Z_{2^n}
  DealerBackend      the masks r of those values (and writes both parties' keys)
  PartyBackend       the public masked values x^ = x + r (and consumes one party's keys)
  PlanBackend        shapes only ("meta" tensors), adding up each gate's declared cost

Local linear work (residual adds, reshapes, head split/merge, transposes) is the same torch code
for all of them, since it commutes with the masks.  Every gate goes through one method,
`gate(name, *inputs, op=..., **params)`, which each backend maps onto the registered gate
(suf.mpc.gate.REGISTRY): the reference calls its `reference`, the dealer its `keygen`, a party its
`eval`, the plan its declared `cost`.  A new gate is therefore usable by a model without touching
this module.  The named helpers below are the model's vocabulary on top of `gate`:

  linear(x, name, shift=12)   x·W + b, then TrFloor(shift)       (W, b: parameters `name.w`, `name.b`)
  matmul(a, b, op, shift, causal=False)
                              a·b of two activations, then TrFloor(shift); causal keeps the lower
                              triangle of the (..., L, L) result only (zeros above, mask 0)
  mask_logits(s, bias)        s + bias (the client's padding bias, broadcast over heads and rows)
  softmax(x, op, causal)      over the last axis
  gelu(x, op)
  layernorm(x, name)          γ = `name.g` (scale 12), β = `name.b` (scale 24)
  add(x, y)                   local

The nonlinear mode (`nonlinear`, "sigma" or "suf"; suf.mpc.gate.nonlinear_gate) is the backend's:
in SUF mode `gelu` runs "suf_gelu" and softmax and LayerNorm their SUF sub-gates
(nonlinear="suf"); everything else is the same.  So is the truncation mode (`truncation`,
"faithful" or "gap"; suf.mpc.gate.truncation_gate): with "gap", linear, matmul and LayerNorm's
mean truncate with TrWithSlack instead of TrFloor.

Parameters come from the backend's view of the parameter store: the reference holds W, the dealer
r_W (drawn once per deployment), the parties W^ = W + r_W (published once by the model owner).

Names: inside `with be.layer(i):` a parameter `qkv.w` is `layer{i}.qkv.w`, a gate's key op is
`layer{i}.qkv...` and a party's transfers are scoped as (op="qkv", layer=i), so that costs are
reported per layer and gate; outside any layer (BERT's embedding LayerNorm, GPT-2's final one)
names are used as they are, with layer None.
"""
from __future__ import annotations

import contextlib

import torch

import suf.compiler  # noqa: F401  (registers SUF mode's gates)
import suf.gates  # noqa: F401  (registers every gate)
from suf.core.checks import check_range
from suf.core.config import SCALE as F
from suf.core.ring import Ring
from suf.gates import nexp
from suf.mpc import gate as gates

META = torch.device("meta")


class Backend:
    """What the backends share: the ring, the parameter view, naming, local ops, and the model's
    gate vocabulary on top of `gate` (which each backend implements)."""

    def __init__(self, bits: int, params: dict, nonlinear: str = "sigma",
                 truncation: str = "faithful"):
        self.n = bits
        self.ring = Ring(bits)
        self.params = params
        self.nonlinear = gates.check_nonlinear(nonlinear)
        self.truncation = gates.check_truncation(truncation)
        self._layer: int | None = None
        self.progress = None  # e.g. a tqdm bar: advanced by one after each layer

    @contextlib.contextmanager
    def layer(self, index: int | None):
        """Name parameters, keys and scopes after layer `index` (None: no layer) in the block."""
        outer, self._layer = self._layer, index
        try:
            yield self
        finally:
            self._layer = outer
            if self.progress is not None and index is not None:
                self.progress.update(1)

    def key(self, op: str) -> str:
        """The full name of `op` in the current layer (parameter prefix and key op signature)."""
        return op if self._layer is None else f"layer{self._layer}.{op}"

    def label(self, op: str) -> str:
        """Where an op sits, for error messages: 'layer 3 softmax' or 'emb.ln'."""
        return op if self._layer is None else f"layer {self._layer} {op}"

    def param(self, name: str) -> torch.Tensor:
        full = self.key(name)
        if full not in self.params:
            raise ValueError(f"no parameter {full!r} in this backend's parameter view (made for "
                             "another graph?)")
        return self.params[full]

    def gate(self, name: str, *inputs: torch.Tensor, op: str, **params) -> torch.Tensor:
        """Run the registered gate `name` on `inputs` under the op name `op` (in this layer)."""
        raise NotImplementedError

    # -- local ops (the same on values, masks and masked values) ---------------------------------
    def add(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.ring.wrap(x + y)

    def mask_logits(self, s: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """Attention logits s (B, H, L, L) plus the padding bias (B, L) of the key positions."""
        return self.ring.wrap(s + bias[:, None, None, :])

    # -- the model's gates ---------------------------------------------------------------------
    def linear(self, x, name, shift=F):
        return self.gate("linear", x, self.param(f"{name}.w"), self.param(f"{name}.b"), op=name,
                         bits=self.n, shift=shift, truncation=self.truncation)

    def matmul(self, a, b, op, shift, causal=False):
        return self.gate("causal_matmul" if causal else "matmul", a, b, op=op, bits=self.n,
                         shift=shift, truncation=self.truncation)

    def softmax(self, x, op, causal=False):
        return self.gate("softmax", x, op=op, n=self.n, causal=causal, nonlinear=self.nonlinear)

    def gelu(self, x, op="gelu"):
        return self.gate(gates.nonlinear_gate("gelu", self.nonlinear), x, op=op, n=self.n)

    def layernorm(self, x, name):
        return self.gate("layernorm", x, self.param(f"{name}.g"), self.param(f"{name}.b"), op=name,
                         n=self.n, nonlinear=self.nonlinear, truncation=self.truncation)


class ReferenceBackend(Backend):
    """Cleartext fixed point, bit-exact with the protocol.  Every precondition of a gate is
    checked by its reference; a violation raises `RangeViolation` naming the check and the layer,
    or, with `violations=[]`, is appended to that list and the computation goes on."""

    def __init__(self, bits: int, params: dict, violations: list | None = None,
                 nonlinear: str = "sigma", truncation: str = "faithful"):
        super().__init__(bits, params, nonlinear, truncation)
        self.violations = violations

    def gate(self, name, *inputs, op, **params):
        return gates.get(name).reference(*inputs, layer=self.label(op),
                                         violations=self.violations, **params)

    def mask_logits(self, s, bias):
        """Also checks that every padded key position gets exactly 0 weight: its logit is at
        least 2^16 - 1 (nExp's clip) below the row's largest unpadded logit."""
        out = super().mask_logits(s, bias)
        pad = (bias != 0)[:, None, None, :].expand(out.shape)
        xs = self.ring.signed(out)
        low = torch.iinfo(torch.int64).min
        top = torch.where(pad, low, xs).max(dim=-1, keepdim=True).values  # unpadded row max
        check_range(top - xs, nexp.CLIP, 1 << 62, "padding logit below the row max by the "
                    "nExp clip", layer=self.label("mask_logits"), violations=self.violations,
                    where=pad & (top != low))
        return out


class DealerBackend(Backend):
    """Walks the graph on masks with `dealer` (suf.mpc.dealer.Dealer) and the weight masks
    `masks` (r_W of the deployment).  `key_report` holds, per (layer, op), both parties' key
    payload bytes and SIGMA's per-call headers (to compare with sigma_cost_model's key sizes)."""

    def __init__(self, bits: int, masks: dict, dealer, nonlinear: str = "sigma",
                 truncation: str = "faithful"):
        super().__init__(bits, masks, nonlinear, truncation)
        self.dealer = dealer
        self.key_report: dict[tuple, dict] = {}

    def gate(self, name, *inputs, op, **params):
        d = self.dealer
        before = (d.key_bytes[0], d.key_bytes[1], d.sigma_header_bytes)
        out = gates.get(name).keygen(d, *inputs, op=self.key(op), **params)
        entry = self.key_report.setdefault((self._layer, op), {"payload": [0, 0], "headers": 0})
        entry["payload"][0] += d.key_bytes[0] - before[0]
        entry["payload"][1] += d.key_bytes[1] - before[1]
        entry["headers"] += d.sigma_header_bytes - before[2]
        return out


class PartyBackend(Backend):
    """Walks the graph on masked values as `party` (suf.mpc.party.Party) with the published
    masked parameters `masked` (W^ = W + r_W).  Each op's transfers are scoped (op, layer)."""

    def __init__(self, bits: int, masked: dict, party, nonlinear: str = "sigma",
                 truncation: str = "faithful"):
        super().__init__(bits, masked, nonlinear, truncation)
        self.party = party

    def gate(self, name, *inputs, op, **params):
        with self.party.scope(op, self._layer):
            return gates.get(name).eval(self.party, *inputs, op=self.key(op), **params)


class PlanBackend(Backend):
    """Walks the graph on shape-only ("meta") tensors and adds up each gate's declared cost
    (suf.mpc.gate.cost, the fold of its layout; tests check it against the counters): `layers[i]`
    per transformer block, `outside` for the gates outside any block."""

    def __init__(self, bits: int, param_shapes: dict, nonlinear: str = "sigma",
                 truncation: str = "faithful"):
        super().__init__(bits, {k: torch.empty(s, dtype=torch.int64, device=META)
                                for k, s in param_shapes.items()}, nonlinear, truncation)
        self.layers: dict[int, gates.Cost] = {}
        self.outside = gates.Cost()

    def gate(self, name, *inputs, op, **params):
        shapes = [tuple(x.shape) for x in inputs]
        c = gates.cost(name, *shapes, **params)
        if self._layer is None:
            self.outside += c
        else:
            self.layers.setdefault(self._layer, gates.Cost())
            self.layers[self._layer] += c
        out = gates.get(name).layout(*shapes, **params).out or shapes[0]
        return torch.empty(out, dtype=torch.int64, device=META)
