"""The truncation mode ("faithful" | "gap"): with "gap" every linear, matmul and LayerNorm mean
truncates with TrWithSlack; the secure run equals its reference bit for bit, and equals the
faithful one while the values stay in TrWithSlack's gap; plan equals the counters and is below
faithful; faithful's metas are as before; a party refuses keys and a peer of the other mode."""
import copy
import json

import pytest
import torch

from suf.cli import main
from suf.core.errors import InputError, KeyFileError, RangeViolation
from suf.gates import causal_matmul, layernorm, linear, matmul
from suf.graph.backends import ReferenceBackend
from suf.keys import KeyFileReader, inspect_key_file
from suf.models import model_spec as spec_for
from suf.models import transformer as models
from suf.mpc import gate as gates
from suf.runtime import GateJob, ModelJob, deal, from_keys, run_secure, serve
from suf.runtime.dealing import key_file
from suf.runtime.plan import plan
from suf.runtime.jobs import SECRET_BYTES

from harness import assert_peers_refuse, serve_both, tiny_gpt2

GATE_SEED = b"\x11" * 32

N = 37


@pytest.fixture(scope="module")
def tiny():
    return models.load_model("bert-tiny")


def _truncations(layout):
    return {s.op: s.gate for s in layout.steps
            if isinstance(s, gates.Call) and s.op in ("trfloor", "mean")}


# -- the mode's value and the layouts --------------------------------------------------------------
def test_bad_mode_is_refused_in_one_line(tiny):
    for make in (lambda: ReferenceBackend(N, {}, truncation="stochastic"),
                 lambda: ModelJob(tiny, 1, 4, truncation="stochastic"),
                 lambda: GateJob("matmul", 50, 32, truncation="stochastic"),
                 lambda: plan(tiny.spec, 4, truncation="stochastic"),
                 lambda: matmul.layout((2, 3), (3, 4), bits=50, shift=12, truncation="Gap")):
        with pytest.raises(InputError, match=r"^truncation mode must be one of 'faithful', 'gap', "
                                             r"got '(stochastic|Gap)'$"):
            make()


def test_layouts_name_trfloor_or_tr_with_slack_and_nothing_else_changes():
    lays = {"matmul": lambda **k: matmul.layout((4, 3), (3, 2), bits=50, shift=12, **k),
            "causal": lambda **k: causal_matmul.layout((4, 3), (3, 4), bits=50, shift=12, **k),
            "linear": lambda **k: linear.layout((4, 3), (3, 2), (2,), bits=50, shift=12, **k),
            "layernorm": lambda **k: layernorm.layout((2, 12), (12,), (12,), n=50, **k)}
    for name, lay in lays.items():
        faithful, gap = lay(), lay(truncation="gap")
        assert lay(truncation="faithful").steps == faithful.steps
        assert set(_truncations(faithful).values()) == {"trfloor"}, name
        assert set(_truncations(gap).values()) == {"tr_with_slack"}, name
        assert [s.params for s in gap.steps if isinstance(s, gates.Call)] == \
            [s.params for s in faithful.steps if isinstance(s, gates.Call)]
        assert [s for s in gap.steps if getattr(s, "gate", None) != "tr_with_slack"
                or s.op not in _truncations(gap)] == \
            [s for s in faithful.steps if getattr(s, "gate", None) != "trfloor"]
    # the open, then TrWithSlack's 2 exchanges (TrFloor's 4)
    assert [gates.cost("matmul", (4, 3), (3, 2), bits=50, shift=12, truncation=t).exchanges
            for t in ("faithful", "gap")] == [5, 3]


