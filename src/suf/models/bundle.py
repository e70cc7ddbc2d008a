"""The client bundle: what the client (P1) needs of a model, in one file, without the owner's
weights.  The model owner (or, in `suf deal`, the dealer who loads the model) writes it; the
client's process (`suf serve --party 1 --bundle FILE`) runs from it alone.

A bundle is a zip archive (stored, no compression) of:

  bundle.json               {"format": "suf-client-bundle", "version": 1, "spec": the ModelSpec,
                            "pad_id", "no_tokenizer", "tensors": {name: [dtype, shape]},
                            "files": {member: blake2b-256 hex}}
  embeddings.safetensors    the embedding tables: word, position (, token_type), exactly the
                            values the client embeds with (float32 when that is lossless, else
                            float64)
  tokenizer/<name>          the tokenizer's files (tokenizer.save_pretrained), if it has one

No pickle: JSON, safetensors (a JSON header and raw little-endian tensor bytes) and the
tokenizer's own files.  Every member is checked against its checksum when read, and a bundle with
any other tensor than the embedding tables is refused.
"""
from __future__ import annotations

import hashlib
import json
import tempfile
import zipfile
from dataclasses import asdict
from pathlib import Path

import torch

from suf.core.errors import InputError
from suf.keys import open_private, partial_path
from suf.models.loading import ModelSpec
from suf.models.transformer import ClientModel, Model

FORMAT, VERSION = "suf-client-bundle", 1
BUNDLE_FILE = "client.bundle"
INDEX, TENSORS, TOKENIZER = "bundle.json", "embeddings.safetensors", "tokenizer/"


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=32).hexdigest()


def embedding_names(spec: ModelSpec) -> tuple[str, ...]:
    """The tables the client embeds with: word, position and, for BERT, token type."""
    return ("word", "position", "token_type") if spec.family == "bert" else ("word", "position")


def _table(t: torch.Tensor) -> torch.Tensor:
    t = t.detach().cpu().contiguous()
    small = t.to(torch.float32)
    return small if torch.equal(small.to(t.dtype), t) else t.to(torch.float64)


def write_bundle(model: Model | ClientModel, path) -> Path:
    """Write the client bundle of `model` to `path` (the spec, the embedding tables, the
    tokenizer's files; nothing of the owner's parameters).  Returns the path."""
    from safetensors.torch import save

    client = model.client() if isinstance(model, Model) else model
    spec = client.spec
    tables = {k: _table(client.embeddings[k]) for k in embedding_names(spec)}
    members = {TENSORS: save(tables)}
    if client.tokenizer is not None:
        with tempfile.TemporaryDirectory(prefix="suf-tok-") as tmp:
            client.tokenizer.save_pretrained(tmp)
            for f in sorted(Path(tmp).iterdir()):
                if f.is_file():
                    members[TOKENIZER + f.name] = f.read_bytes()
    index = {"format": FORMAT, "version": VERSION, "spec": asdict(spec), "pad_id": client.pad_id,
             "no_tokenizer": client._no_tokenizer,
             "tensors": {k: [str(v.dtype).removeprefix("torch."), list(v.shape)]
                         for k, v in tables.items()},
             "files": {k: _digest(v) for k, v in members.items()}}
    path = Path(path)
    tmp_path = partial_path(path)
    with open_private(tmp_path) as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as z:
        z.writestr(INDEX, json.dumps(index, indent=1))
        for k, v in members.items():
            z.writestr(k, v)
    tmp_path.replace(path)
    return path


def bundle_contents(path) -> dict:
    """What a bundle holds, without loading it: its index (bundle.json) and the names of its
    zip members."""
    with zipfile.ZipFile(path) as z:
        return {"index": json.loads(z.read(INDEX)), "members": z.namelist()}


def read_bundle(path) -> ClientModel:
    """The client's model from a bundle written by `write_bundle` (checksums, format and the
    tables' names and shapes checked; InputError, saying what is wrong, otherwise)."""
    import transformers
    from safetensors.torch import load

    path = Path(path)
    label = f"client bundle {path}"
    try:
        z = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise InputError(f"{label} is not a client bundle (not a zip archive)") from None
    with z:
        try:
            index = json.loads(z.read(INDEX))
        except (KeyError, ValueError):
            raise InputError(f"{label} has no readable {INDEX}") from None
        if not isinstance(index, dict) or index.get("format") != FORMAT:
            raise InputError(f"{label} is not a client bundle ({INDEX} names no {FORMAT!r})")
        if index.get("version") != VERSION:
            raise InputError(f"{label} has format version {index.get('version')}; this suf "
                             f"reads version {VERSION}")
        files = index.get("files", {})
        if set(z.namelist()) != {INDEX, *files}:
            raise InputError(f"{label} holds other members than its index lists")
        data = {}
        for name, digest in files.items():
            if name != TENSORS and not (name.startswith(TOKENIZER) and "/" not in
                                        name[len(TOKENIZER):] and name[len(TOKENIZER):]
                                        not in ("", ".", "..")):
                raise InputError(f"{label}: unexpected member {name!r}")
            data[name] = z.read(name)
            if _digest(data[name]) != digest:
                raise InputError(f"{label}: {name} is damaged (checksum mismatch)")
    try:
        spec = ModelSpec(**index["spec"])
    except (KeyError, TypeError) as e:
        raise InputError(f"{label}: bad spec: {e}") from None
    tables = load(data[TENSORS])
    want = {"word": (spec.vocab, spec.d), "position": (spec.max_positions, spec.d),
            "token_type": (spec.type_vocab, spec.d)}
    names = embedding_names(spec)
    if set(tables) != set(names):
        raise InputError(f"{label} holds the tensors {sorted(tables)}; a client bundle holds "
                         f"only the embedding tables {list(names)}")
    for k in names:
        if tuple(tables[k].shape) != want[k] or not tables[k].is_floating_point():
            raise InputError(f"{label}: the {k} table has shape {tuple(tables[k].shape)}, the "
                             f"spec says {want[k]}")
    embeddings = {k: tables[k].to(torch.float64) for k in names}
    tokenizer = None
    tok_files = {k[len(TOKENIZER):]: v for k, v in data.items() if k.startswith(TOKENIZER)}
    if tok_files:
        with tempfile.TemporaryDirectory(prefix="suf-tok-") as tmp:
            for name, content in tok_files.items():
                (Path(tmp) / name).write_bytes(content)
            try:
                tokenizer = transformers.AutoTokenizer.from_pretrained(tmp)
            except Exception as e:  # noqa: BLE001 - a third-party loader's failure is the input's
                raise InputError(f"{label}: transformers cannot load its tokenizer: "
                                 f"{type(e).__name__}: {e}") from None
    return ClientModel(spec, embeddings, tokenizer, pad_id=index.get("pad_id", 0),
                       no_tokenizer=index.get("no_tokenizer"))
