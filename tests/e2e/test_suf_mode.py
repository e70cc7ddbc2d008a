"""SUF mode end to end with the real SUF gates: BERT and GPT-2 give exactly Sigma mode's output,
`suf plan --nonlinear suf` predicts what a SUF run measures, and SUF mode is below Sigma mode
in communication, key bytes and exchanges (small models measured here; bert-base-128 and
gpt2-128 planned, and measured on the GPU machine by benchmarks/suf_vs_sigma.py)."""
import pytest
import torch

from harness import tiny_gpt2
from suf.models import model_spec as spec_for
from suf.models import transformer as models
from suf.runtime import run_secure
from suf.runtime.plan import plan
from suf.runtime.jobs import SECRET_BYTES


@pytest.mark.parametrize("which,B,L", [("bert-tiny", 2, 5), ("gpt2-micro", 1, 6)])
def test_suf_mode_equals_sigma_mode_and_its_plan(which, B, L):
    model = models.load_model("bert-tiny") if which == "bert-tiny" else tiny_gpt2()
    ids = torch.randint(5, 40, (B, L), generator=torch.Generator().manual_seed(B * L))
    batch = model.batch(ids, L)
    want = model.reference(batch)  # Sigma mode's fixed-point model
    runs = {mode: run_secure(model, batch, seed=b"\x0b" * 32, nonlinear=mode)
            for mode in ("sigma", "suf")}
    for mode, run in runs.items():
        assert torch.equal(run.output.cpu(), want), mode
    assert torch.equal(model.reference(batch, nonlinear="suf"), want)

    suf = runs["suf"]
    p = plan(model.spec, L, B, nonlinear="suf")
    online = [s.total("online") for s in suf.stats]
    assert p["comm_bytes"] == online[0].bytes_sent + online[0].bytes_recv
    assert p["exchanges"] == online[0].exchanges
    assert p["key_bytes_p0"] == suf.deal.key_bytes[0] + SECRET_BYTES

    sig = [s.total("online") for s in runs["sigma"].stats][0]
    assert online[0].exchanges < sig.exchanges
    assert online[0].bytes_sent < sig.bytes_sent
    assert suf.deal.key_bytes[0] < runs["sigma"].deal.key_bytes[0]


@pytest.mark.parametrize("name", ["bert-base", "gpt2"])
def test_suf_plan_below_sigma_for_the_benchmark_models(name):
    sigma, suf = (plan(spec_for(name), 128, nonlinear=m) for m in ("sigma", "suf"))
    assert suf["comm_bytes"] < sigma["comm_bytes"]
    assert suf["key_bytes_p0"] < sigma["key_bytes_p0"]
    assert suf["key_bytes_p1"] < sigma["key_bytes_p1"]
    assert suf["exchanges"] < sigma["exchanges"]
