"""`suf bench`: the seed's tables regenerated, every figure measured: each configuration (model ×
seq × batch × nonlinear mode) runs as `suf run` runs it (dealer, key files, P0 and P1 as processes
over TCP), Sigma and SUF side by side in one run.  Writes DIR/records.jsonl, DIR/bench.json,
DIR/report.md (laid out like the seed's results, with SUF-vs-Sigma deltas, the seed's own figures
beside ours, a per-gate breakdown and a LAN/WAN projection) and PNG plots.  A configuration that
cannot fit is refused up front with `suf plan`'s numbers and reported as such."""
from __future__ import annotations

import shlex
import sys

from suf.cli.options import add_truncation_option, positive_int, seconds, torch_device
from suf.core.config import NONLINEAR_MODES
from suf.core.errors import InputError


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="measure a grid of configurations, Sigma and SUF side by "
                                     "side, and write the report", description=__doc__)
    p.add_argument("--model", nargs="+", default=["bert-base", "gpt2"],
                   help="models as `suf run --model` takes them")
    p.add_argument("--seq", nargs="+", type=positive_int, default=[128])
    p.add_argument("--batch", nargs="+", type=positive_int, default=[1])
    p.add_argument("--nonlinear", nargs="+", choices=NONLINEAR_MODES,
                   default=list(NONLINEAR_MODES), help="nonlinear modes, side by side")
    p.add_argument("--device", type=torch_device, default="cpu")
    p.add_argument("--key-dir", default=None,
                   help="where each run's key files go (default: the system's temp directory; "
                        "/dev/shm keeps them in RAM)")
    p.add_argument("--timeout", type=seconds, default=600.0,
                   help="seconds a party waits for its peer")
    p.add_argument("--out", default="bench-results", help="the output directory")
    p.add_argument("--resume", action="store_true",
                   help="skip the configurations that already have a record in --out")
    add_truncation_option(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from pathlib import Path

    from suf.bench import grid, run_bench

    if args.key_dir is not None and not Path(args.key_dir).is_dir():
        raise InputError(f"--key-dir: {args.key_dir} is not a directory")
    configs = grid(args.model, args.seq, args.batch, args.nonlinear, args.truncation)
    command = "suf " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else ""
    res = run_bench(configs, args.out, device=args.device, key_dir=args.key_dir,
                    timeout=args.timeout, resume=args.resume, command=command,
                    progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(f"report: {res['report']}")
    for path in res["plots"]:
        print(f"plot: {path}")
    bad = [r for r in res["records"] if r.get("status") == "ok" and not r["equal_to_reference"]]
    return 1 if bad else 0
