"""What the runtime deals, serves and runs: a job, either one inference of a model at (batch B,
length L) (`ModelJob`) or one registered gate on its own example of (name, bits, count)
(`GateJob`, what `suf gate NAME` runs).

A job has cleartext inputs (suf.mpc.gate.Input: owner 1 the client, 0 the model owner, -1
public), and a source they come from: a model's is the client's `Batch`, a gate's a 32-byte seed
its example draws from.  What it says to the rest of the runtime:

  inputs, bits, meta, key_hash()   what the keys are for (meta goes into the key files, the hash
                                   binds them to the job and is checked at the handshake)
  nonlinear                        the nonlinear mode, "sigma" or "suf" (suf.mpc.gate
                                   .nonlinear_gate); in the meta as "nonlinear": "suf" in SUF
                                   mode only, so that Sigma-mode key files are as before and a
                                   meta without it is Sigma's (`check_keys_mode`)
  truncation                       the truncation mode, "faithful" or "gap" (suf.mpc.gate
                                   .truncation_gate); in the meta as "truncation": "gap" only,
                                   likewise
  keygen(dealer, masks)            the dealer: the keys of the computation on the input masks
  setup(party, values)             before the online clock: P0 publishes W^ (model); the owners
                                   send their masked inputs (gate)
  online(party, state, values)     the online phase: the client's x^ and the graph (model); the
                                   gate's eval (gate); returns the masked output y^.  It is
                                   online_inputs (the x^ of every input; input_masks reads this
                                   party's masks ahead) then compute(party, state, hats), which
                                   suf.runtime.graphs records before the clock on a GPU
  values(source), outcome(...)     a party's cleartext inputs; the output against the reference
  serve_options(party, source, d)  the `suf serve` options that start a party of this job, and
  serve_input(party, source)       what it reads on its standard input (the client's input)

Each party's first key chunk is the dealing's handshake secret ("handshake-secret"); the masks
of the secret inputs travel in the owner's next chunk ("input-masks"); the client's output mask
is its last ("output-mask").
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from tqdm import tqdm

import suf.gates  # noqa: F401  (registers every gate)
from suf.core.errors import InputError, KeyFileError
from suf.core.ring import low_mask, pack, packed_size, unpack
from suf.graph.backends import DealerBackend, PartyBackend
from suf.models.loading import ModelSpec
from suf.models.bundle import BUNDLE_FILE
from suf.models.transformer import Batch, ClientModel, Model, forward, mean_pool
from suf.mpc import gate as gates
from suf.mpc.gate import Input
from suf.mpc.party import Party
from suf.prg import Stream
from suf.runtime.deployment import DEPLOYMENT_FILE, Deployment, publish_weights

INPUT_MASKS, OUTPUT_MASK = "input-masks", "output-mask"
HANDSHAKE_SECRET, SECRET_BYTES = "handshake-secret", 32  # every party's first chunk
COMPOSITES = ("softmax", "layernorm")  # gates that take the nonlinear mode as a parameter
TRUNCATED = ("matmul", "causal_matmul", "linear", "layernorm")  # take the truncation mode


def _mode_meta(meta: dict, nonlinear: str, truncation: str) -> dict:
    meta = meta if nonlinear == "sigma" else {**meta, "nonlinear": nonlinear}
    return meta if truncation == "faithful" else {**meta, "truncation": truncation}


def check_keys_mode(meta: dict, nonlinear: str, truncation: str = "faithful",
                    what: str = "the key file") -> None:
    """Refuse keys dealt for the other nonlinear or truncation mode (a meta without "nonlinear"
    is Sigma's, one without "truncation" faithful)."""
    for key, runs, default in (("nonlinear", nonlinear, "sigma"),
                               ("truncation", truncation, "faithful")):
        dealt = meta.get(key, default)
        if dealt != runs:
            raise KeyFileError(f"{what} was dealt for {key} mode {dealt!r} but this party runs "
                               f"{runs!r} (--{key} {dealt})")


# ================================================================================================
# the inputs: masks in the key files, x^ = x + r over the transport
# ================================================================================================
def _numel(shape) -> int:
    return int(torch.Size(shape).numel())


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _split(flat: torch.Tensor, shapes) -> list[torch.Tensor]:
    out, pos = [], 0
    for s in shapes:
        out.append(flat[pos:pos + _numel(s)].view(s))
        pos += _numel(s)
    return out


def mask_words(masks) -> bytes:
    """Masks as one key chunk: little-endian int64 words, one tensor after the other."""
    return b"".join(m.to(torch.int64).contiguous().cpu().numpy().astype("<i8").tobytes()
                    for m in masks)


def read_handshake_secret(keys) -> bytes:
    """The dealing's secret, each party's first key chunk: the parties prove they hold it in
    the handshake (suf.net.transport), so that only the holder of the other key file of the
    same dealing can talk to a party."""
    info = keys.peek()
    if info is not None and info.op == HANDSHAKE_SECRET and info.nbytes != SECRET_BYTES:
        raise KeyFileError(f"the handshake secret has {info.nbytes} bytes, expected "
                           f"{SECRET_BYTES}")
    return bytes(keys.next_tensor(HANDSHAKE_SECRET).cpu().numpy())


def read_masks(keys, op: str, shapes, device) -> list[torch.Tensor]:
    """The key chunk `op` written by `mask_words`, as tensors of `shapes`."""
    count = sum(_numel(s) for s in shapes)
    info = keys.peek()
    if info is not None and info.op == op and info.nbytes != 8 * count:
        raise KeyFileError(f"expected {count} mask words, the keys hold {info.nbytes} bytes")
    return _split(keys.next_tensor(op, torch.int64).to(device), shapes)


def read_input_masks(party: Party, inputs) -> list[torch.Tensor] | None:
    """This party's masks of its own secret inputs (its first key chunk), None if it owns none."""
    own = [inp.shape for inp in inputs if inp.owner == party.id]
    return read_masks(party.keys, INPUT_MASKS, own, party.device) if own else None


def exchange_inputs(party: Party, inputs, values, masks=None) -> list[torch.Tensor]:
    """The masked inputs x^ = x + r on both parties.  The owner of secret inputs adds its masks
    and sends them, packed in one message (P0's first, then P1's); public inputs are taken as they
    are.  `values`: this party's cleartext inputs, aligned with `inputs` (None: it holds none).
    `masks`: its masks if read already (`read_input_masks`), else they are read here."""
    dev, t = party.device, party.transport
    hats: list = [None] * len(inputs)
    for owner in (0, 1):
        own = [i for i, inp in enumerate(inputs) if inp.owner == owner]
        if not own:
            continue
        shapes = [inputs[i].shape for i in own]
        width = max(inputs[i].bits for i in own)
        total = sum(_numel(s) for s in shapes)
        if owner == party.id:
            if masks is None:
                masks = read_input_masks(party, inputs)
            for i, r in zip(own, masks):
                hats[i] = (_value(inputs[i], values, i).to(dev) + r) & low_mask(inputs[i].bits)
            t.send(pack(torch.cat([hats[i].flatten() for i in own]), width))
        else:
            flat = unpack(t.recv(packed_size(width, total), device=dev), width, total)
            for i, x in zip(own, _split(flat, shapes)):
                hats[i] = x
    for i, inp in enumerate(inputs):
        if inp.owner < 0:
            hats[i] = _value(inp, values, i).to(dev)
    return hats


def _value(inp: Input, values, i: int) -> torch.Tensor:
    v = None if values is None else values[i]
    if v is None:
        raise InputError(f"input {inp.name!r} of party {inp.owner} has no value")
    if tuple(v.shape) != tuple(inp.shape):
        raise InputError(f"input {inp.name!r} has shape {tuple(v.shape)}, the keys are for "
                         f"{tuple(inp.shape)}")
    return v


# ================================================================================================
# a gate on its own
# ================================================================================================
class GateJob:
    """The registered gate `name` (suf.mpc.gate.REGISTRY) on its example at ring size `bits`
    over `count` elements: the inputs, parameters and valid draws its module declares.
    nonlinear="suf" runs "suf_<name>" for the SUF_FORMS (gelu, silu, nexp, inverse, rsqrt) and
    softmax and layernorm with their SUF sub-gates; any other gate is refused in SUF mode.
    truncation="gap" applies to the TRUNCATED gates only, likewise."""

    def __init__(self, name: str, bits: int = 50, count: int = 1024, nonlinear: str = "sigma",
                 truncation: str = "faithful"):
        if name not in gates.REGISTRY:
            raise InputError(f"unknown gate {name!r}; registered: "
                             f"{', '.join(sorted(gates.REGISTRY))}")
        if not _is_int(bits) or not 2 <= bits <= 64:
            raise InputError(f"gate bits must be an int in [2, 64], got {bits!r}")
        if not _is_int(count) or count < 1:
            raise InputError(f"gate count must be an int >= 1, got {count!r}")
        self.gate_name = gates.nonlinear_gate(name, nonlinear)
        if nonlinear == "suf" and self.gate_name == name and name not in COMPOSITES:
            raise InputError(f"gate {name!r} has no SUF form: nonlinear mode 'suf' applies to "
                             f"{', '.join(gates.SUF_FORMS + COMPOSITES)}")
        if gates.check_truncation(truncation) != "faithful" and name not in TRUNCATED:
            raise InputError(f"gate {name!r} has no truncation mode: {truncation!r} applies to "
                             f"{', '.join(TRUNCATED)}")
        self.name, self.bits, self.count, self.nonlinear = name, bits, count, nonlinear
        self.truncation = truncation
        self.gate = gates.get(self.gate_name)
        self.example = self.gate.example(bits, count)
        self.params = dict(self.example.params)
        if nonlinear == "suf" and name in COMPOSITES:
            self.params["nonlinear"] = nonlinear
        if truncation != "faithful":
            self.params["truncation"] = truncation
        self.inputs = self.example.inputs
        self.cost = gates.cost(self.gate_name, *(i.shape for i in self.inputs), **self.params)

    @property
    def meta(self) -> dict:
        return _mode_meta({"gate": self.name, "bits": self.bits, "count": self.count},
                          self.nonlinear, self.truncation)

    @property
    def out_bits(self) -> int:
        return self.example.out_bits

    def key_hash(self) -> bytes:
        return hashlib.blake2b(json.dumps(self.meta, sort_keys=True).encode(),
                               digest_size=32).digest()

    def keygen(self, dealer, masks):
        r_out = self.gate.keygen(dealer, *masks, op=self.name, **self.params)
        return r_out, {(None, self.name): {"payload": list(dealer.key_bytes),
                                           "headers": dealer.sigma_header_bytes}}

    def setup(self, party: Party, values) -> list:
        with party.transport.stats.scope(op="inputs", phase="setup"):
            return exchange_inputs(party, self.inputs, values)

    def online(self, party: Party, hats, values) -> torch.Tensor:
        return self.compute(party, None, hats)

    def input_masks(self, party: Party) -> None:
        return None  # read and used in setup

    def online_inputs(self, party: Party, hats, values, masks=None) -> list:
        return hats

    def compute(self, party: Party, state, hats) -> torch.Tensor:
        with party.scope(self.name):
            return self.gate.eval(party, *hats, op=self.name, **self.params)

    def values(self, seed: bytes) -> list:
        """Both parties draw every input from the seed; each uses its own and the public ones."""
        return self.example.draw(Stream(seed))

    def decode(self, y: torch.Tensor) -> torch.Tensor:
        return y

    def outcome(self, seed: bytes, y: torch.Tensor) -> dict:
        ref = self.gate.reference(*self.values(seed), **self.params)
        ref = ref & low_mask(self.out_bits)
        c = self.cost
        return {"gate": self.meta, "equal": bool(torch.equal(y, ref.cpu())), "output": y,
                "reference": ref,
                "predicted": {"bytes_sent": c.sent, "exchanges": c.exchanges, "key_bytes": c.key,
                              "sigma_header_bytes": c.sigma_header}}

    def serve_options(self, party: int, seed: bytes, key_dir: Path) -> list[str]:
        return ["--seed", seed.hex(), "--nonlinear", self.nonlinear,
                "--truncation", self.truncation]

    def serve_input(self, party: int, seed: bytes) -> None:
        return None  # both parties draw the example's inputs from the public seed


# ================================================================================================
# a model inference
# ================================================================================================
def input_shapes(spec: ModelSpec, batch: int, length: int) -> list[tuple]:
    """The client's masked inputs: the embedding sum and, for BERT, the padding bias."""
    shapes = [(batch, length, spec.d)]
    return shapes + [(batch, length)] if spec.family == "bert" else shapes


def _progress(spec: ModelSpec, what: str):
    """A per-layer progress bar on stderr (hidden when stderr is not a terminal)."""
    return tqdm(total=spec.layers, desc=what, unit="layer", leave=False, disable=None)


class ModelJob:
    """One inference of `model` at (B = batch, L = length).  `deployment` (the weight masks) is
    known to the dealer and the model owner; the client's job has none (None), and its model may
    be the client's part alone (a ClientModel, from the client bundle).  `name`: the name the
    model owner's process loads the model by (`load_model`; default the model's own).
    `nonlinear`: the nonlinear mode of the model's gates, "sigma" or "suf"; `truncation`: the
    truncation mode of its products and LayerNorm means, "faithful" or "gap"."""

    def __init__(self, model: Model | ClientModel, batch: int, length: int,
                 deployment: Deployment | None = None, name: str | None = None,
                 nonlinear: str = "sigma", truncation: str = "faithful"):
        spec = model.spec
        self.nonlinear = gates.check_nonlinear(nonlinear)
        self.truncation = gates.check_truncation(truncation)
        for what, v in (("batch", batch), ("length", length)):
            if not _is_int(v) or v < 1:
                raise InputError(f"{what} must be an int >= 1, got {v!r}")
        if length > spec.max_positions:
            raise InputError(f"length {length} exceeds the model's {spec.max_positions} positions")
        if deployment is not None and deployment.model is not model:
            raise InputError("the deployment is of another model")
        self.model, self.batch, self.length = model, batch, length
        self.deployment = deployment
        self.name = spec.name if name is None else name
        self.bits = self.out_bits = spec.bits
        self.inputs = tuple(Input(n, 1, s, spec.bits) for n, s in
                            zip(("embedding", "padding"), input_shapes(spec, batch, length)))

    @property
    def meta(self) -> dict:
        return _mode_meta({"model": self.model.spec.name, "batch": self.batch,
                           "length": self.length}, self.nonlinear, self.truncation)

    def key_hash(self) -> bytes | None:
        """None for the client: it cannot know the deployment (the handshake checks its keys)."""
        if self.deployment is None:
            return None
        return self.deployment.key_hash(self.batch, self.length)

    def keygen(self, dealer, masks):
        spec = self.model.spec
        r_w = {k: v.to(dealer.device) for k, v in self.deployment.masks.items()}
        be = DealerBackend(spec.bits, r_w, dealer, self.nonlinear, self.truncation)
        with _progress(spec, "dealer: keys") as be.progress:
            r_out = forward(be, spec, masks[0], masks[1] if len(masks) > 1 else None)
        return r_out, be.key_report

    def setup(self, party: Party, values) -> dict:
        return publish_weights(party, self.model.spec,
                               self.deployment.masked() if party.id == 0 else None)

    def online(self, party: Party, masked_weights: dict, values) -> torch.Tensor:
        return self.compute(party, masked_weights, self.online_inputs(party, masked_weights,
                                                                      values))

    def input_masks(self, party: Party) -> list[torch.Tensor] | None:
        return read_input_masks(party, self.inputs)

    def online_inputs(self, party: Party, masked_weights: dict, values, masks=None) -> list:
        with party.transport.stats.scope(op="input"):
            return exchange_inputs(party, self.inputs, values, masks)

    def compute(self, party: Party, masked_weights: dict, hats) -> torch.Tensor:
        spec = self.model.spec
        be = PartyBackend(spec.bits, masked_weights, party, self.nonlinear, self.truncation)
        with _progress(spec, f"P{party.id}: online") as be.progress:
            return forward(be, spec, hats[0], hats[1] if len(hats) > 1 else None)

    def values(self, batch: Batch | None) -> list | None:
        """The client's inputs from its batch (ring values); None for the model owner."""
        if batch is None:
            return None
        if batch.shape != (self.batch, self.length):
            raise InputError(f"the keys are for batch {self.batch} x length {self.length}, the "
                             f"input is {batch.shape[0]} x {batch.shape[1]}")
        return [v for v in self.model.embed(batch) if v is not None]

    def decode(self, y: torch.Tensor) -> torch.Tensor:
        return self.model.decode(y)

    def outcome(self, batch: Batch, y: torch.Tensor) -> dict:
        m = self.model
        ref = m.reference(batch, nonlinear=self.nonlinear, truncation=self.truncation)
        out = {"model": m.spec.name, "bits": m.spec.bits, "nonlinear": self.nonlinear,
               "truncation": self.truncation,
               "batch": self.batch, "length": self.length, "batch_ids": batch.ids.tolist(),
               "real": batch.real.tolist(),
               "output": m.decode(y), "reference": m.decode(ref),
               "equal": bool(torch.equal(y, ref.cpu())), "float": m.float(batch)}
        if m.spec.family == "bert":
            out["embedding"] = mean_pool(out["output"], batch.real)
            out["float_embedding"] = mean_pool(out["float"], batch.real)
        return out

    def serve_options(self, party: int, batch: Batch, key_dir: Path) -> list[str]:
        mode = ["--nonlinear", self.nonlinear, "--truncation", self.truncation]
        if party == 0:
            return ["--model", self.name, "--bits", str(self.bits),
                    "--deployment", str(Path(key_dir) / DEPLOYMENT_FILE), *mode]
        return ["--bundle", str(Path(key_dir) / BUNDLE_FILE), "--input", "-", *mode]

    def serve_input(self, party: int, batch: Batch) -> bytes | None:
        """What the client's process reads on its standard input (`suf serve --input -`): its
        token ids, never on its command line."""
        if party != 1:
            return None
        unpadded = [row[:int(r)] for row, r in zip(batch.ids.tolist(), batch.real.sum(1))]
        return json.dumps({"ids": unpadded}).encode()


def from_keys(meta: dict, model: Model | None = None, deployment: Deployment | None = None,
              nonlinear: str = "sigma", truncation: str = "faithful") -> GateJob | ModelJob:
    """The job a key file was dealt for, from its meta; a model's needs the model (the weights
    are the model owner's, the embeddings the client's) and, for the model owner, its
    deployment.  KeyFileError if the keys are of another nonlinear mode than `nonlinear` or
    truncation mode than `truncation`."""
    check_keys_mode(meta, nonlinear, truncation)
    if "gate" in meta:
        return GateJob(meta["gate"], meta["bits"], meta["count"], nonlinear, truncation)
    if "model" not in meta:
        raise KeyFileError("the key file names neither a model nor a gate")
    if model is None:
        raise InputError(f"these keys are for the model {meta['model']}: pass the model")
    if model.spec.name != meta["model"]:
        raise InputError(f"these keys are for the model {meta['model']}, not {model.spec.name}")
    return ModelJob(model, meta["batch"], meta["length"], deployment, nonlinear=nonlinear,
                    truncation=truncation)
