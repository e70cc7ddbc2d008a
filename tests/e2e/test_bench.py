"""`suf bench` (suf.bench): a grid of measured runs, Sigma and SUF side by side.  On the CPU with
bert-tiny: every record's figures are the transport's and the dealer's (equal to `suf plan`'s
predictions, the output equal to the reference), the report and plots are written, --resume skips
what was measured, and a configuration that cannot fit is refused up front with the numbers.  The
report's layout (deltas, the seed's figures beside ours, per batch) on synthetic records."""
import json
import subprocess
import sys

import pytest

from suf.bench import Config, grid, run_bench
from suf.bench.report import GIB, LINKS, markdown, projection
from suf.bench.seed import seed_figures
from suf.runtime import plan as plan_module

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    lines = []
    res = run_bench(grid(["bert-tiny"], [4], [1], ["sigma", "suf"]), out, progress=lines.append,
                    command="test")
    return out, res, lines


def test_records_are_measured_and_equal_the_plan(bench):
    out, res, _ = bench
    records = res["records"]
    assert [r["key"] for r in records] == ["bert-tiny/L4/B1/sigma/faithful",
                                           "bert-tiny/L4/B1/suf/faithful"]
    for r in records:
        assert r["status"] == "ok" and r["equal_to_reference"]
        assert r["rounds"] == r["planned"]["exchanges"]
        assert r["comm_bytes"] == r["planned"]["comm_bytes"]
        assert r["key_bytes"][0] == r["planned"]["key_bytes_p0"]
        assert r["online_ms"] == pytest.approx(1e3 * max(r["online_s"]))
        assert r["tokens_per_s"] == pytest.approx(4 / max(r["online_s"]))
        assert sum(g["exchanges"] for g in r["gates"].values()) == r["rounds"]
        assert sum(g["bytes"] for g in r["gates"].values()) == r["comm_bytes"]
    sigma, suf = records
    assert suf["rounds"] < sigma["rounds"] and suf["comm_bytes"] < sigma["comm_bytes"]
    saved = json.loads((out / "bench.json").read_text())
    assert saved["records"] == records and saved["tree"]["src_sha256"]
    assert saved["machine"]["cores"] >= 1 and saved["command"] == "test"


def test_report_and_plots(bench):
    out, res, _ = bench
    text = (out / "report.md").read_text()
    assert "## bert-tiny: sequence sweep (batch=1)" in text
    assert "### SUF vs Sigma (bert-tiny, batch=1)" in text
    assert "| 4 | " in text and "## LAN / WAN projection" in text and "## bert-tiny: per gate" in text
    for p in res["plots"]:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {p.name for p in res["plots"]} == {"online_vs_seq.png", "comm_vs_seq.png",
                                              "tokens_vs_batch.png", "gates_bert-tiny_L4.png"}


def test_resume_skips_what_was_measured(bench):
    out, res, _ = bench
    lines = []
    again = run_bench(grid(["bert-tiny"], [4], [1], ["sigma", "suf"]), out, resume=True,
                      progress=lines.append)
    assert all("skipped (--resume)" in line for line in lines) and len(lines) == 2
    assert again["records"] == res["records"]


def test_a_configuration_that_does_not_fit_is_refused_with_the_numbers(tmp_path, monkeypatch):
    class Tiny:
        free = 1 << 20
    monkeypatch.setattr(plan_module.shutil, "disk_usage", lambda path: Tiny)
    res = run_bench([Config("bert-tiny", 4, 1, "sigma")], tmp_path, progress=lambda line: None)
    (r,) = res["records"]
    assert r["status"] == "does not fit"
    assert "both key files need" in r["why"] and "GiB free" in r["why"]
    assert "## Not run" in (tmp_path / "report.md").read_text() and res["plots"] == []


def _fake(model, seq, batch, mode, ms, comm_gib, rounds):
    return {"status": "ok", "key": f"{model}/L{seq}/B{batch}/{mode}/faithful",
            "config": {"model": model, "seq": seq, "batch": batch, "nonlinear": mode,
                       "truncation": "faithful"},
            "equal_to_reference": True, "online_s": [ms / 1e3, ms / 1e3], "online_ms": ms,
            "tokens_per_s": batch * seq / (ms / 1e3), "comm_bytes": int(comm_gib * GIB),
            "bytes_sent_p0": int(comm_gib * GIB / 2), "bytes_recv_p0": int(comm_gib * GIB / 2),
            "rounds": rounds, "comm_s": [0.1, 0.1], "keygen_s": 1.0, "key_bytes": [GIB, GIB],
            "gates": {"softmax": {"bytes": 10, "exchanges": 3, "wall_s": 0.5, "calls": 12}}}


def test_report_layout_deltas_and_the_seeds_figures():
    records = [_fake("gpt2", 128, b, m, ms, gib, r) for b, m, ms, gib, r in
               ((1, "sigma", 1000.0, 0.8, 1190), (1, "suf", 800.0, 0.6, 986),
                (2, "sigma", 1800.0, 1.6, 1190), (2, "suf", 1500.0, 1.2, 986))]
    header = {"date": "2026-12-03T00:00:00", "command": "suf bench", "machine": "m",
              "tree": "t", "device": "cuda"}
    text = markdown(header, records)
    # the delta: 1000/800 = 1.25x, 20 % lower latency, 0.2 GB = 25 % less comm
    assert "| 128 | 1.250 | 20.00 | 0.200 | 25.00 |" in text
    # the seed's own figures beside ours (their hardware and code)
    seed = seed_figures("gpt2", 128, 1, "sigma")
    assert seed["online_ms"] == 1198.563 and f"{seed['online_ms']:,.1f}" in text
    assert "| 2 | 900.0 | 750.0 |" in text  # per inference: 1800/2, 1500/2
    assert "1,175.5 | 948.2 |" in text       # the seed's batch-2 figures per inference
    bw, rtt = LINKS[0][1:]
    assert projection(records[0], bw, rtt) == pytest.approx(0.9 + 8 * 0.4 * GIB / bw + 1190 * rtt)


def test_cli_bench_help_and_bad_key_dir(tmp_path):
    out = subprocess.run([sys.executable, "-m", "suf.cli", "bench", "--model", "bert-tiny",
                          "--key-dir", str(tmp_path / "nope"), "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stderr.startswith("suf: error: --key-dir")
