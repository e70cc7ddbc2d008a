"""The client bundle: what the client (P1) holds of a model.  It holds the spec, the embedding
tables and the tokenizer, no other weight; the client's process runs from it alone, where the
owner's weight files do not exist, and its output equals the reference bit for bit."""
import contextlib
import json
import shutil
import subprocess
import sys
import zipfile

import pytest
import torch
import transformers
from safetensors.torch import load, save

from suf.core.errors import InputError
from suf.models import (BUNDLE_FILE, ClientModel, bundle_contents, from_config, load_model,
                        read_bundle, write_bundle)
from suf.models.transformer import WEIGHT_FILES
from suf.runtime import ModelJob, deal
from suf.runtime.dealing import key_file
from suf.runtime.processes import free_port, party_env, wait_parties

TEXT = "The client holds no weights."


def _save_tiny_bert(path):
    """A small random BERT with MiniLM's tokenizer, saved as a Hugging Face directory."""
    tok = load_model("bert-tiny").tokenizer
    config = transformers.BertConfig(hidden_size=64, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=128, max_position_embeddings=32)
    model = from_config(config, seed=3, tokenizer=tok)
    path.mkdir(parents=True)
    model.hf.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def _small_gpt2(name="gpt2-small"):
    config = transformers.GPT2Config(n_layer=1, n_embd=64, n_head=2, n_positions=16,
                                     vocab_size=100)
    return from_config(config, name=name)


def test_bundle_holds_only_the_embedding_tables(tmp_path):
    model = load_model("bert-tiny")
    path = write_bundle(model, tmp_path / BUNDLE_FILE)
    contents = bundle_contents(path)
    members = contents["members"]
    assert members[:2] == ["bundle.json", "embeddings.safetensors"]
    assert all(m.startswith("tokenizer/") for m in members[2:]) and len(members) > 2
    with zipfile.ZipFile(path) as z:
        tables = load(z.read("embeddings.safetensors"))
        for m in members[2:]:  # the tokenizer's files hold no tensor either
            assert not z.read(m).startswith(b"\x80")  # no pickle
    assert sorted(tables) == ["position", "token_type", "word"]
    assert {k: tuple(v.shape) for k, v in tables.items()} == {
        "word": (30522, 128), "position": (512, 128), "token_type": (2, 128)}
    for k, v in tables.items():  # exactly the client's tables
        assert torch.equal(v.double(), model.embeddings[k])
    assert json.loads(json.dumps(contents["index"]))["spec"]["name"] == "bert-tiny"
    client = read_bundle(path)
    assert isinstance(client, ClientModel) and not hasattr(client, "params")
    assert client.spec == model.spec
    batch = model.tokenize([TEXT], 12)
    assert torch.equal(client.tokenize([TEXT], 12).ids, batch.ids)
    assert all(torch.equal(a, b) for a, b in zip(client.embed(batch), model.embed(batch)))
    # GPT-2: no token types, no tokenizer (the reason travels with the bundle)
    gpt2 = read_bundle(write_bundle(_small_gpt2(), tmp_path / "gpt2.bundle"))
    assert gpt2.embeddings.keys() == {"word", "position"} and not gpt2.has_tokenizer
    with pytest.raises(InputError, match="token ids"):
        gpt2.tokenize(["text"])


