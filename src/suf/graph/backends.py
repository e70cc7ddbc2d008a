"""One model graph, three backends (DESIGN.md "One model, three backends"; SIGMA `backend/sigma.h`).

The model forward (suf.models.transformer) is written once against a backend.  The int64 ring tensors
flowing through it mean different things per backend:

  ReferenceBackend   cleartext fixed-point values x (scale 12) in Z_{2^n}
  DealerBackend      the masks r of those values (and writes both parties' keys)
  PartyBackend       the public masked values x^ = x + r (and consumes one party's keys)

Local linear work (residual adds, reshapes, head split/merge, transposes) is the same torch code
for all three, since it commutes with the masks.  Products and nonlinear gates call the backend:

  linear(x, name, shift=12)   x·W + b, then TrFloor(shift)       (W, b: parameters `name.w`, `name.b`)
  matmul(a, b, op, shift, causal=False)
                              a·b of two activations, then TrFloor(shift); causal keeps the lower
                              triangle of the (..., L, L) result only (zeros above, mask 0)
  mask_logits(s, bias)        s + bias (the client's padding bias, broadcast over heads and rows)
  softmax(x, op, causal)      over the last axis
  gelu(x, op)
  layernorm(x, name)          γ = `name.g` (scale 12), β = `name.b` (scale 24)
  add(x, y)                   local

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

from suf.core.config import SCALE as F
from suf.core.linalg import ring_matmul
from suf.gates import gelu, layernorm, matmul, softmax
from suf.core.checks import check_range
from suf.gates.truncate import eval_trfloor, keygen_trfloor, reference_trfloor
from suf.core.ring import Ring


class Backend:
    """What the three backends share: the ring, the parameter view, naming and local ops."""

    def __init__(self, bits: int, params: dict):
        self.n = bits
        self.ring = Ring(bits)
        self.params = params
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

    # -- local ops (the same on values, masks and masked values) ---------------------------------
    def add(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.ring.wrap(x + y)

    def mask_logits(self, s: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """Attention logits s (B, H, L, L) plus the padding bias (B, L) of the key positions."""
        return self.ring.wrap(s + bias[:, None, None, :])


def _tril(length: int, device) -> torch.Tensor:
    """Flat indices of the lower triangle (j <= i) of an L x L block, row by row."""
    rows, cols = torch.tril_indices(length, length, device=device)
    return rows * length + cols


def _pack_tril(x: torch.Tensor) -> torch.Tensor:
    """(..., L, L) -> (..., L(L+1)/2): the lower triangle, row by row (SIGMA's causal packing)."""
    length = x.shape[-1]
    return x.flatten(-2)[..., _tril(length, x.device)]


def _unpack_tril(p: torch.Tensor, length: int) -> torch.Tensor:
    """The inverse of _pack_tril, with zeros above the diagonal."""
    out = torch.zeros((*p.shape[:-1], length * length), dtype=p.dtype, device=p.device)
    out[..., _tril(length, p.device)] = p
    return out.view(*p.shape[:-1], length, length)


# ================================================================================================
# reference: cleartext fixed point, every range precondition checked
# ================================================================================================
class ReferenceBackend(Backend):
    """Cleartext fixed point, bit-exact with the protocol.  Every precondition of a gate is
    checked; a violation raises `RangeViolation` naming the check and the layer, or, with
    `violations=[]`, is appended to that list and the computation goes on."""

    def __init__(self, bits: int, params: dict, violations: list | None = None):
        super().__init__(bits, params)
        self.violations = violations

    def _check_product(self, a, b, bias, op, where=None):
        """The product (scale 24) must not wrap in the ring: |a·b + bias| < 2^(n-1), with the
        signed operands multiplied in float64 (ample precision for a bound)."""
        s = self.ring.signed
        prod = torch.matmul(s(a).to(torch.float64), s(b).to(torch.float64))
        if bias is not None:
            prod = prod + s(bias).to(torch.float64)
        half = 1 << (self.n - 1)
        check_range(prod, -half, half, f"{op} product (scale 24) inside the ring",
                    layer=self.label(op), violations=self.violations, where=where)

    def linear(self, x, name, shift=F):
        w, b = self.param(f"{name}.w"), self.param(f"{name}.b")
        self._check_product(x, w, b, name)
        prod = self.ring.wrap(matmul.reference(x, w, self.n) + b)
        return reference_trfloor(prod, self.n, shift)

    def matmul(self, a, b, op, shift, causal=False):
        length = a.shape[-2]
        lower = None
        if causal:
            lower = torch.ones(length, length, dtype=torch.bool, device=a.device).tril()
        self._check_product(a, b, None, op, where=lower)
        out = reference_trfloor(matmul.reference(a, b, self.n), self.n, shift)
        return out if lower is None else torch.where(lower, out, torch.zeros_like(out))

    def mask_logits(self, s, bias):
        """Also checks that every padded key position gets exactly 0 weight: its logit is at
        least 2^16 - 1 (nExp's clip) below the row's largest unpadded logit."""
        out = super().mask_logits(s, bias)
        pad = (bias != 0)[:, None, None, :].expand(out.shape)
        xs = self.ring.signed(out)
        low = torch.iinfo(torch.int64).min
        top = torch.where(pad, low, xs).max(dim=-1, keepdim=True).values  # unpadded row max
        check_range(top - xs, softmax.CLIP, 1 << 62, "padding logit below the row max by the "
                    "nExp clip", layer=self.label("mask_logits"), violations=self.violations,
                    where=pad & (top != low))
        return out

    def softmax(self, x, op, causal=False):
        return softmax.reference_softmax(x, self.n, causal=causal, layer=self.label(op),
                                         violations=self.violations)

    def gelu(self, x, op="gelu"):
        return gelu.reference_gelu(x, self.n, layer=self.label(op), violations=self.violations)

    def layernorm(self, x, name):
        return layernorm.reference_layernorm(x, self.param(f"{name}.g"), self.param(f"{name}.b"),
                                             self.n, layer=self.label(name),
                                             violations=self.violations)


# ================================================================================================
# dealer: walks the graph on masks and writes both parties' keys
# ================================================================================================
def keygen_causal_matmul(dealer, r_a, r_b, bits, op):
    """Beaver keys of the lower triangle of a·b ((..., L, L), SIGMA's `cIsLowerTriangular`):
    shares of r_a and r_b in full, and of (r_a·r_b + r_out) on the packed triangle only.
    Returns the packed output mask (..., L(L+1)/2)."""
    full = ring_matmul(r_a, r_b, bits)
    r_out = dealer.mask((*full.shape[:-2], full.shape[-1] * (full.shape[-1] + 1) // 2), bits)
    dealer.deal_words(op, r_out.shape, (r_a, r_b, _pack_tril(full) + r_out), bits)
    return r_out


def share_causal_matmul(party, a_hat, b_hat, bits, op):
    """This party's share of the packed lower triangle of a·b + r_out (no communication)."""
    length = a_hat.shape[-2]
    packed = (*torch.broadcast_shapes(a_hat.shape[:-2], b_hat.shape[:-2]),
              length * (length + 1) // 2)
    key = party.key(op)
    ra = key.words(a_hat.numel()).view(a_hat.shape)
    rb = key.words(b_hat.numel()).view(b_hat.shape)
    c = key.words(int(torch.Size(packed).numel())).view(packed)
    key.done()
    s = matmul.beaver_product(party.id, a_hat, b_hat, ra, rb, bits)
    return (c + _pack_tril(s)) & Ring(bits).mask


class DealerBackend(Backend):
    """Walks the graph on masks with `dealer` (suf.mpc.core.Dealer) and the weight masks
    `masks` (r_W of the deployment).  `key_report` holds, per (layer, op), party 0's key payload
    bytes and SIGMA's per-call headers (to compare with sigma_cost_model's key sizes)."""

    def __init__(self, bits: int, masks: dict, dealer):
        super().__init__(bits, masks)
        self.dealer = dealer
        self.key_report: dict[tuple, dict] = {}

    @contextlib.contextmanager
    def _tally(self, op):
        d = self.dealer
        before = (d.key_bytes[0], d.key_bytes[1], d.sigma_header_bytes)
        yield
        entry = self.key_report.setdefault((self._layer, op), {"payload": [0, 0], "headers": 0})
        entry["payload"][0] += d.key_bytes[0] - before[0]
        entry["payload"][1] += d.key_bytes[1] - before[1]
        entry["headers"] += d.sigma_header_bytes - before[2]

    def linear(self, r_x, name, shift=F):
        with self._tally(name):
            r_w, r_b = self.param(f"{name}.w"), self.param(f"{name}.b")
            r_p = matmul.keygen(self.dealer, r_x, r_w, self.n, op=f"{self.key(name)}.matmul")
            return keygen_trfloor(self.dealer, self.add(r_p, r_b), self.n, shift,
                                  op=f"{self.key(name)}.trfloor")

    def matmul(self, r_a, r_b, op, shift, causal=False):
        with self._tally(op):
            if causal:
                r_p = keygen_causal_matmul(self.dealer, r_a, r_b, self.n, f"{self.key(op)}.matmul")
                r_t = keygen_trfloor(self.dealer, r_p, self.n, shift, op=f"{self.key(op)}.trfloor")
                return _unpack_tril(r_t, r_a.shape[-2])
            r_p = matmul.keygen(self.dealer, r_a, r_b, self.n, op=f"{self.key(op)}.matmul")
            return keygen_trfloor(self.dealer, r_p, self.n, shift, op=f"{self.key(op)}.trfloor")

    def softmax(self, r_x, op, causal=False):
        with self._tally(op):
            return softmax.keygen(self.dealer, r_x, self.n, causal=causal, op=self.key(op))

    def gelu(self, r_x, op="gelu"):
        with self._tally(op):
            return gelu.keygen(self.dealer, r_x, self.n, op=self.key(op))

    def layernorm(self, r_x, name):
        with self._tally(name):
            return layernorm.keygen(self.dealer, r_x, self.param(f"{name}.g"),
                                    self.param(f"{name}.b"), self.n, op=self.key(name))


# ================================================================================================
# party: walks the graph on masked values with its keys and the transport
# ================================================================================================
class PartyBackend(Backend):
    """Walks the graph on masked values as `party` (suf.mpc.core.Party) with the published
    masked parameters `masked` (W^ = W + r_W).  Each op's transfers are scoped (op, layer)."""

    def __init__(self, bits: int, masked: dict, party):
        super().__init__(bits, masked)
        self.party = party

    def _scope(self, op):
        return self.party.scope(op, self._layer)

    def linear(self, x, name, shift=F):
        with self._scope(name):
            p = self.party
            w, b = self.param(f"{name}.w"), self.param(f"{name}.b")
            s = matmul.share(p, x, w, self.n, op=f"{self.key(name)}.matmul")
            # the opened product is public: both parties add the published masked bias
            prod = self.add(p.open(s, self.n), b)
            return eval_trfloor(p, prod, self.n, shift, op=f"{self.key(name)}.trfloor")

    def matmul(self, a, b, op, shift, causal=False):
        with self._scope(op):
            p = self.party
            if causal:
                s = share_causal_matmul(p, a, b, self.n, f"{self.key(op)}.matmul")
                t = eval_trfloor(p, p.open(s, self.n), self.n, shift, op=f"{self.key(op)}.trfloor")
                return _unpack_tril(t, a.shape[-2])
            s = matmul.share(p, a, b, self.n, op=f"{self.key(op)}.matmul")
            return eval_trfloor(p, p.open(s, self.n), self.n, shift, op=f"{self.key(op)}.trfloor")

    def softmax(self, x, op, causal=False):
        with self._scope(op):
            return softmax.eval(self.party, x, self.n, causal=causal, op=self.key(op))

    def gelu(self, x, op="gelu"):
        with self._scope(op):
            return gelu.eval(self.party, x, self.n, op=self.key(op))

    def layernorm(self, x, name):
        with self._scope(name):
            return layernorm.eval(self.party, x, self.param(f"{name}.g"), self.param(f"{name}.b"),
                                  self.n, op=self.key(name))
