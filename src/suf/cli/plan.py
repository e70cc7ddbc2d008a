"""`suf plan`: an inference's predicted online bytes, exchanges, key bytes and memory per party,
without running it (and SIGMA's graph's figures beside them).  Exit code 2 when it does not fit."""
from __future__ import annotations

from pathlib import Path

from suf.cli import render
from suf.cli.options import (add_nonlinear_option, add_truncation_option, loading,
                             positive_int)
from suf.core.errors import InputError


def add_parser(sub) -> None:
    p = sub.add_parser("plan", help="predict an inference's costs without running it",
                       description=__doc__)
    p.add_argument("--model", required=True, help="as `suf run --model` (its config only)")
    p.add_argument("--seq", type=positive_int, required=True, help="sequence length L")
    p.add_argument("--batch", type=positive_int, default=1, help="batch size B")
    p.add_argument("--bits", type=int, default=None, help="the ring Z_2^bits")
    p.add_argument("--key-dir", default=".", help="where key files would go (free-space check)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    add_nonlinear_option(p)
    add_truncation_option(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from suf.models import model_spec
    from suf.runtime.plan import plan

    with loading(f"--model {args.model}"):
        spec = model_spec(args.model, bits=args.bits)
    if not Path(args.key_dir).is_dir():
        raise InputError(f"--key-dir: {args.key_dir} is not a directory")
    p = plan(spec, args.seq, args.batch, args.key_dir, nonlinear=args.nonlinear,
             truncation=args.truncation)
    render.plan_report(p, args.json)
    return 2 if p["warnings"] else 0
