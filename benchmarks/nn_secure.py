"""One secure inference of a model (dealer + P0 + P1 in one process, in-memory keys, a local
socket pair): checks the output against the reference backend bit for bit and records the costs
and times.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/nn_secure.py bert-tiny --length 8 --batch 2
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/nn_secure.py all-MiniLM-L6-v2 --length 5

Writes benchmarks/results/nn_secure_<model>_L<L>_B<B>_<device>.json, stamped with the tree that
ran (benchmarks/provenance.py: commit and uncommitted diff, or src/'s hash where the tree has no
git, as on the device machine).  Token ids are random
(seeded) over the whole length, so nothing is padded; --text uses real sentences instead
(tokenizer models only).  Keys are dealt from the OS CSPRNG unless --seed is given.
`--table` only rewrites the table in docs/models.md from the result files present
(benchmarks/tables.py nn-secure).
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import torch

import provenance

from suf.models import load_model
from suf.runtime import run_secure

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks/results"


def table() -> None:
    """Rewrite the nn-secure table in docs/models.md from every nn_secure_*.json result file."""
    import tables

    tables.update(["nn-secure"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", nargs="?")
    ap.add_argument("--table", action="store_true", help="only rewrite docs/models.md's table")
    ap.add_argument("--length", type=int, default=8)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--bits", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--text", action="store_true", help="real sentences, padded to --length")
    ap.add_argument("--seed", default=None, help="hex, 32 bytes: reproducible keys (tests only)")
    ap.add_argument("--key-store", default="auto",
                    help="where the in-memory keys live: auto (GPU if they fit), cpu, cuda")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if args.table:
        table()
        return
    if not args.model:
        ap.error("name a model")
    stamp = provenance.stamp()  # the tree that runs, read before it runs

    model = load_model(args.model, bits=args.bits)
    if args.text:
        texts = ["secure inference", "two parties and a dealer", "a short one", "hello"]
        batch = model.tokenize([texts[i % len(texts)] for i in range(args.batch)], args.length)
    else:
        gen = torch.Generator().manual_seed(0)
        ids = torch.randint(1, model.spec.vocab, (args.batch, args.length), generator=gen)
        batch = model.batch(ids, args.length)
    t0 = time.perf_counter()
    want = model.reference(batch)
    reference_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    run = run_secure(model, batch, device=args.device, key_store=args.key_store,
                     seed=None if args.seed is None else bytes.fromhex(args.seed))
    total_s = time.perf_counter() - t0
    equal = bool(torch.equal(run.output.cpu(), want))
    report = run.report()
    res = {
        "benchmark": "one secure inference, dealer + P0 + P1 in one process (suf.runtime.run_secure)",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **stamp,
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
        "machine": provenance.machine(args.device),
        "model": args.model, "spec": json.loads(model.spec.to_json()),
        "batch": args.batch, "length": args.length, "device": args.device,
        "padded_tokens": int((~batch.real).sum()),
        "equal_to_reference": equal,
        "seconds": {"reference": reference_s, "keygen": run.deal.keygen_s,
                    "online_p0": run.online_s[0], "online_p1": run.online_s[1],
                    "total": total_s},
        **report,
    }
    out = args.out or RESULTS / (
        f"nn_secure_{args.model}_L{args.length}_B{args.batch}_{args.device.split(':')[0]}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    p0 = report["parties"][0]["online"]
    print(f"equal to reference: {equal}; online P0 sent {p0['bytes_sent']:,} B, "
          f"{p0['exchanges']} exchanges; key {report['key_bytes'][0]:,} B; "
          f"keygen {run.deal.keygen_s:.1f} s, online {max(run.online_s):.1f} s; keys on "
          f"{run.key_store}; wrote {out}")
    if not equal:
        raise SystemExit("the secure output differs from the reference")


if __name__ == "__main__":
    main()
