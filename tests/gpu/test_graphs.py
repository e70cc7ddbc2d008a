"""CUDA graphs (suf.runtime.graphs): a GPU party's online computation recorded in setup and
replayed around the exchanges gives the eager run's output bit for bit (= the reference), with the
same bytes and exchanges in the same scopes; a job that cannot be recorded (keys in host memory)
runs eagerly and says why; two OS processes (`suf run --device cuda`) replay too.  Marked `cuda`:
it runs on the device machine."""
import pytest
import torch

from harness import tiny_gpt2
from suf.models.transformer import load_model
from suf.runtime import GateJob, ModelJob, run, run_secure

pytestmark = pytest.mark.cuda

SEED = b"\x5a" * 32


def _model(name):
    return load_model("bert-tiny", seed=3) if name == "bert-tiny" else tiny_gpt2()


def _batch(model):
    ids = [[101, 1037, 14108, 102]] if model.spec.family == "bert" else [[1, 7, 3, 9, 4]]
    return model.batch(ids, length=8)


def _online_scopes(stats) -> dict:
    return {tuple(s["path"]): (s["own"]["bytes_sent"], s["own"]["bytes_recv"],
                               s["own"]["exchanges"])
            for s in stats.to_dict()["scopes"] if s["phase"] == "online"}


@pytest.mark.parametrize("nonlinear", ["sigma", "suf"])
@pytest.mark.parametrize("name", ["bert-tiny", "gpt2-micro"])
def test_graphs_equal_eager_and_reference(name, nonlinear):
    model = _model(name)
    batch = _batch(model)
    want = model.reference(batch, nonlinear=nonlinear)
    runs = {g: run_secure(model, batch, device="cuda", seed=SEED, nonlinear=nonlinear, graphs=g)
            for g in (True, False)}
    for how in runs[True].online:
        assert how["online"] == "cuda-graphs", how
        assert how["graphs"] > 10 and how["record_s"] > 0
    assert [h["online"] for h in runs[False].online] == ["eager", "eager"]
    assert torch.equal(runs[True].output.cpu(), want)
    assert torch.equal(runs[False].output.cpu(), want)
    for p in (0, 1):  # the same messages in the same scopes
        assert _online_scopes(runs[True].stats[p]) == _online_scopes(runs[False].stats[p])
    for p, st in enumerate(runs[True].stats):  # a graph before each exchange of the computation
        # (the inputs' message is made eagerly) and one after the last
        computed = st.total("online").exchanges - st.by_op()["input"].exchanges
        assert runs[True].online[p]["graphs"] == computed + 1


def test_keys_in_host_memory_run_eagerly_and_say_why():
    model = _model("bert-tiny")
    batch = _batch(model)
    r = run_secure(model, batch, device="cuda", seed=SEED, key_store="cpu")
    assert torch.equal(r.output.cpu(), model.reference(batch))
    for how in r.online:
        assert how["online"] == "eager"
        assert "not in GPU memory" in how["why"]


def test_processes_replay_graphs():
    """`suf run --device cuda`: dealer, then P0 and P1 as processes, each recording its graphs."""
    model = load_model("bert-tiny")
    batch = _batch(model)
    res = run(ModelJob(model, *batch.shape, name="bert-tiny"), batch, device="cuda", timeout=120)
    assert res["equal"]
    assert [p["online"] for p in res["parties"]] == ["cuda-graphs", "cuda-graphs"]


@pytest.mark.parametrize("gate", ["relu", "softmax", "layernorm", "gelu", "matmul"])
def test_gates_over_processes_with_graphs(gate):
    res = run(GateJob(gate, 50, 256 if gate != "matmul" else 64), bytes(range(32)),
              device="cuda", timeout=120)
    assert res["equal"]
    assert [p["online"] for p in res["parties"]] == ["cuda-graphs", "cuda-graphs"]
