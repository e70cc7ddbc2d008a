"""Time exact ring matmul (suf.core.linalg.ring_matmul) on CUDA for BERT-base shapes.

    PYTHONPATH=src python3 benchmarks/matmul_bench.py --out benchmarks/results/matmul_<date>.json

Each shape M×K×N is timed with CUDA events (median of --rounds rounds of --iters calls each, after
warm-up), next to one plain float64 GEMM of the same shape (one limb product's worth of work).
Every result is first checked bit for bit against the CPU int64 product.
"""
from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys

import torch

import provenance

from suf.core.linalg import limb_plan, ring_matmul

SHAPES = [(128, 768, 3072), (128, 3072, 768)]  # BERT-base FFN1, FFN2 at seq 128


def _time_ms(fn, iters: int, rounds: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(rounds):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            fn()
        stop.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(stop) / iters)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("--bits", type=int, default=50)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("matmul_bench.py needs a CUDA GPU")
    stamp = provenance.stamp()  # the tree that runs, read before it runs
    dev = torch.device("cuda")
    gen = torch.Generator().manual_seed(0)
    rows = []
    for m, k, n in SHAPES:
        a = torch.randint(-2**63, 2**63 - 1, (m, k), dtype=torch.int64, generator=gen)
        b = torch.randint(-2**63, 2**63 - 1, (k, n), dtype=torch.int64, generator=gen)
        exact = torch.equal(ring_matmul(a.to(dev), b.to(dev), args.bits).cpu(),
                            ring_matmul(a, b, args.bits))
        a, b = a.to(dev), b.to(dev)
        ring_ms = _time_ms(lambda: ring_matmul(a, b, args.bits), args.iters, args.rounds)
        af, bf = a.double(), b.double()
        gemm_ms = _time_ms(lambda: af @ bf, args.iters, args.rounds)
        limbs, width, chunk = limb_plan(args.bits, k)
        row = {"m": m, "k": k, "n": n, "bits": args.bits, "limbs": limbs, "limb_bits": width,
               "limb_products": limbs * (limbs + 1) // 2, "k_chunks": -(-k // chunk),
               "exact_vs_cpu_int64": exact, "ring_matmul_ms": round(ring_ms, 4),
               "one_fp64_gemm_ms": round(gemm_ms, 4)}
        rows.append(row)
        print(json.dumps(row))
    result = {
        "benchmark": "exact ring matmul (suf.core.linalg.ring_matmul), CUDA float64 limbs",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **stamp,
        "command": " ".join(["python3", *sys.argv]),
        "gpu": torch.cuda.get_device_name(dev),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "timing": f"CUDA events, median of {args.rounds} rounds x {args.iters} calls, after warm-up",
        "results": rows,
    }
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    if not all(r["exact_vs_cpu_int64"] for r in rows):
        sys.exit("MISMATCH: the CUDA product differs from the CPU int64 product")


if __name__ == "__main__":
    main()
