"""`suf demo`: a few gates (TrFloor, ReLU, LUT, matmul) between two processes, each with its
cost report, as `suf gate` runs them."""
from __future__ import annotations

from suf.cli import render
from suf.cli.gate import run_gate
from suf.cli.options import positive_int, torch_device

GATES = ("trfloor", "relu", "lut", "matmul")


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="a few gates between two processes, with cost reports",
                       description=__doc__)
    p.add_argument("--count", type=positive_int, default=256, help="number of elements")
    p.add_argument("--device", type=torch_device, default="cpu")
    p.set_defaults(run=run)


def run(args) -> int:
    ok = True
    for name in GATES:
        result = run_gate(name, 50, args.count, args.device)
        render.gate_report(result, False)
        ok &= result["equal"]
    print("all outputs equal to the cleartext reference" if ok else "MISMATCH")
    return 0 if ok else 1
