"""`suf deal`: the dealer alone.  Writes into a directory the model owner's deployment file
(deployment.p0.suk: the weight masks), both parties' one-time key files for one inference of
(model, --batch, --seq) (keys.p0.suk, keys.p1.suk), the client bundle (client.bundle: the
model's shapes, tokenizer and embedding tables, all the client holds of it) and dealing.json;
prints dealing.json."""
from __future__ import annotations

from suf.cli import render
from suf.cli.options import (add_nonlinear_option, add_truncation_option, loading, positive_int,
                             torch_device)


def add_parser(sub) -> None:
    p = sub.add_parser("deal", help="the dealer: deployment and key files for one inference",
                       description=__doc__)
    p.add_argument("--model", required=True, help="as `suf run --model`")
    p.add_argument("--seq", type=positive_int, required=True, help="sequence length L")
    p.add_argument("--batch", type=positive_int, default=1, help="batch size B")
    p.add_argument("--bits", type=int, default=None, help="the ring Z_2^bits")
    p.add_argument("--device", type=torch_device, default="cpu", help="where the dealer computes")
    p.add_argument("--out", required=True, help="directory for the files")
    add_nonlinear_option(p, "; recorded in the key files: the parties must run the same mode")
    add_truncation_option(p, "; recorded in the key files (gap only): the parties must run "
                             "the same mode")
    p.set_defaults(run=run)


def run(args) -> int:
    from suf.models import load_model
    from suf.runtime import ModelJob, deal

    with loading(f"--model {args.model}"):
        model = load_model(args.model, bits=args.bits)
    job = ModelJob(model, args.batch, args.seq, name=args.model, nonlinear=args.nonlinear,
                   truncation=args.truncation)
    info = deal(job, args.out, args.device)
    render.print_json(info, indent=1)
    return 0
