"""The model layer's secure side on bert-tiny and the linear gates: dealer + two parties in one
process (in-memory keys, two threads over a local socket pair) give the reference backend's
output bit for bit, and the measured per-layer bytes, exchanges and key bytes equal SIGMA's cost
model (tests/sigma_cost_model.py `comm_layer` / `key_layer`), our rsqrt apart
(its declared cost, suf.mpc.gate.cost("rsqrt", ...)).  GPT-2, MiniLM and the GPU: test_nn_secure_models.py."""
import pytest
import torch
import transformers

import sigma_cost_model as cm
from harness import masked, run_gate
from suf.graph import backends as backend
from suf.models.transformer import from_config, load_model
from suf.runtime import Deployment, key_store_device, run_secure
from suf.prg import Stream
from suf.mpc import gate as gates
from suf.core.ring import low_mask

SEED = b"\x5a" * 32
GEN = Stream(b"\x21" * 32)


def small_gpt2(layers=1, d=128, heads=2):
    return transformers.GPT2Config(n_layer=layers, n_embd=d, n_head=heads, vocab_size=500,
                                   n_positions=32, bos_token_id=0, eos_token_id=0)


@pytest.fixture(scope="module")
def tiny():
    return load_model("bert-tiny", seed=3)


# -- the linear parts, gate by gate ------------------------------------------------------------------
def small_values(shape, n, bits):
    """Signed values of magnitude < 2^bits in Z_{2^n}."""
    return (GEN.ring(shape, 64) >> (64 - bits - 1)) & low_mask(n)


