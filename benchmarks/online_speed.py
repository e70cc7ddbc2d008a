"""Online time of one inference as `suf run --device cuda --key-dir /dev/shm` runs it: the dealer
writes both key files, then P0 and P1 as two OS processes over TCP on localhost, each loading its
keys into GPU memory, recording its CUDA graphs in setup and replaying them online (and, for
comparison, with --no-cuda-graphs: kernel by kernel).  Every run's output is checked against the
reference bit for bit.

    PYTHONPATH=src:benchmarks python benchmarks/online_speed.py --model bert-base gpt2 \
        --nonlinear sigma suf --graphs on off --out benchmarks/results/online_speed_h200.json

The first run of the process tree is the cold start (fresh compile caches: Triton compiles in the
parties' setup) and is reported on its own ("cold": true); the runs after it are warm.  Per run:
the online seconds of each party (its clock starts after the ready sync and stops when its output
is on the host), each party's graph recording and key loading seconds, keygen and key file
writing, exchanges and bytes as the transport counted them.
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import provenance

from suf.models import load_model
from suf.runtime import ModelJob, run


def one(model, name: str, batch, nonlinear: str, graphs: bool, key_dir, device: str) -> dict:
    job = ModelJob(model, *batch.shape, name=name, nonlinear=nonlinear)
    t0 = time.perf_counter()
    res = run(job, batch, device=device, timeout=600, work_dir=key_dir, graphs=graphs)
    wall = time.perf_counter() - t0
    parties = res["parties"]
    online = parties[0]["stats"]["phases"]["online"]
    return {"model": name, "seq": batch.shape[1], "batch": batch.shape[0],
            "nonlinear": nonlinear, "graphs": graphs,
            "equal_to_reference": bool(res["equal"]),
            "online_s": [p["online_s"] for p in parties],
            "online": [p.get("online") for p in parties],
            "why_eager": [p.get("why") for p in parties],
            "record_s": [p.get("record_s") for p in parties],
            "key_load_s": [p["key_load_s"] for p in parties],
            "keygen_s": res["dealing"]["keygen_s"],
            "exchanges": online["exchanges"],
            "comm_bytes": online["bytes_sent"] + online["bytes_recv"],
            "key_file_bytes": res["dealing"]["key_file_bytes"],
            "wall_s": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", nargs="+", default=["bert-base", "gpt2"])
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--nonlinear", nargs="+", default=["sigma", "suf"])
    ap.add_argument("--graphs", nargs="+", default=["on", "off"], choices=("on", "off"))
    ap.add_argument("--reps", type=int, default=1, help="warm runs per configuration")
    ap.add_argument("--key-dir", default="/dev/shm")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    record = {"benchmark": "online seconds, dealer + P0 + P1 as processes over TCP on one machine",
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              **provenance.stamp(),
              "command": "python " + " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
              "machine": provenance.machine(args.device), "runs": []}
    cold = True
    for name in args.model:
        model = load_model(name)
        batch = model.batch([[101 + i % 900 for i in range(args.seq)]] * args.batch, args.seq)
        for _ in range(args.reps + (1 if cold else 0)):
            for nonlinear in args.nonlinear:
                for g in args.graphs:
                    r = {**one(model, name, batch, nonlinear, g == "on", args.key_dir,
                                 args.device),
                         "cold": cold}
                    cold = False
                    record["runs"].append(r)
                    print(f"{name} L={args.seq} B={args.batch} {nonlinear} graphs={g}"
                          f"{' (cold)' if r['cold'] else ''}: online "
                          f"{max(r['online_s']):.3f} s, record {r['record_s']}, "
                          f"exchanges {r['exchanges']}, equal {r['equal_to_reference']}, "
                          f"{r['online']}", flush=True)
                    args.out.parent.mkdir(parents=True, exist_ok=True)
                    args.out.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
