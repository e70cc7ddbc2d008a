"""Accuracy of SIGMA's fixed-point gates (suf.gates references) against the float functions.

    .venv/bin/python benchmarks/reference_accuracy.py

Writes benchmarks/results/reference_accuracy.json, stamped with the tree that ran
(benchmarks/provenance.py), and regenerates its tables in docs/reference_accuracy.md
(benchmarks/tables.py; the notes there are the document's own text).  Deterministic (seeded),
CPU only, about half a minute on 2 cores.  Errors are measured on the fixed-point inputs (input
quantisation is not counted), in real units; 1 ULP = 2^-12 ≈ 2.44e-4.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import sys
from pathlib import Path

import torch

import provenance

from suf.gates import tables
from suf.gates import gelu, layernorm, silu
from suf.gates.inverse import reference as reference_inverse
from suf.gates.nexp import reference as reference_nexp
from suf.gates.softmax import reference as reference_softmax
from suf.core.ring import Ring

ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "benchmarks/results/reference_accuracy.json"
F = tables.SCALE
ULP = 2.0**-F


def _stats(err: torch.Tensor, at: torch.Tensor) -> dict:
    """Max and mean absolute error, and the input (real) where the max is attained."""
    i = int(err.argmax())
    return {"points": err.numel(), "max_abs_err": float(err[i]), "max_abs_err_ulp": float(err[i]) / ULP,
            "mean_abs_err": float(err.mean()), "argmax_input": float(at.reshape(-1)[i])}


# -- pointwise gates -------------------------------------------------------------------------
def pointwise(name, ref, exact, n: int) -> list:
    ring = Ring(n)
    bound = 2 ** (n - F - 1)  # valid input range [-bound, bound) in fixed point
    dense = torch.arange(-16 * 2**F, 16 * 2**F + 1)  # every fixed-point step of |x| <= 16
    mags = torch.logspace(math.log10(16.0), math.log10((bound - 1) / 2**F), 20001, dtype=torch.float64)
    coarse = (mags * 2**F).round().to(torch.int64).clamp(max=bound - 1)
    coarse = torch.cat([coarse, -coarse])
    rows = []
    for label, x in (("-16 <= x <= 16, every step", dense),
                     (f"16 < abs(x) < 2^{n - F - 1 - F}, 40002 log-spaced", coarse)):
        got = ring.decode(ref(ring.wrap(x), n), F)
        xr = x.to(torch.float64) / 2**F
        rows.append({"gate": name, "n": n, "inputs": label, **_stats((got - exact(xr)).abs(), xr)})
    return rows


def gelu_float(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def silu_float(x):
    return x * torch.sigmoid(x)


# -- softmax parts ---------------------------------------------------------------------------
def nexp_rows(n: int) -> list:
    ring = Ring(n)
    dense = torch.arange(0, 2**16)
    beyond = torch.tensor([2**16, 2**17, 2**20, 2**30, 2**(n - F) - 1])
    rows = []
    for label, d in (("0 <= d < 16, every step", dense), ("d >= 16 (clipped)", beyond)):
        got = ring.decode(reference_nexp(d, n=n), F)
        dr = d.to(torch.float64) / 2**F
        rows.append({"part": "nExp e^-d", "inputs": label,
                     **_stats((got - torch.exp(-dr)).abs(), dr)})
    return rows


def inverse_rows(n: int, length: int) -> list:
    ring = Ring(n)
    s = torch.arange(2**F, length * 2**F + 1)  # every row sum a softmax row can have
    got = ring.decode(reference_inverse(s, n=n, length=length), F)
    sr = s.to(torch.float64) / 2**F
    exact = 1.0 / sr
    row = {"part": f"inverse 1/S (L = {length})", "inputs": f"1 <= S <= {length}, every step",
           **_stats((got - exact).abs(), sr)}
    row["max_rel_err"] = float(((got - exact).abs() / exact).max())
    return [row]


def softmax_rows() -> list:
    rows = []
    configs = [(50, 128, False, "N(0, 1)", 1.0), (50, 128, False, "N(0, 4^2)", 4.0),
               (50, 128, False, "N(0, 16^2)", 16.0), (50, 128, True, "N(0, 4^2)", 4.0),
               (50, 100, False, "N(0, 4^2)", 4.0), (37, 128, False, "N(0, 4^2)", 4.0)]
    for seed, (n, length, causal, dist, sd) in enumerate(configs):
        ring = Ring(n)
        g = torch.Generator().manual_seed(1000 + seed)
        shape = (12, length, length)
        x = (torch.randn(shape, generator=g, dtype=torch.float64) * sd * 2**F).floor().to(torch.int64)
        got = ring.decode(reference_softmax(ring.wrap(x), n=n, causal=causal), F)
        xr = x.to(torch.float64) / 2**F
        if causal:
            xr = xr.masked_fill(torch.triu(torch.ones(length, length, dtype=torch.bool), 1), -math.inf)
        err = (got - torch.softmax(xr, dim=-1)).abs()
        i = int(err.argmax())
        rows.append({"n": n, "L": length, "causal": causal, "logits": dist, "rows": 12 * length,
                     "max_abs_err": float(err.reshape(-1)[i]),
                     "max_abs_err_ulp": float(err.reshape(-1)[i]) / ULP,
                     "mean_abs_err": float(err.mean()),
                     "max_row_sum_err": float((got.sum(-1) - 1.0).abs().max())})
    return rows


# -- LayerNorm -------------------------------------------------------------------------------
def layernorm_rows() -> list:
    rows = []
    configs = [(50, 768, 0.0, 1.0), (50, 768, 1.0, 1.0), (50, 768, 10.0, 1.0), (50, 768, 0.0, 0.1),
               (50, 768, 0.0, 10.0), (50, 1024, 10.0, 1.0), (37, 128, 0.0, 1.0),
               (37, 128, 1.0, 1.0)]
    for seed, (n, d, mean, sd) in enumerate(configs):
        ring = Ring(n)
        g = torch.Generator().manual_seed(2000 + seed)
        x = ((torch.randn(256, d, generator=g, dtype=torch.float64) * sd + mean) * 2**F).floor()
        gamma = ((torch.rand(d, generator=g, dtype=torch.float64) + 0.5) * 2**F).floor()
        beta = ((torch.rand(d, generator=g, dtype=torch.float64) - 0.5) * 2**(2 * F)).floor()
        got = ring.decode(layernorm.reference(ring.wrap(x.to(torch.int64)),
                                              ring.wrap(gamma.to(torch.int64)),
                                              ring.wrap(beta.to(torch.int64)), n=n), F)
        xr, gr, br = x / 2**F, gamma / 2**F, beta / 2**(2 * F)
        mu = xr.mean(-1, keepdim=True)
        exact = (xr - mu) / ((xr - mu).pow(2).mean(-1, keepdim=True)).sqrt() * gr + br
        err = (got - exact).abs()
        rows.append({"n": n, "d": d, "x": f"N({mean:g}, {sd:g}^2)", "rows": 256,
                     "gamma": "U[0.5, 1.5)", "beta": "U[-0.5, 0.5)",
                     "max_abs_err": float(err.max()), "max_abs_err_ulp": float(err.max()) / ULP,
                     "mean_abs_err": float(err.mean())})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, default=RESULT)
    args = ap.parse_args()
    stamp = provenance.stamp()  # the tree that runs, read before it runs
    res = {
        "benchmark": "accuracy of the SIGMA fixed-point references (suf.gates) vs float64",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **stamp,
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
        "machine": {"cpu": provenance.cpu_name(), "torch": torch.__version__, "python": platform.python_version()},
        "pointwise": pointwise("GeLU", lambda x, n: gelu.reference(x, n=n), gelu_float, 50)
        + pointwise("SiLU", lambda x, n: silu.reference(x, n=n), silu_float, 50),
        "softmax_parts": nexp_rows(50) + inverse_rows(50, 128),
        "softmax": softmax_rows(),
        "layernorm": layernorm_rows(),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(res, indent=2) + "\n")
    if args.json.resolve() != RESULT.resolve():
        print(f"wrote {args.json}")
        return
    import tables

    tables.update(["reference-accuracy"])
    print(f"wrote {args.json} and its tables in docs/reference_accuracy.md")


if __name__ == "__main__":
    main()
