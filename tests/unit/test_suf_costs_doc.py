"""docs/suf.md's cost table (benchmarks/tables.py renders it from the newest
benchmarks/results/suf_gate_costs_*.json) against the code now: every per-element figure of the
result file equals the layout fold of the gate as it is today (suf.mpc.gate.cost), so the doc
cannot drift from the code; and SUF mode is below Sigma mode in exchanges and bits for gelu,
silu, nexp and inverse, and not above it for rsqrt.  A failure after a cost change: rerun
benchmarks/suf_gate_costs.py and `python benchmarks/tables.py`."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import suf.compiler  # noqa: F401  (registers SUF mode's gates)
import suf.gates  # noqa: F401
from suf.compiler import library, lower
from suf.mpc import gate as gates

ROOT = Path(__file__).resolve().parents[2]
PAIRS = ("gelu", "silu", "nexp", "inverse", "rsqrt")


def _newest() -> dict:
    files = sorted((ROOT / "benchmarks/results").glob("suf_gate_costs_*.json"))
    assert files, "no benchmarks/results/suf_gate_costs_*.json (run benchmarks/suf_gate_costs.py)"
    return max((json.loads(f.read_text()) for f in files), key=lambda r: r["date"])


RESULT = _newest()
ROWS = {row["sigma"]["gate"]: row for row in RESULT["pairs"]}


def test_the_result_covers_every_pair():
    assert sorted(ROWS) == sorted(PAIRS)
    assert all(ROWS[g]["suf"]["gate"] == f"suf_{g}" for g in PAIRS)
    assert RESULT["bits"] == 50


@pytest.mark.parametrize("name", PAIRS)
@pytest.mark.parametrize("mode", ("sigma", "suf"))
def test_per_element_figures_are_the_fold_now(name, mode):
    r = ROWS[name][mode]
    assert r["equal_to_reference"] is True
    N = r["elements"]
    fold = gates.cost(r["gate"], (N,), **r["params"])
    pe = r["per_element"]
    assert pe["exchanges"] == fold.exchanges
    assert pe["bits"] == 8 * fold.sent / N
    assert pe["key_bytes"] == fold.key / N
    assert r["fold"] == {"sent": fold.sent, "exchanges": fold.exchanges, "key": fold.key,
                         "sigma_header": fold.sigma_header}
    for p in (0, 1):  # the measurement the file records is the fold as well
        assert r["measured"]["bytes_sent"][p] == fold.sent
        assert r["measured"]["exchanges"][p] == fold.exchanges
        assert r["measured"]["key_bytes"][p] == fold.key
    if mode == "suf":
        work = lower.work(library.descriptor(r["gate"], **r["params"]), N)
        assert r["work"]["prg_calls"] == work["prg_calls"]
        assert r["work"]["walks"] == work["walks"]


@pytest.mark.parametrize("name", PAIRS)
def test_suf_is_below_sigma(name):
    sig, suf = ROWS[name]["sigma"]["per_element"], ROWS[name]["suf"]["per_element"]
    if name == "rsqrt":  # Sigma mode's rsqrt already is the interval lookup
        assert suf["exchanges"] <= sig["exchanges"] and suf["bits"] <= sig["bits"]
        assert suf["key_bytes"] <= sig["key_bytes"]
    else:
        assert suf["exchanges"] < sig["exchanges"] and suf["bits"] < sig["bits"]
