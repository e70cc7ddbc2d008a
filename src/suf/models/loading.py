"""From a `transformers` config and state dict to the model's fixed-point parameters.

`spec_from_config` reads the shapes of a `BertConfig` / `GPT2Config` (and refuses options the
secure graph does not implement); `quantize` turns the state dict of a `BertModel` / `GPT2Model`
into two parts:

  * `params`: the model owner's tensors as ring values of Z_{2^n}, under our own names
    (`layer{i}.qkv.w`, ...; `param_shapes` lists them): weights (in, out) at scale f = 12,
    biases and LayerNorm β at scale 2f = 24 (added to a scale-24 product before its
    truncation, as SIGMA's bias), LayerNorm γ at scale 12.  Encoding is SIGMA's floor(v·2^s).
  * `embeddings`: the tables the client uses in the clear (float64): word, position and, for
    BERT, token type.  The client computes the embedding sum itself, as in SIGMA.

The HF module names are read per family (one table each for BertModel and GPT2Model, with the
layer index filled in), never per checkpoint.  HF's `nn.Linear` weights are (out, in) and are
transposed; GPT-2's `Conv1D` weights are already (in, out).  Q, K and V are concatenated into one
(d, 3d) weight, SIGMA's "qkvconcat".

Attention scaling 1/sqrt(d_h): SIGMA folds it into the QKᵀ truncation, shift 12 + log2(d_h)/2,
when log2(d_h) is even (15 at d_h = 64).  Otherwise (MiniLM: d_h = 32) the model owner folds it
into W_Q and b_Q before quantisation (the reference sees the same folded weights) and QKᵀ is
truncated by 12.

Every refusal of a user's config or state dict is a `suf.core.errors.InputError` (a ValueError)
whose message says what was expected: `check_state_dict` names a wrong key prefix, a state dict
of the other family, missing tensors, a layer count or a shape that disagrees with the config.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import torch

from suf.core.config import SCALE as F
from suf.core.config import default_bits
from suf.core.errors import InputError
from suf.core.ring import Ring

FAMILIES = ("bert", "gpt2")


@dataclass(frozen=True)
class ModelSpec:
    """The shapes and arithmetic of one model; everything the dealer needs besides the masks."""

    family: str          # "bert" (post-LN encoder) or "gpt2" (pre-LN, causal, final LayerNorm)
    layers: int
    d: int
    heads: int
    d_ff: int
    vocab: int
    max_positions: int
    type_vocab: int      # BERT's token types (0 for GPT-2)
    bits: int            # the ring Z_{2^bits}
    frac_bits: int = F
    name: str = ""

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise InputError(f"model family must be one of {FAMILIES}, got {self.family!r}")
        for field in ("layers", "d", "heads", "d_ff", "vocab", "max_positions"):
            v = getattr(self, field)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise InputError(f"{field} must be an int >= 1, got {v!r}")
        if self.d % self.heads:
            raise InputError(f"hidden size {self.d} is not a multiple of {self.heads} heads")
        if not isinstance(self.bits, int) or isinstance(self.bits, bool) or not 32 <= self.bits <= 62:
            raise InputError(f"ring bits must be an int in [32, 62] (the gates' constants need "
                             f"n >= 32), got {self.bits!r}")
        if self.frac_bits != F:
            raise InputError(f"the SIGMA gates' tables are built for f = {F}, got {self.frac_bits}")

    @property
    def d_head(self) -> int:
        return self.d // self.heads

    @property
    def causal(self) -> bool:
        return self.family == "gpt2"

    @property
    def fold_qk_scale(self) -> bool:
        """True when 1/sqrt(d_h) is folded into W_Q, b_Q (log2 d_h odd or d_h not a power of 2)."""
        dh = self.d_head
        return dh & (dh - 1) != 0 or (dh.bit_length() - 1) % 2 == 1

    @property
    def qk_shift(self) -> int:
        """The QKᵀ truncation: 12 + log2(d_h)/2 (1/sqrt(d_h) in the shift), or 12 when folded."""
        return F if self.fold_qk_scale else F + (self.d_head.bit_length() - 1) // 2

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def spec_from_config(config, *, bits: int | None = None, name: str = "") -> ModelSpec:
    """The ModelSpec of a transformers BertConfig or GPT2Config (InputError, a ValueError, for
    options the secure graph does not implement)."""
    if isinstance(config, dict):
        raise InputError("the config must be a transformers config object, not a dict: "
                         "transformers.BertConfig(**d), transformers.GPT2Config(**d) or "
                         "transformers.AutoConfig.from_pretrained(DIR)")
    family = getattr(config, "model_type", None)
    if family == "bert":
        if getattr(config, "position_embedding_type", "absolute") != "absolute":
            raise InputError(f"only absolute position embeddings are supported, got "
                             f"{config.position_embedding_type!r}")
        if config.hidden_act != "gelu":
            raise InputError(f"BERT activation must be 'gelu', got {config.hidden_act!r}")
        if getattr(config, "is_decoder", False):
            raise InputError("BERT as a decoder is not supported")
        dims = (config.num_hidden_layers, config.hidden_size, config.num_attention_heads,
                config.intermediate_size, config.vocab_size, config.max_position_embeddings,
                config.type_vocab_size)
    elif family == "gpt2":
        if config.activation_function not in ("gelu_new", "gelu", "gelu_pytorch_tanh"):
            raise InputError(f"GPT-2 activation must be a GeLU, got {config.activation_function!r}")
        if config.scale_attn_by_inverse_layer_idx or not config.scale_attn_weights:
            raise InputError("GPT-2 attention must be scaled by 1/sqrt(d_h) only "
                             "(scale_attn_weights=True, scale_attn_by_inverse_layer_idx=False)")
        if getattr(config, "add_cross_attention", False):
            raise InputError("GPT-2 cross attention is not supported")
        dims = (config.n_layer, config.n_embd, config.n_head, config.n_inner or 4 * config.n_embd,
                config.vocab_size, config.n_positions, 0)
    else:
        raise InputError(f"unsupported model_type {family!r}: suf runs BERT (model_type 'bert', "
                         "transformers.BertConfig) and GPT-2 ('gpt2', transformers.GPT2Config) "
                         "models")
    name = name or getattr(config, "name_or_path", "") or family
    return ModelSpec(family, *dims, bits=default_bits(name) if bits is None else bits,
                     name=name)


# -- names ---------------------------------------------------------------------------------------
def param_shapes(spec: ModelSpec) -> dict[str, tuple]:
    """Our names and shapes of the model owner's parameters, in graph order."""
    d, ff = spec.d, spec.d_ff
    shapes = {}

    def linear(name, n_in, n_out):
        shapes[f"{name}.w"], shapes[f"{name}.b"] = (n_in, n_out), (n_out,)

    def ln(name):
        shapes[f"{name}.g"], shapes[f"{name}.b"] = (d,), (d,)

    if spec.family == "bert":
        ln("emb.ln")
    for i in range(spec.layers):
        p = f"layer{i}"
        if spec.family == "gpt2":
            ln(f"{p}.ln1")
        linear(f"{p}.qkv", d, 3 * d)
        linear(f"{p}.proj", d, d)
        if spec.family == "bert":
            ln(f"{p}.ln1")
        else:
            ln(f"{p}.ln2")
        linear(f"{p}.ffn1", d, ff)
        linear(f"{p}.ffn2", ff, d)
        if spec.family == "bert":
            ln(f"{p}.ln2")
    if spec.family == "gpt2":
        ln("final.ln")
    return shapes