def _rewrite(src, dst, change):
    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist()}
    change(members)
    with zipfile.ZipFile(dst, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    return dst


def test_bundle_refusals(tmp_path):
    path = write_bundle(_small_gpt2(), tmp_path / "b")

    def extra_tensor(m):  # a weight smuggled in, with a matching checksum
        tables = load(m["embeddings.safetensors"])
        tables["layer0.qkv.w"] = torch.zeros(2, 2)
        m["embeddings.safetensors"] = save(tables)
        index = json.loads(m["bundle.json"])
        from suf.models.bundle import _digest
        index["files"]["embeddings.safetensors"] = _digest(m["embeddings.safetensors"])
        m["bundle.json"] = json.dumps(index).encode()

    with pytest.raises(InputError, match="only the embedding tables"):
        read_bundle(_rewrite(path, tmp_path / "extra", extra_tensor))

    def damage(m):
        m["embeddings.safetensors"] = m["embeddings.safetensors"][:-1] + b"\x01"

    with pytest.raises(InputError, match="damaged"):
        read_bundle(_rewrite(path, tmp_path / "damaged", damage))
    (tmp_path / "not").write_text("no zip")
    with pytest.raises(InputError, match="not a client bundle"):
        read_bundle(tmp_path / "not")


def test_client_process_runs_from_the_bundle_without_the_weights(tmp_path):
    owner_dir = _save_tiny_bert(tmp_path / "owner" / "tiny")  # P0's copy of the model
    shared = shutil.copytree(owner_dir, tmp_path / "dealt" / "tiny")  # the dealer's copy
    owner = load_model(str(shared))
    keys = tmp_path / "keys"
    deal(ModelJob(owner, 1, 12, name=str(shared)), keys)
    assert (keys / BUNDLE_FILE).is_file()
    batch = owner.tokenize([TEXT], 12)
    reference = owner.reference(batch)
    shutil.rmtree(shared)  # only P0's copy is left
    client_dir = tmp_path / "client"  # the client: its keys and the bundle, nothing else
    client_dir.mkdir()
    for f in (key_file(keys, 1), keys / BUNDLE_FILE):
        shutil.move(f, client_dir / f.name)
    for f in WEIGHT_FILES:
        assert not list(tmp_path.glob(f"[!o]*/**/{f}"))  # no weights outside P0's directory
    port = free_port()
    common = ["--peer", f"127.0.0.1:{port}", "--timeout", "120"]
    cmds = [
        ["serve", "--party", "0", "--keys", str(key_file(keys, 0)), "--model", str(owner_dir),
         "--deployment", str(keys / "deployment.p0.suk"), *common],
        ["serve", "--party", "1", "--keys", "keys.p1.suk", "--bundle", BUNDLE_FILE,
         "--input", "input.txt", "--result", "result.json", *common],
    ]
    (client_dir / "input.txt").write_text(TEXT + "\n")  # a file: not on the command line
    logs = [tmp_path / f"p{p}.log" for p in (0, 1)]
    with contextlib.ExitStack() as stack:
        procs = [subprocess.Popen([sys.executable, "-m", "suf.cli", *cmd],
                                  stdout=subprocess.DEVNULL,
                                  stderr=stack.enter_context(open(log, "w")), env=party_env(),
                                  cwd=str(tmp_path / "owner") if p == 0 else str(client_dir))
                 for p, (cmd, log) in enumerate(zip(cmds, logs))]
        wait_parties(procs, logs, 300)
    out = torch.tensor(json.loads((client_dir / "result.json").read_text())["output"])
    assert torch.equal(out, reference)


def test_the_client_takes_no_model(tmp_path, capsys):
    from suf.cli import main

    deal(ModelJob(_small_gpt2(), 1, 4), tmp_path)
    (tmp_path / "in.json").write_text('{"ids": [[1, 2]]}')
    base = ["serve", "--party", "1", "--peer", "127.0.0.1:1", "--keys",
            str(key_file(tmp_path, 1)), "--input", str(tmp_path / "in.json")]
    assert main(base + ["--model", "gpt2-small"]) == 2
    assert "--model: not for the client (P1)" in capsys.readouterr().err
    assert main(base) == 2
    assert "client bundle (--bundle)" in capsys.readouterr().err
    other = write_bundle(_small_gpt2("another"), tmp_path / "other.bundle")
    assert main(base + ["--bundle", str(other)]) == 2
    assert "for the model gpt2-small, not another" in capsys.readouterr().err
