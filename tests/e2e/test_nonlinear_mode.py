"""The nonlinear mode ("sigma" | "suf") from the API to the CLI and the key files: SUF mode runs
the suf_* gates (their calls recorded by conftest's `suf_gate_calls`) and
changes nothing else; Sigma mode's plans, metas and key files are as before; a party refuses keys
and a peer of the other mode with one line."""
import json

import pytest
import torch
import transformers

from harness import assert_peers_refuse, serve_both
from suf.cli import main
from suf.core.errors import InputError, KeyFileError
from suf.gates import layernorm, softmax
from suf.graph.backends import ReferenceBackend
from suf.keys import KeyFileReader, inspect_key_file
from suf.models.transformer import from_config, load_model, model_spec
from suf.mpc import gate as gates
from suf.runtime import GateJob, ModelJob, deal, from_keys, run_secure, serve
from suf.runtime.dealing import key_file
from suf.runtime.plan import plan

SEED = b"\x5c" * 32
GATE_SEED = b"\x11" * 32
SIGMA_SUBS = {"gelu", "nexp", "inverse", "rsqrt"}  # the SIGMA gates the models use with a SUF form


def _calls(layout):
    return {s.op: s.gate for s in layout.steps if isinstance(s, gates.Call)}


@pytest.fixture(scope="module")
def tiny():
    return load_model("bert-tiny", seed=3)


# -- the mode's value ------------------------------------------------------------------------------
def test_bad_mode_is_refused_in_one_line(tiny):
    for make in (lambda: ReferenceBackend(37, {}, nonlinear="fast"),
                 lambda: ModelJob(tiny, 1, 4, nonlinear="fast"),
                 lambda: GateJob("gelu", 50, 8, "fast"),
                 lambda: plan(tiny.spec, 4, nonlinear="fast"),
                 lambda: softmax.layout((2, 4), n=50, nonlinear="SUF")):
        with pytest.raises(InputError, match=r"^nonlinear mode must be one of 'sigma', 'suf', "
                                             r"got '(fast|SUF)'$"):
            make()


def test_suf_mode_without_the_suf_gates_is_refused(tiny, monkeypatch):
    monkeypatch.delitem(gates.REGISTRY, "suf_silu")
    with pytest.raises(InputError, match="needs the SUF gates, not registered: suf_silu"):
        ModelJob(tiny, 1, 4, nonlinear="suf")


# -- layouts and plans -----------------------------------------------------------------------------
def test_composite_layouts_name_the_sub_gates_of_their_mode(suf_gate_calls):
    sm, ln = (lambda **k: softmax.layout((2, 8), n=50, **k),
              lambda **k: layernorm.layout((2, 12), (12,), (12,), n=50, **k))
    assert _calls(sm())["nexp"] == "nexp" and _calls(sm())["inverse"] == "inverse"
    assert _calls(ln())["rsqrt"] == "rsqrt"
    assert _calls(sm(nonlinear="sigma")) == _calls(sm())
    suf_sm, suf_ln = _calls(sm(nonlinear="suf")), _calls(ln(nonlinear="suf"))
    assert (suf_sm["nexp"], suf_sm["inverse"], suf_ln["rsqrt"]) == ("suf_nexp", "suf_inverse",
                                                                   "suf_rsqrt")
    # nothing else changes
    assert {k: v for k, v in suf_sm.items() if k not in ("nexp", "inverse")} == {
        k: v for k, v in _calls(sm()).items() if k not in ("nexp", "inverse")}
    assert [s for s in ln(nonlinear="suf").steps if not isinstance(s, gates.Call)] == \
        [s for s in ln().steps if not isinstance(s, gates.Call)]


def test_plan_sigma_is_the_default_and_suf_runs_the_suf_gates(suf_gate_calls):
    spec = model_spec("bert-tiny")
    sigma = plan(spec, 8, 1)
    assert plan(spec, 8, 1, nonlinear="sigma") == sigma and sigma["nonlinear"] == "sigma"
    assert SIGMA_SUBS <= set(sigma["outside_layers"]["per_gate"]) | set(
        sigma["per_layer"][0]["per_gate"])
    suf = plan(spec, 8, 1, nonlinear="suf")
    used = set(suf["per_layer"][0]["per_gate"])
    assert suf["nonlinear"] == "suf"
    assert {f"suf_{g}" for g in SIGMA_SUBS} <= used and not SIGMA_SUBS & used
    assert suf["rsqrt"]["rsqrt_exchanges"] > 0


# -- end to end ------------------------------------------------------------------------------------
def _small_gpt2():
    config = transformers.GPT2Config(n_layer=1, n_embd=64, n_head=2, vocab_size=300,
                                     n_positions=16, bos_token_id=0, eos_token_id=0)
    return from_config(config, bits=37, seed=5, name="gpt2-small")


@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_suf_mode_secure_equals_its_reference(family, tiny, suf_gate_calls):
    model = tiny if family == "bert" else _small_gpt2()
    batch = model.batch([[101, 2797, 28937, 102]] if family == "bert" else [[7, 8, 9], [4]],
                        length=4)
    run = run_secure(model, batch, seed=SEED, nonlinear="suf")
    want = model.reference(batch, nonlinear="suf")
    assert torch.equal(run.output, want), f"{int((run.output != want).sum())} elements differ"
    used = {g for g, what in suf_gate_calls if what == "eval"}
    assert {f"suf_{g}" for g in SIGMA_SUBS} <= used
    assert {g for g, what in suf_gate_calls if what == "keygen"} == used


