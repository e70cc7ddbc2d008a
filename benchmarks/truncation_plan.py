"""`suf plan` of BERT-base and GPT-2 at L = 128, batch 1, in every (nonlinear, truncation) mode:
online comm (both directions), key bytes per party and exchanges, with SIGMA's-graph scope beside
them (blocks only, as exact_design.md §2 counts).  Plans equal the measured counters
(tests/e2e/test_truncation.py, test_plan.py); nothing here runs a protocol.

    PYTHONPATH=src:benchmarks python benchmarks/truncation_plan.py \
        --out benchmarks/results/truncation_plan.json
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import provenance

from suf.models import model_spec
from suf.runtime.plan import plan

GIB = 2 ** 30


def row(p: dict) -> dict:
    s = p["sigma_scope"]
    return {"comm_gib": round(p["comm_bytes"] / GIB, 4),
            "key_gib_p0": round(p["key_bytes_p0"] / GIB, 4),
            "key_gib_p1": round(p["key_bytes_p1"] / GIB, 4), "exchanges": p["exchanges"],
            "sigma_scope": {"comm_gib": round(s["comm_bytes"] / GIB, 4),
                            "key_gib": round(s["key_bytes"] / GIB, 4),
                            "exchanges": s["exchanges"]}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    res = {"benchmark": "suf plan, bert-base and gpt2, L = 128, batch 1, every mode",
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           **provenance.stamp(),
           "command": "python " + " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
           "machine": provenance.machine("cpu"), "plans": []}
    for model in ("bert-base", "gpt2"):
        for nonlinear in ("sigma", "suf"):
            for truncation in ("faithful", "gap"):
                p = plan(model_spec(model), 128, nonlinear=nonlinear, truncation=truncation)
                r = {"model": model, "nonlinear": nonlinear, "truncation": truncation, **row(p)}
                res["plans"].append(r)
                print(f"{model:9s} {nonlinear:5s} {truncation:8s} comm {r['comm_gib']:.3f} GiB  "
                      f"key {r['key_gib_p0']:.2f} GiB  {r['exchanges']} exchanges", flush=True)
    text = json.dumps(res, indent=2) + "\n"
    if args.out:
        args.out.write_text(text)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