# -- end to end ------------------------------------------------------------------------------------
@pytest.mark.parametrize("nonlinear", ["sigma", "suf"])
@pytest.mark.parametrize("which,B,L", [("bert-tiny", 2, 5), ("gpt2-micro", 1, 6)])
def test_gap_secure_equals_its_reference_the_faithful_one_and_its_plan(which, B, L, nonlinear,
                                                                       tiny):
    model = tiny if which == "bert-tiny" else tiny_gpt2()
    ids = torch.randint(5, 40, (B, L), generator=torch.Generator().manual_seed(B * L))
    batch = model.batch(ids, L)
    run = run_secure(model, batch, seed=b"\x0c" * 32, nonlinear=nonlinear, truncation="gap")
    violations = []
    want = model.reference(batch, violations, nonlinear=nonlinear, truncation="gap")
    assert violations == []  # every precondition holds, TrWithSlack's gap included
    assert torch.equal(run.output.cpu(), want)
    assert torch.equal(want, model.reference(batch, nonlinear=nonlinear))  # Sigma mode's

    p = plan(model.spec, L, B, nonlinear=nonlinear, truncation="gap")
    online = [s.total("online") for s in run.stats]
    assert p["truncation"] == "gap"
    assert p["comm_bytes"] == online[0].bytes_sent + online[0].bytes_recv
    assert p["comm_bytes"] == online[1].bytes_sent + online[1].bytes_recv
    assert p["exchanges"] == online[0].exchanges
    assert p["key_bytes_p0"] == run.deal.key_bytes[0] + SECRET_BYTES
    assert "trfloor" not in p["per_layer"][0]["per_gate"]

    faithful = plan(model.spec, L, B, nonlinear=nonlinear)  # == its counters: test_plan.py
    assert "trfloor" in faithful["per_layer"][0]["per_gate"]
    assert p["comm_bytes"] < faithful["comm_bytes"]
    assert p["exchanges"] < faithful["exchanges"]
    assert p["key_bytes_p0"] < faithful["key_bytes_p0"]


@pytest.mark.parametrize("name", ["bert-base", "gpt2"])
def test_gap_plan_below_faithful_for_the_benchmark_models(name):
    faithful, gap = (plan(spec_for(name), 128, nonlinear="suf", truncation=t)
                     for t in ("faithful", "gap"))
    default = plan(spec_for(name), 128, nonlinear="suf")
    # faithful is the default (the free-RAM warnings may differ between two calls: not compared)
    assert {k: v for k, v in faithful.items() if k != "warnings"} == \
        {k: v for k, v in default.items() if k != "warnings"}
    # 2 exchanges less per truncation: 6 products + 2 LayerNorm means in each of 12 layers, and
    # the LayerNorm outside them (BERT's embedding one, GPT-2's final one)
    assert faithful["exchanges"] - gap["exchanges"] == 2 * (12 * 8 + 1)
    assert gap["comm_bytes"] < 0.85 * faithful["comm_bytes"]
    assert gap["key_bytes_p0"] < 0.6 * faithful["key_bytes_p0"]


# -- preconditions ---------------------------------------------------------------------------------
def test_a_product_outside_the_gap_is_reported_with_its_layer_and_op():
    x, w, b = (torch.tensor([[1 << 17]]), torch.tensor([[1 << 18]]), torch.tensor([0]))
    # 2^35 = 2^(n-2): inside the ring (faithful is exact), just outside TrWithSlack's gap
    assert linear.reference(x, w, b, bits=N, shift=12).item() == 1 << 23
    with pytest.raises(RangeViolation) as e:
        linear.reference(x, w, b, bits=N, shift=12, truncation="gap", layer="layer 1 ffn2")
    assert (e.value.op, e.value.layer, e.value.value) == (
        "linear product + bias inside TrWithSlack's gap", "layer 1 ffn2", 1 << 35)
    assert str(e.value).startswith("linear product + bias inside TrWithSlack's gap "
                                   "[layer 1 ffn2]: element (0, 0)")
    assert linear.reference(x, w, b - 1, bits=N, shift=12, truncation="gap").item() == \
        (1 << 23) - 1


def test_model_reference_names_the_first_layer_and_op_outside_the_gap(tiny):
    batch = tiny.batch(torch.tensor([[7, 8, 9, 10]]), 4)
    tiny_big = copy.copy(tiny)  # FFN2's bias (scale 24) at 1.5·2^(n-2): in the ring, not the gap
    tiny_big.params = {**tiny.params, "layer0.ffn2.b": torch.full_like(
        tiny.params["layer0.ffn2.b"], 3 << (N - 3))}
    faithful, gap = [], []
    tiny_big.reference(batch, faithful)
    tiny_big.reference(batch, gap, truncation="gap")
    first = gap[0]
    assert (first.layer, first.op) == ("layer 0 ffn2",
                                       "linear product + bias inside TrWithSlack's gap")
    assert not any(v.layer == "layer 0 ffn2" for v in faithful)


