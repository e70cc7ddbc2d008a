"""`suf plan` predicts exactly what a run measures (small models), and reproduces SIGMA's cost
model on the benchmark graphs once SIGMA's CPU rsqrt replaces ours."""
import pytest
import torch

import sigma_cost_model as cm
from suf.keys import sigma_padded_size
from harness import tiny_gpt2
from suf.models import transformer as models
from suf.models import model_spec as spec_for
from suf.runtime.plan import plan
from suf.runtime import run_secure
from suf.runtime.jobs import SECRET_BYTES


@pytest.mark.parametrize("which,B,L", [("bert-tiny", 2, 5), ("gpt2-micro", 1, 6)])
def test_plan_equals_measured(which, B, L):
    model = models.load_model("bert-tiny") if which == "bert-tiny" else tiny_gpt2()
    ids = torch.randint(5, 40, (B, L))
    run = run_secure(model, model.batch(ids, L), seed=b"\x09" * 32)
    p = plan(model.spec, L, B)
    online = [s.total("online") for s in run.stats]
    assert p["comm_bytes"] == online[0].bytes_sent + online[0].bytes_recv
    assert p["comm_bytes"] == online[1].bytes_sent + online[1].bytes_recv
    assert p["exchanges"] == online[0].exchanges
    assert p["key_bytes_p0"] == run.deal.key_bytes[0] + SECRET_BYTES
    n_in = B * L * model.spec.d + (B * L if model.spec.family == "bert" else 0)
    assert p["key_bytes_p1"] == run.deal.key_bytes[1] + 8 * (n_in + B * L * model.spec.d) + \
        SECRET_BYTES
    assert p["sigma_header_bytes"] == run.deal.sigma_header_bytes
    assert p["setup_weight_bytes"] == run.stats[0].by_op("setup")["weights"].bytes_sent


@pytest.mark.parametrize("name,L", [("bert-base", 128), ("gpt2", 128), ("bert-base", 256),
                                    ("gpt2", 256), ("bert-base", 512), ("gpt2", 512)])
def test_sigma_scope_matches_sigma_cost_model(name, L):
    s = plan(spec_for(name), L)["sigma_scope"]
    comm, key, gpu_exchanges, _, c, _ = cm.run(name, L)
    layers = cm.MODELS[name][0]
    sigma_rsqrt_comm = 2 * layers * c["ln_llama"].b
    sigma_rsqrt_key = cm.llama_row(50) * L * 2 * layers
    assert s["comm_bytes"] - s["rsqrt_comm_bytes"] + sigma_rsqrt_comm == comm
    assert abs(s["key_bytes"] - s["rsqrt_key_bytes"] + sigma_rsqrt_key - key) < 4096
    assert s["exchanges"] - s["rsqrt_exchanges"] == gpu_exchanges
    if (name, L) == ("bert-base", 128):
        assert s["comm_bytes"] - s["rsqrt_comm_bytes"] + 258960 == 1062390674
        assert gpu_exchanges == 1128


def test_plan_scales_bytes_not_exchanges_with_batch():
    spec = spec_for("bert-tiny")
    one, four = plan(spec, 16, 1), plan(spec, 16, 4)
    assert one["exchanges"] == four["exchanges"]
    assert four["comm_bytes"] > 3 * one["comm_bytes"]
    assert sigma_padded_size(1) == 4096


def test_configurations_that_do_not_fit_are_refused_with_the_numbers(monkeypatch, tmp_path):
    import shutil
    from collections import namedtuple

    from suf.models.transformer import load_model
    from suf.runtime.dealing import DoesNotFit, check_fits

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(2**30, 2**30 - 4096, 4096))
    p = plan(spec_for("bert-tiny"), 8, 1, str(tmp_path))
    assert p["warnings"] and "GiB free" in p["warnings"][0]
    with pytest.raises(DoesNotFit, match="key files need"):
        check_fits(load_model("bert-tiny"), 8, 1, str(tmp_path))
