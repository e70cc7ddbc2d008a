"""`suf serve`: one party of the job its key file was dealt for.  P0 (the model owner) listens
at --peer and, for a model, loads it (--model) and publishes its masked weights (--deployment);
P1 (the client) runs from the client bundle (--bundle: the model's shapes, embedding tables and
tokenizer, no other weight), connects with its input (--input: a file, or - for standard input;
never the command line, which other users of the machine can read) and gets the output.  The
channel is TLS 1.3 with mutual authentication when --cert, --key and --peer-ca are given; a peer
that is not on loopback needs them (or --insecure-plaintext).  Keys of a gate (as `suf gate`
deals them) take --seed, the seed both parties draw the gate's example inputs from."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from suf.cli import render
from suf.cli.options import (add_graphs_option, add_nonlinear_option, add_tls_options,
                             add_truncation_option, loading, peer, seconds, seed, tls_config,
                             torch_device)
from suf.core.errors import InputError

MODEL_OPTIONS = ("model", "bits", "deployment", "bundle", "input")


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="one party: P0 listens and loads the weights, P1 connects "
                                     "with the client bundle",
                       description=__doc__)
    p.add_argument("--party", type=int, choices=(0, 1), required=True)
    p.add_argument("--peer", type=peer, required=True,
                   help="HOST:PORT (P0 listens there, P1 connects to it)")
    p.add_argument("--keys", required=True, help="this party's key file")
    p.add_argument("--model", help="model keys, P0: the model, as `suf run --model`")
    p.add_argument("--bits", type=int, default=None, help="model keys, P0: the ring Z_2^bits")
    p.add_argument("--deployment", help="model keys, P0: the deployment file from `suf deal`")
    p.add_argument("--bundle", help="model keys, P1: the client bundle from `suf deal`")
    p.add_argument("--input", metavar="FILE",
                   help="model keys, P1: its input, from FILE or - (standard input): JSON "
                        "{\"text\": [...]} or {\"ids\": [[...], ...]}, or plain text, one "
                        "sequence per line")
    p.add_argument("--seed", type=seed, help="gate keys: the inputs' seed (64 hex digits)")
    p.add_argument("--device", type=torch_device, default="cpu")
    p.add_argument("--timeout", type=seconds, default=60.0,
                   help="seconds to wait for the peer")
    p.add_argument("--result", help="write the result JSON here (else P1 prints its output)")
    add_tls_options(p)
    add_nonlinear_option(p, "; must be the mode the keys were dealt for (else refused)")
    add_truncation_option(p, "; must be the mode the keys were dealt for (else refused)")
    add_graphs_option(p)
    p.set_defaults(run=run)


def _refuse(args, names, why: str) -> None:
    given = [f"--{n}" for n in names if getattr(args, n) is not None]
    if given:
        raise InputError(f"{', '.join(given)}: not for {why}")


def _model_job(args, meta: dict):
    """The job of model keys and the party's source: P0's deployment, P1's Batch.  The client
    never loads the model: its part (spec, embedding tables, tokenizer) is in the bundle."""
    from suf.models import load_model, read_bundle
    from suf.runtime import Deployment, from_keys

    _refuse(args, ("seed",), "model keys")
    if args.party == 0:
        _refuse(args, ("input", "bundle"), "the model owner (P0)")
        if args.model is None:
            raise InputError(f"these keys are for the model {meta.get('model')}: pass --model")
        if args.deployment is None:
            raise InputError("the model owner (P0) needs its deployment file (--deployment)")
        with loading(f"--model {args.model}"):
            model = load_model(args.model, bits=args.bits)
        with loading("--deployment"):
            deployment = Deployment.read(model, args.deployment)
        return from_keys(meta, model, deployment, args.nonlinear, args.truncation), None
    _refuse(args, ("deployment", "model", "bits"),
            "the client (P1), which runs from the client bundle (--bundle)")
    if args.bundle is None:
        raise InputError("the client (P1) needs the client bundle (--bundle) that `suf deal` "
                         "writes beside the keys")
    if args.input is None:
        raise InputError("the client (P1) gives its input with --input FILE (or - for standard "
                         "input)")
    with loading("--input"):
        given = read_input(args.input)
    with loading("--bundle"):
        client = read_bundle(args.bundle)
    job = from_keys(meta, client, nonlinear=args.nonlinear, truncation=args.truncation)
    with loading("--input"):
        if "ids" in given:
            return job, client.batch(given["ids"], job.length)
        return job, client.tokenize(given["text"], job.length)


def read_input(source: str) -> dict:
    """The client's input from a file or standard input ("-"): {"text": [...]} or
    {"ids": [[...], ...]} as JSON, or plain text with one sequence per non-empty line."""
    raw = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"--input {source}: not UTF-8 text") from None
    if text.lstrip().startswith("{"):
        given = json.loads(text)
        if set(given) not in ({"text"}, {"ids"}):
            raise InputError(f"--input {source}: a JSON input has one key, \"text\" or \"ids\"")
        if "text" in given and not (isinstance(given["text"], list) and
                                    all(isinstance(t, str) for t in given["text"])):
            raise InputError(f"--input {source}: \"text\" must be a list of strings")
        return given
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise InputError(f"--input {source}: no input (an empty file)")
    return {"text": lines}


def run(args) -> int:
    from suf.keys import inspect_key_file
    from suf.runtime import from_keys, serve

    tls = tls_config(args, args.peer)
    with loading("--keys"):
        meta = inspect_key_file(args.keys).meta
    if "gate" in meta:
        _refuse(args, MODEL_OPTIONS, "gate keys")
        if args.seed is None:
            raise InputError("gate keys need the inputs' seed (--seed)")
        job, source = (from_keys(meta, nonlinear=args.nonlinear, truncation=args.truncation),
                       args.seed)
    else:
        job, source = _model_job(args, meta)
    result = serve(args.party, job, args.keys, args.peer, job.values(source),
                   device=args.device, timeout=args.timeout, tls=tls,
                   insecure_plaintext=args.insecure_plaintext, graphs=args.graphs)
    if args.result:
        Path(args.result).write_text(json.dumps(result))
    elif args.party == 1:
        import torch

        y = job.decode(torch.tensor(result["output"]))
        render.print_json({"output": y.tolist(), "online_s": result["online_s"]})
    return 0