@pytest.mark.parametrize("name", ["gelu", "softmax", "layernorm"])
def test_gate_job_in_suf_mode_through_key_files(name, tmp_path, suf_gate_calls):
    job = GateJob(name, 37, 24, "suf")
    assert job.gate_name == ("suf_gelu" if name == "gelu" else name)
    info = deal(job, tmp_path)
    assert info["nonlinear"] == "suf"
    meta = inspect_key_file(key_file(tmp_path, 0)).meta
    assert meta == {"gate": name, "bits": 37, "count": 24, "nonlinear": "suf"}
    out = serve_both([from_keys(meta, nonlinear="suf")] * 2,
                     [key_file(tmp_path, p) for p in (0, 1)], GATE_SEED)
    y = torch.tensor(out[1]["output"])
    assert job.outcome(GATE_SEED, y)["equal"]
    assert any(what == "eval" for _, what in suf_gate_calls)


# -- key files and the handshake -------------------------------------------------------------------
def test_sigma_meta_and_key_files_have_no_mode_field(tiny):
    assert ModelJob(tiny, 1, 4).meta == {"model": "bert-tiny", "batch": 1, "length": 4}
    assert GateJob("gelu", 50, 8).meta == {"gate": "gelu", "bits": 50, "count": 8}
    assert from_keys({"gate": "gelu", "bits": 50, "count": 8}).nonlinear == "sigma"


@pytest.mark.parametrize("dealt,runs", [("suf", "sigma"), ("sigma", "suf")])
def test_a_party_refuses_keys_of_the_other_mode(dealt, runs, tmp_path, suf_gate_calls):
    deal(GateJob("gelu", 37, 8, dealt), tmp_path)
    path = key_file(tmp_path, 0)
    msg = f"was dealt for nonlinear mode '{dealt}' but this party runs '{runs}'"
    with pytest.raises(KeyFileError, match=msg):
        from_keys(inspect_key_file(path).meta, nonlinear=runs)
    with pytest.raises(KeyFileError, match=f"^key file {path} {msg}"):
        serve(0, GateJob("gelu", 37, 8, runs), path, "127.0.0.1:1")
    KeyFileReader(path, 0).close()  # refused before use: still unused


@pytest.mark.parametrize("dealt,runs", [("suf", "sigma"), ("sigma", "suf")])
def test_suf_serve_refuses_keys_of_the_other_mode_in_one_line(dealt, runs, tmp_path, capsys,
                                                               suf_gate_calls):
    deal(GateJob("gelu", 37, 8, dealt), tmp_path)
    assert main(["serve", "--party", "1", "--peer", "127.0.0.1:1", "--keys",
                 str(key_file(tmp_path, 1)), "--seed", "00" * 32, "--nonlinear", runs]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"suf: error: the key file was dealt for nonlinear mode '{dealt}' but this "
                   f"party runs '{runs}' (--nonlinear {dealt})")


def test_peers_of_different_modes_refuse_each_other(tmp_path, suf_gate_calls):
    jobs = [GateJob("gelu", 37, 8, mode) for mode in ("sigma", "suf")]
    paths = []
    for p, job in enumerate(jobs):
        deal(job, tmp_path / job.nonlinear)
        paths.append(key_file(tmp_path / job.nonlinear, p))
    assert_peers_refuse(jobs, paths, GATE_SEED, "nonlinear", ("sigma", "suf"))


# -- the command line ------------------------------------------------------------------------------
COMMANDS = [["run", "--model", "bert-tiny"], ["plan", "--model", "bert-tiny", "--seq", "4"],
            ["deal", "--model", "bert-tiny", "--seq", "4", "--out", "d"],
            ["serve", "--party", "0", "--peer", "h:1", "--keys", "k"], ["gate", "gelu"]]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
def test_every_command_takes_and_checks_nonlinear(args, capsys):
    with pytest.raises(SystemExit) as e:
        main([*args, "--nonlinear", "fast"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: suf") and "Traceback" not in err
    assert "argument --nonlinear: invalid choice: 'fast'" in err.splitlines()[-1]
    with pytest.raises(SystemExit):
        main([args[0], "--help"])
    assert "--nonlinear {sigma,suf}" in capsys.readouterr().out


def test_suf_plan_on_the_command_line(capsys, suf_gate_calls):
    assert main(["plan", "--model", "bert-tiny", "--seq", "4", "--nonlinear", "suf",
                 "--json"]) == 0
    p = json.loads(capsys.readouterr().out)
    assert p["nonlinear"] == "suf" and "suf_gelu" in p["per_layer"][0]["per_gate"]


def test_suf_gate_refuses_a_gate_without_a_suf_form(capsys, suf_gate_calls):
    assert main(["gate", "relu", "--nonlinear", "suf"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("suf: error: gate 'relu' has no SUF form") and \
        "gelu, silu, nexp, inverse, rsqrt, softmax, layernorm" in err and "\n" not in err