# HF BertModel / GPT2Model names per layer: ours -> (theirs, is an nn.Linear (out, in) weight)
_BERT_LAYER = {
    "proj": ("attention.output.dense", True),
    "ln1": ("attention.output.LayerNorm", False),
    "ffn1": ("intermediate.dense", True),
    "ffn2": ("output.dense", True),
    "ln2": ("output.LayerNorm", False),
}
_GPT2_LAYER = {
    "ln1": ("ln_1", False),
    "qkv": ("attn.c_attn", False),
    "proj": ("attn.c_proj", False),
    "ln2": ("ln_2", False),
    "ffn1": ("mlp.c_fc", False),
    "ffn2": ("mlp.c_proj", False),
}
_PREFIXES = {"bert": "bert.", "gpt2": "transformer."}  # base_model_prefix of the task heads
_CLASS = {"bert": "BertModel", "gpt2": "GPT2Model"}
_ROOTS = {"bert": "'embeddings.' / 'encoder.'", "gpt2": "'wte.' / 'wpe.' / 'h.' / 'ln_f.'"}
_ANCHOR = {"bert": "embeddings.word_embeddings.weight", "gpt2": "wte.weight"}  # one tensor each
_LAYER_KEY = {"bert": "encoder.layer.{i}.", "gpt2": "h.{i}."}