@pytest.mark.parametrize("n", [37, 50])
def test_linear_and_matmul_secure_equal_reference(n):
    B, L, d, out, H, dh = 2, 5, 16, 24, 2, 8
    params = {"lin.w": small_values((d, out), n, 13), "lin.b": small_values((out,), n, 26)}
    x = small_values((B, L, d), n, 14)
    q, k = small_values((B, H, L, dh), n, 14), small_values((B, H, dh, L), n, 14)
    ref = backend.ReferenceBackend(n, params)
    want = [ref.linear(x, "lin"), ref.matmul(q, k, "qk", 15), ref.matmul(q, k, "qk", 13, True)]
    ctx = {}

    def deal(d_):
        masks = {name: d_.mask(v.shape, n) for name, v in params.items()}
        ctx["r"] = [d_.mask(t.shape, n) for t in (x, q, k)]
        be = backend.DealerBackend(n, masks, d_)
        r_x, r_q, r_k = ctx["r"]
        ctx["out"] = [be.linear(r_x, "lin"), be.matmul(r_q, r_k, "qk", 15),
                      be.matmul(r_q, r_k, "qk", 13, True)]
        ctx["hat"] = {name: masked(v, masks[name], n) for name, v in params.items()}
        ctx["headers"] = d_.sigma_header_bytes
        return ctx

    def evaluate(p, c):
        be = backend.PartyBackend(n, c["hat"], p)
        xh, qh, kh = (masked(t, r, n) for t, r in zip((x, q, k), c["r"]))
        return [be.linear(xh, "lin"), be.matmul(qh, kh, "qk", 15), be.matmul(qh, kh, "qk", 13, True)]

    run = run_gate(deal, evaluate, ring_bits=n)
    for got0, got1, r, w in zip(*run.outputs, ctx["out"], want):
        assert torch.equal(got0, got1)
        assert torch.equal((got0 - r) & low_mask(n), w)
    lower = torch.ones(L, L, dtype=torch.bool).tril()
    assert bool((ctx["out"][2][..., ~lower] == 0).all()), "causal: zero mask above the diagonal"
    # SIGMA's costs: Linear = open + TrFloor on B·L·out; causal QKᵀ only on the packed triangle
    c = cm.Ctr()
    cm.c_matmul(c, n, 12, B * L * out)
    cm.c_matmul(c, n, 15, B * H * L * L)
    cm.c_matmul(c, n, 13, B * H * L * (L + 1) // 2)
    assert run.total().bytes_sent == c.b and run.total().exchanges == c.r
    key = (cm.k_mm(B * L * d, d * out, B * L * out, n, 12)
           + cm.k_mm(B * H * L * dh, B * H * L * dh, B * H * L * L, n, 15)
           + cm.k_mm(B * H * L * dh, B * H * L * dh, B * H * L * (L + 1) // 2, n, 13))
    assert run.key_bytes[0] + ctx["headers"] == key


# -- whole models ----------------------------------------------------------------------------------
def layer_costs(spec, L):
    """SIGMA's per-layer comm (bytes sent by P0, exchanges) and key bytes by our op groups, with
    LLAMA's rsqrt replaced by ours: the rsqrt gate's declared cost per LayerNorm of L rows."""
    n, d, H = spec.bits, spec.d, spec.heads
    c = cm.comm_layer(n, 12, L, d, H, spec.causal)
    k = cm.key_layer(n, 12, L, d, H, spec.causal)
    rs = gates.cost("rsqrt", (L,), n=n, d=d)
    comm = {"mha_lin": (c["mha_lin"].b, c["mha_lin"].r), "softmax": (c["softmax"].b, c["softmax"].r),
            "ffn_lin": (c["ffn_lin"].b, c["ffn_lin"].r), "act": (c["act"].b, c["act"].r),
            "ln": (c["ln_gpu"].b + 2 * rs.sent,
                   c["ln_gpu"].r + 2 * rs.exchanges)}
    key = {"mha_lin": k["mha_lin"], "ffn_lin": k["ffn_lin"], "act": k["act"],
           "softmax": k["smx_max"] + k["smx_nexp"] + k["smx_inv"] + k["smx_wmul"],
           "ln": k["ln"] - 2 * cm.llama_row(n) * L + 2 * rs.key}
    return comm, key


GROUPS = {"qkv": "mha_lin", "qk": "mha_lin", "av": "mha_lin", "proj": "mha_lin",
          "softmax": "softmax", "ffn1": "ffn_lin", "ffn2": "ffn_lin", "gelu": "act",
          "ln1": "ln", "ln2": "ln"}


def measured_layer(report, layer):
    comm, key = {}, {}
    for row in report["ops"]:
        if row["layer"] != layer:
            continue
        g = GROUPS[row["op"]]
        b, r = comm.get(g, (0, 0))
        comm[g] = (b + row["bytes_sent"], r + row["exchanges"])
        key[g] = key.get(g, 0) + row["key_bytes"] + row["sigma_header_bytes"]
    return comm, key


def check_secure(model, batch, seed=SEED, deployment=None):
    run = run_secure(model, batch, seed=seed, deployment=deployment)
    want = model.reference(batch)
    assert run.output.shape == want.shape
    assert torch.equal(run.output, want), f"{int((run.output != want).sum())} elements differ"
    return run


@pytest.fixture(scope="module")
def tiny_run(tiny):
    """bert-tiny, B = 1, L = 4, with a seeded deployment and dealer."""
    dep = Deployment.create(tiny, Stream(b"\x01" * 32))
    # "private inference" in MiniLM's vocabulary (bert-* use it; ids need no tokenizer package)
    return dep, check_secure(tiny, tiny.batch([[101, 2797, 28937, 102]], length=4), deployment=dep)


def test_bert_tiny_secure_equals_reference_and_cost_model(tiny, tiny_run):
    report = tiny_run[1].report()
    comm, key = layer_costs(tiny.spec, 4)
    for layer in range(tiny.spec.layers):
        assert measured_layer(report, layer) == (comm, key), layer
    p0, p1 = report["parties"]
    assert p0["online"]["bytes_sent"] == p1["online"]["bytes_recv"]
    ops = [(r["layer"], r["op"]) for r in report["ops"]]
    assert ops[:2] == [(None, "input"), (None, "emb.ln")] and ops[-1] == (1, "ln2")
    # the client's input: B·L·(d + 1) n-bit values (embedding sum, padding bias), one way
    inp = report["ops"][0]
    assert inp["bytes_recv"] == -(-4 * (128 + 1) * 37 // 64) * 8 and inp["bytes_sent"] == 0
    assert report["key_bytes"][0] == report["key_bytes"][1] == sum(
        r["key_bytes"] for r in report["ops"])
    # setup: P0 publishes every masked parameter once, n-bit packed
    words = sum(v.numel() for v in tiny.params.values())
    published = tiny_run[1].stats[0].by_op("setup")["weights"]
    assert published.bytes_sent == -(-words * 37 // 64) * 8 and published.exchanges == 0
    # then one ready sync per party before the online clocks start; the keys stayed on the CPU
    for st in tiny_run[1].stats:
        ready = st.by_op("setup")["ready"]
        assert (ready.syncs, ready.sync_bytes_sent) == (1, 1)
        assert (ready.bytes_sent, ready.exchanges) == (0, 0)
    assert report["key_store"] == "cpu"
    assert report["online"] == [{"online": "eager", "why": "device cpu"}] * 2  # no CUDA graphs


def test_key_store_device_choice(tiny):
    assert key_store_device(tiny.spec, 1, 4, "cpu") == torch.device("cpu")
    assert key_store_device(tiny.spec, 1, 4, "cpu", "cpu") == torch.device("cpu")
    assert key_store_device(tiny.spec, 1, 4, "cuda", "cpu") == torch.device("cpu")  # forced


def test_bert_tiny_batch_of_two_with_padding(tiny, tiny_run):
    """B = 2 with padding, same deployment (weight masks reused), fresh OS-keyed dealing."""
    dep, single = tiny_run
    batch = tiny.batch([[101, 1037, 14108, 102], [101, 7632, 102]], length=4)  # "a batch", "hi"
    assert not bool(batch.real.all())
    run = check_secure(tiny, batch, deployment=dep, seed=None)
    assert run.deal.dealing_id != single.deal.dealing_id
    # one exchange per gate for the whole batch: the count of B = 1; bytes about twice
    online = [r.stats[0].total("online") for r in (run, single)]
    assert online[0].exchanges == online[1].exchanges
    assert 1.9 < online[0].bytes_sent / online[1].bytes_sent <= 2.0
    with pytest.raises(ValueError, match="another model"):
        run_secure(from_config(small_gpt2(), bits=37), batch, deployment=dep)
    with pytest.raises(TypeError, match="Batch"):
        run_secure(tiny, ["a text"])