# -- key files, the handshake, the command line ----------------------------------------------------
def test_faithful_metas_have_no_truncation_field(tiny):
    assert ModelJob(tiny, 1, 4).meta == {"model": "bert-tiny", "batch": 1, "length": 4}
    assert ModelJob(tiny, 1, 4, truncation="gap", nonlinear="suf").meta == {
        "model": "bert-tiny", "batch": 1, "length": 4, "nonlinear": "suf", "truncation": "gap"}
    assert GateJob("matmul", 50, 32).meta == {"gate": "matmul", "bits": 50, "count": 32}
    assert from_keys({"gate": "linear", "bits": 50, "count": 32}).truncation == "faithful"
    with pytest.raises(InputError, match="^gate 'gelu' has no truncation mode: 'gap' applies to "
                                         "matmul, causal_matmul, linear, layernorm$"):
        GateJob("gelu", 50, 8, truncation="gap")


@pytest.mark.parametrize("name", ["linear", "layernorm"])
def test_gate_job_with_gap_through_key_files(name, tmp_path):
    job = GateJob(name, N, 48, truncation="gap")
    info = deal(job, tmp_path)
    assert info["truncation"] == "gap"
    meta = inspect_key_file(key_file(tmp_path, 0)).meta
    assert meta == {"gate": name, "bits": N, "count": 48, "truncation": "gap"}
    out = serve_both([from_keys(meta, truncation="gap")] * 2,
                     [key_file(tmp_path, p) for p in (0, 1)], GATE_SEED)
    assert job.outcome(GATE_SEED, torch.tensor(out[1]["output"]))["equal"]


@pytest.mark.parametrize("dealt,runs", [("gap", "faithful"), ("faithful", "gap")])
def test_a_party_refuses_keys_of_the_other_truncation(dealt, runs, tmp_path, capsys):
    deal(GateJob("matmul", N, 32, truncation=dealt), tmp_path)
    path = key_file(tmp_path, 0)
    msg = f"was dealt for truncation mode '{dealt}' but this party runs '{runs}'"
    with pytest.raises(KeyFileError, match=msg):
        from_keys(inspect_key_file(path).meta, truncation=runs)
    with pytest.raises(KeyFileError, match=f"^key file {path} {msg}"):
        serve(0, GateJob("matmul", N, 32, truncation=runs), path, "127.0.0.1:1")
    KeyFileReader(path, 0).close()  # refused before use: still unused
    assert main(["serve", "--party", "1", "--peer", "127.0.0.1:1", "--keys",
                 str(key_file(tmp_path, 1)), "--seed", "00" * 32, "--truncation", runs]) == 2
    assert capsys.readouterr().err.strip() == (
        f"suf: error: the key file {msg} (--truncation {dealt})")


def test_peers_of_different_truncations_refuse_each_other(tmp_path):
    jobs = [GateJob("matmul", N, 32, truncation=t) for t in ("faithful", "gap")]
    paths = []
    for p, job in enumerate(jobs):
        deal(job, tmp_path / job.truncation)
        paths.append(key_file(tmp_path / job.truncation, p))
    assert_peers_refuse(jobs, paths, GATE_SEED, "truncation", ("faithful", "gap"))


COMMANDS = [["run", "--model", "bert-tiny"], ["plan", "--model", "bert-tiny", "--seq", "4"],
            ["deal", "--model", "bert-tiny", "--seq", "4", "--out", "d"],
            ["serve", "--party", "0", "--peer", "h:1", "--keys", "k"]]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
def test_every_command_takes_and_checks_truncation(args, capsys):
    with pytest.raises(SystemExit) as e:
        main([*args, "--truncation", "stochastic"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: suf") and "Traceback" not in err
    assert "argument --truncation: invalid choice: 'stochastic'" in err.splitlines()[-1]
    with pytest.raises(SystemExit):
        main([args[0], "--help"])
    assert "--truncation {faithful,gap}" in capsys.readouterr().out


def test_gap_plan_on_the_command_line(capsys):
    assert main(["plan", "--model", "bert-tiny", "--seq", "4", "--truncation", "gap",
                 "--json"]) == 0
    p = json.loads(capsys.readouterr().out)
    assert p["truncation"] == "gap" and "tr_with_slack" in p["per_layer"][0]["per_gate"]
    assert "trfloor" not in p["per_layer"][0]["per_gate"]