def hf_names(spec: ModelSpec) -> list[str]:
    """The names of the tensors the secure graph reads from a BertModel / GPT2Model state dict
    (the pooler and any task head are not read)."""
    names = [_ANCHOR[spec.family]]
    if spec.family == "bert":
        names += ["embeddings.position_embeddings.weight",
                  "embeddings.token_type_embeddings.weight",
                  "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias"]
        for i in range(spec.layers):
            base = f"encoder.layer.{i}"
            for m in ("query", "key", "value"):
                names += [f"{base}.attention.self.{m}.weight", f"{base}.attention.self.{m}.bias"]
            for theirs, _ in _BERT_LAYER.values():
                names += [f"{base}.{theirs}.weight", f"{base}.{theirs}.bias"]
    else:
        names.append("wpe.weight")
        for i in range(spec.layers):
            for theirs, _ in _GPT2_LAYER.values():
                names += [f"h.{i}.{theirs}.weight", f"h.{i}.{theirs}.bias"]
        names += ["ln_f.weight", "ln_f.bias"]
    return names


def _roots(keys) -> str:
    """The distinct first components of some keys ('a.', 'b.', ...), at most 6, for messages."""
    seen = []
    for k in keys:
        r = k.split(".", 1)[0] + ("." if "." in k else "")
        if r not in seen:
            seen.append(r)
    return ", ".join(repr(r) for r in seen[:6]) + (", ..." if len(seen) > 6 else "")


def drop_task_prefix(spec: ModelSpec, k):
    prefix = _PREFIXES[spec.family]
    return k[len(prefix):] if isinstance(k, str) and k.startswith(prefix) else k


def key_problem(spec: ModelSpec, keys, *, more_layers_ok: bool = True,
                what: str = "the state dict") -> str | None:
    """Why a state dict with these keys is not one of `spec`'s BertModel / GPT2Model (a task
    model's `bert.` / `transformer.` prefix is dropped first): a wrong prefix, the other family,
    missing tensors or fewer layers (or more, unless `more_layers_ok`: a config with fewer
    layers than the state dict takes its first layers); None when every tensor the graph reads
    is there."""
    keys = [drop_task_prefix(spec, k) for k in keys if isinstance(k, str)]
    have = set(keys)
    need = hf_names(spec)
    missing = [k for k in need if k not in have]
    cls, fam = _CLASS[spec.family], spec.family
    if not keys:
        return f"{what} is empty"
    if len(missing) == len(need):
        anchor = _ANCHOR[fam]
        for k in keys:
            if k.endswith("." + anchor):
                p = k[:-len(anchor)]
                return (f"{what} has keys starting with {p!r} (e.g. {k!r}), but a {cls} state "
                        f"dict's keys start with {_ROOTS[fam]} (or, for a task model, "
                        f"{_PREFIXES[fam]!r}): remove the prefix first, e.g. "
                        f"{{k.removeprefix({p!r}): v for k, v in state_dict.items()}}")
        other = "gpt2" if fam == "bert" else "bert"
        if any(k == _ANCHOR[other] or k.endswith("." + _ANCHOR[other]) for k in keys):
            return (f"{what} is a {_CLASS[other]} state dict (it has {_ANCHOR[other]!r}) but the "
                    f"config is a {'BertConfig' if fam == 'bert' else 'GPT2Config'}: do the "
                    "config and the weights come from the same model?")
        return (f"{what} has none of the {len(need)} tensors of a {cls} (e.g. "
                f"{need[0]!r}, {need[-1]!r}); its keys start with {_roots(keys)}: is it the "
                f"state dict of a {'BERT' if fam == 'bert' else 'GPT-2'} model?")
    layer = _LAYER_KEY[fam]
    n = 0
    while any(k.startswith(layer.format(i=n)) for k in keys):
        n += 1
    if n != spec.layers and (missing or not more_layers_ok):
        have_layers = (f"{n} layers ({layer.format(i=0)[:-1]} to {layer.format(i=n - 1)[:-1]})"
                       if n else f"no layers (no {layer.format(i=0)!r} keys)")
        return (f"{what} has {have_layers}, the config says {spec.layers}: do the config and the "
                "weights come from the same model?")
    if missing:
        return (f"{what} lacks {len(missing)} of the {len(need)} tensors of a {cls}: "
                f"{', '.join(repr(k) for k in missing[:5])}{', ...' if len(missing) > 5 else ''}")
    return None


def check_state_dict(spec: ModelSpec, state_dict, shapes: dict | None = None) -> dict:
    """The state dict under BertModel / GPT2Model names (a task model's `bert.` / `transformer.`
    prefix dropped), or InputError saying what is wrong with it (`key_problem`; with `shapes`,
    HF name -> shape as the config makes them, also a tensor of another shape)."""
    from collections.abc import Mapping

    if not isinstance(state_dict, Mapping):
        raise InputError("state_dict must be a mapping of tensor names to tensors (e.g. "
                         "torch.load(path, weights_only=True) or safetensors.torch.load_file(path)"
                         f"), got {type(state_dict).__name__}")
    for k in ("state_dict", "model", "model_state_dict", "module"):
        if isinstance(state_dict.get(k), Mapping):
            raise InputError(f"this looks like a training checkpoint that holds the state dict "
                             f"under {k!r}: pass checkpoint[{k!r}]")
    sd = {drop_task_prefix(spec, k): v for k, v in state_dict.items()}
    problem = key_problem(spec, list(state_dict))
    if problem:
        raise InputError(problem)
    for k in hf_names(spec):
        v = sd[k]
        if not isinstance(v, torch.Tensor):
            raise InputError(f"state dict entry {k!r} is a {type(v).__name__}, not a tensor")
        if shapes is not None and k in shapes and tuple(v.shape) != tuple(shapes[k]):
            raise InputError(f"tensor {k!r} has shape {tuple(v.shape)}, the config says "
                             f"{tuple(shapes[k])}: do the config and the weights come from the "
                             "same model?")
    return sd


