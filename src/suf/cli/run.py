"""`suf run`: secure inference of a model on this machine: the dealer writes the key files, then
the model owner (P0) and the client (P1) run as two processes over TCP on localhost."""
from __future__ import annotations

import json
from pathlib import Path

from suf.cli import render
from suf.cli.options import (add_graphs_option, add_nonlinear_option, add_truncation_option,
                             loading, positive_int, seconds, torch_device)
from suf.core.errors import InputError

DEFAULT_TEXT = "Secure inference keeps secrets."


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="secure inference: dealer, then P0 and P1 on localhost",
                       description=__doc__)
    p.add_argument("--model", default="all-MiniLM-L6-v2",
                   help="all-MiniLM-L6-v2 | bert-tiny | bert-base | bert-large | gpt2 | a path")
    p.add_argument("--text", action="append",
                   help=f"input text (repeat for a batch; default {DEFAULT_TEXT!r})")
    p.add_argument("--ids", help="token ids as JSON: [1, 2, 3] or [[...], [...]] (gpt2)")
    p.add_argument("--seq", type=positive_int, default=None,
                   help="sequence length L (pad to it; default: the longest input)")
    p.add_argument("--batch", type=positive_int, default=1,
                   help="batch size B: repeats a single text or id list B times")
    p.add_argument("--device", type=torch_device, default="cpu")
    p.add_argument("--bits", type=int, default=None,
                   help="the ring Z_2^bits (default as SIGMA: 37 for bert-tiny, 50 otherwise)")
    p.add_argument("--timeout", type=seconds, default=600.0,
                   help="seconds a party waits for its peer")
    p.add_argument("--key-dir", default=None,
                   help="where the one-time key files go (default: the system's temp directory; "
                        "/dev/shm keeps them in RAM)")
    p.add_argument("--tls", action="store_true",
                   help="the two parties talk TLS 1.3 (mutual authentication) with certificates "
                        "made for this run (default: plaintext, both are on localhost)")
    p.add_argument("--certs", metavar="DIR", default=None,
                   help="TLS with the certificates `suf certs --out DIR` wrote")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_nonlinear_option(p)
    add_truncation_option(p)
    add_graphs_option(p)
    p.set_defaults(run=run)


def batch_of(model, args):
    """The client's Batch from --text or --ids, --seq and --batch."""
    if args.ids is not None:
        with loading("--ids"):
            seqs = json.loads(args.ids)
            if isinstance(seqs, list) and seqs and isinstance(seqs[0], int):
                seqs = [seqs]
            return model.batch(_repeat(seqs, args.batch, "--ids"), args.seq)
    if model.tokenizer is None:
        raise InputError(f"{args.model} takes token ids: pass --ids")
    with loading("--text"):
        return model.tokenize(_repeat(args.text or [DEFAULT_TEXT], args.batch, "--text"),
                              args.seq)


def _repeat(seqs, batch: int, what: str) -> list:
    if not isinstance(seqs, list):
        raise InputError(f"{what}: expected a list, got {type(seqs).__name__}")
    if len(seqs) == 1:
        return seqs * batch
    if batch not in (1, len(seqs)):
        raise InputError(f"--batch {batch} repeats a single input; {what} gives {len(seqs)}")
    return seqs


def run(args) -> int:
    from suf.models import load_model
    from suf.runtime import ModelJob, run as run_job

    if args.text is not None and args.ids is not None:
        raise InputError("give either --text or --ids, not both")
    tls = None
    if args.certs is not None:
        from suf.runtime.certs import FILES

        missing = [f for f in FILES if not (Path(args.certs) / f).is_file()]
        if missing:
            raise InputError(f"--certs {args.certs}: no {', '.join(missing)} there "
                             f"(`suf certs --out DIR` writes them)")
        tls = args.certs
    elif args.tls:
        tls = True
    with loading(f"--model {args.model}"):
        model = load_model(args.model, bits=args.bits)
    batch = batch_of(model, args)
    job = ModelJob(model, *batch.shape, name=args.model, nonlinear=args.nonlinear,
                   truncation=args.truncation)
    result = run_job(job, batch, device=args.device, timeout=args.timeout,
                     work_dir=args.key_dir, tls=tls, graphs=args.graphs)
    if args.json:
        render.run_json(result)
    else:
        render.run_report(result, args.device)
    return 0 if result["equal"] else 1
