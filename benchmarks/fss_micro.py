"""FSS micro-benchmark: DPF keygen, comparison and point evaluation, and the LUT, per domain size.

    PYTHONPATH=src python3 benchmarks/fss_micro.py --device cuda --out benchmarks/results/x.json

For n in {13, 32, 40, 50}: keygen of N keys (both parties), and one party's evaluation of 1{x < α}
(prefix-parity walk) and of the point function; PRG expansions per second inside the walk are
N·(n−7)/time.  Also the 8- and 13-bit table lookups (eval-all).  On the GPU the timings are CUDA
event times of the fused kernels with the keys already on the device (median of repeats); on the CPU
wall time of the torch path, reported per core as well.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import time

import torch

import provenance

from suf.fss import compare, dpf, lut
from suf.prg import Stream


def _timer(device, fn, repeats):
    fn()  # warm-up (compiles the Triton kernels)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            torch.cuda.synchronize()
            times.append(a.elapsed_time(b) / 1e3)
        else:
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def run(device, log_n, repeats):
    N = 1 << log_n
    stream = Stream(os.urandom(32), device=device)
    rows = []
    for n in (13, 32, 40, 50):
        alphas = stream.ring(N, n)
        x = stream.ring(N, n)
        keygen_s = _timer(device, lambda: dpf.keygen(alphas, n, stream), repeats)
        k0, _ = dpf.keygen(alphas, n, stream)
        lt_s = _timer(device, lambda: compare.eval_lt(k0, x), repeats)
        pt_s = _timer(device, lambda: dpf.eval_point(k0, x), repeats)
        walk = N * (n - 7)
        rows.append({"op": "dpf", "n": n, "N": N, "keygen_s": keygen_s, "eval_lt_s": lt_s,
                     "eval_point_s": pt_s, "keys_per_s": N / keygen_s,
                     "lt_evals_per_s": N / lt_s, "point_evals_per_s": N / pt_s,
                     "prg_expansions_per_s_in_walk": walk / lt_s,
                     "keygen_prg_blocks_per_s": 2 * walk / keygen_s})
        print(json.dumps(rows[-1]), flush=True)
    for k in (8, 13):
        Nl = min(N, 1 << (16 if device.type == "cuda" else 10))
        r = stream.ring(Nl, k)
        table = stream.ring(1 << k, 50)
        k0, _ = lut.keygen(r, k, stream)
        xh = stream.ring(Nl, k)
        lut_s = _timer(device, lambda: lut.eval(k0, xh, table), repeats)
        rows.append({"op": "lut", "k": k, "N": Nl, "eval_s": lut_s, "evals_per_s": Nl / lut_s})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--log-n", type=int, default=None, help="N = 2^log_n keys (20 on GPU)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    device = torch.device(args.device)
    log_n = args.log_n if args.log_n is not None else (20 if device.type == "cuda" else 13)
    stamp = provenance.stamp()  # the tree that runs, read before it runs
    rows = run(device, log_n, args.repeats)
    threads = torch.get_num_threads()
    if device.type == "cpu":
        for r in rows:
            for key in [k for k in r if k.endswith("_per_s")]:
                r[key + "_per_core"] = r[key] / threads
    result = {"benchmark": "fss_micro", "date": datetime.datetime.now(datetime.timezone.utc)
              .isoformat(timespec="seconds"), **stamp,
              "command": "PYTHONPATH=src python3 benchmarks/fss_micro.py " +
              f"--device {args.device} --log-n {log_n} --repeats {args.repeats}",
              "device": str(device), "hardware": {**provenance.machine(str(device)), "torch_threads": torch.get_num_threads()}, "rows": rows}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