def _get(sd: dict, key: str) -> torch.Tensor:
    if key not in sd:
        raise InputError(f"state dict has no {key!r}")
    return sd[key].detach().to(torch.float64)


def float_params(spec: ModelSpec, state_dict: dict) -> tuple[dict, dict]:
    """(owner's float parameters under our names, (in, out) weights; client's embedding tables)
    from a BertModel / GPT2Model state dict (a task model's prefix `bert.` / `transformer.` is
    dropped).  1/sqrt(d_h) is folded into W_Q, b_Q when `spec.fold_qk_scale`."""
    sd = check_state_dict(spec, state_dict)
    out, d = {}, spec.d

    def take(ours: str, theirs: str, linear: bool):
        w, b = _get(sd, f"{theirs}.weight"), _get(sd, f"{theirs}.bias")
        if linear:
            w = w.T
        out[f"{ours}.{'w' if w.dim() == 2 else 'g'}"], out[f"{ours}.b"] = w.contiguous(), b

    if spec.family == "bert":
        take("emb.ln", "embeddings.LayerNorm", False)
        emb = {"word": _get(sd, "embeddings.word_embeddings.weight"),
               "position": _get(sd, "embeddings.position_embeddings.weight"),
               "token_type": _get(sd, "embeddings.token_type_embeddings.weight")}
        for i in range(spec.layers):
            base = f"encoder.layer.{i}"
            qkv = [(_get(sd, f"{base}.attention.self.{m}.weight").T,
                    _get(sd, f"{base}.attention.self.{m}.bias")) for m in ("query", "key", "value")]
            out[f"layer{i}.qkv.w"] = torch.cat([w for w, _ in qkv], dim=1)
            out[f"layer{i}.qkv.b"] = torch.cat([b for _, b in qkv])
            for ours, (theirs, linear) in _BERT_LAYER.items():
                take(f"layer{i}.{ours}", f"{base}.{theirs}", linear)
    else:
        emb = {"word": _get(sd, "wte.weight"), "position": _get(sd, "wpe.weight")}
        for i in range(spec.layers):
            for ours, (theirs, linear) in _GPT2_LAYER.items():
                take(f"layer{i}.{ours}", f"h.{i}.{theirs}", linear)
        take("final.ln", "ln_f", False)

    if spec.fold_qk_scale:
        scale = 1.0 / math.sqrt(spec.d_head)
        for i in range(spec.layers):
            out[f"layer{i}.qkv.w"][:, :d] *= scale
            out[f"layer{i}.qkv.b"][:d] *= scale
    shapes = param_shapes(spec)
    if set(out) != set(shapes):
        raise InputError(f"parameters do not match the graph: {sorted(set(out) ^ set(shapes))}")
    for k, shape in shapes.items():
        if tuple(out[k].shape) != shape:
            raise InputError(f"{k}: shape {tuple(out[k].shape)}, the config says {shape}")
    want_emb = {"word": (spec.vocab, d), "position": (spec.max_positions, d)}
    if spec.family == "bert":
        want_emb["token_type"] = (spec.type_vocab, d)
    for k, shape in want_emb.items():
        if tuple(emb[k].shape) != shape:
            raise InputError(f"{k} embeddings: shape {tuple(emb[k].shape)}, the config says {shape}")
    return {k: out[k] for k in shapes}, emb


def param_scale(name: str) -> int:
    """Fixed-point scale of a parameter: biases and β at 2f (added before a truncation), weights
    and γ at f."""
    return 2 * F if name.endswith(".b") else F


def quantize(spec: ModelSpec, floats: dict) -> dict[str, torch.Tensor]:
    """The owner's float parameters as ring values: floor(v·2^scale) mod 2^n."""
    ring = Ring(spec.bits)
    out = {}
    for k, v in floats.items():
        try:
            out[k] = ring.encode(v, param_scale(k))
        except ValueError as e:
            raise InputError(f"parameter {k}: {e}") from None
    return out
