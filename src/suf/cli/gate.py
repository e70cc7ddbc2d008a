"""`suf gate NAME`: any registered gate (suf.mpc.gate.REGISTRY) between two processes over TCP on
localhost, from the gate's own example: inputs drawn from a fresh seed inside its valid range,
secret ones masked by their owner, public ones as they are.  Prints whether the output equals
the reference and the measured cost report beside the gate's predicted cost (the fold of its
declared layout).  Exit code 1 if the output differs from the reference."""
from __future__ import annotations

import os

from suf.cli import render
from suf.cli.options import add_nonlinear_option, loading, positive_int, seconds, torch_device

SEED_BYTES = 32


def add_parser(sub) -> None:
    p = sub.add_parser("gate", help="run one registered gate between two processes on localhost",
                       description=__doc__)
    p.add_argument("name", metavar="NAME", help="a registered gate (e.g. trfloor, relu, lut)")
    p.add_argument("--bits", type=int, default=50, help="ring bitwidth n")
    p.add_argument("--count", type=positive_int, default=1024, help="number of elements")
    p.add_argument("--device", type=torch_device, default="cpu")
    p.add_argument("--timeout", type=seconds, default=60.0,
                   help="seconds a party waits for its peer")
    p.add_argument("--json", action="store_true", help="print the cost report as JSON")
    add_nonlinear_option(p, ": gelu, silu, nexp, inverse, rsqrt run as suf_NAME, softmax and "
                            "layernorm with those sub-gates; any other gate is refused with suf")
    p.set_defaults(run=run)


def run_gate(name: str, bits: int, count: int, device: str, timeout: float = 60.0,
             nonlinear: str = "sigma") -> dict:
    from suf.runtime import GateJob, run

    with loading(f"gate {name}"):
        job = GateJob(name, bits, count, nonlinear)
    return run(job, os.urandom(SEED_BYTES), device=device, timeout=timeout)


def run(args) -> int:
    result = run_gate(args.name, args.bits, args.count, args.device, args.timeout,
                      args.nonlinear)
    render.gate_report(result, args.json)
    return 0 if result["equal"] else 1
