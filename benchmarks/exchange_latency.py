"""The floor of one exchange on one GPU: each party runs `--kernels` small kernels on its values,
packs them, swaps them with the peer (suf.net.transport) and unpacks, `--rounds` times.  Both
parties as threads of one process (each on its own CUDA stream) and as two processes over TCP.

    python benchmarks/exchange_latency.py --device cuda --elements 196608 --rounds 300

Prints milliseconds per exchange for each setting; with --out, writes them as JSON.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

import torch

import provenance

from suf.net.transport import Transport, local_pair, run_both

BITS = 50


def party_loop(t: Transport, device: str, elements: int, kernels: int, rounds: int) -> float:
    dev = torch.device(device)
    x = torch.arange(elements, dtype=torch.int64, device=dev)
    for _ in range(5):  # warm up (allocations, kernel caches)
        t.exchange_values(x, BITS)
    t.sync()
    t0 = time.perf_counter()
    for _ in range(rounds):
        for _ in range(kernels):
            x = (x * 3 + 1) & ((1 << BITS) - 1)
        x = (x + t.exchange_values(x, BITS)) & ((1 << BITS) - 1)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return (time.perf_counter() - t0) / rounds * 1e3


def threads(args) -> float:
    pair = local_pair(timeout=60)

    def work(p):
        stream = torch.cuda.Stream() if args.device == "cuda" else None
        with torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext():
            return party_loop(pair[p], args.device, args.elements, args.kernels, args.rounds)

    try:
        return max(run_both(work, pair))
    finally:
        for t in pair:
            t.close()


def _proc(p, port, args, q):
    t = (Transport.listen("127.0.0.1", port, party=0, timeout=60) if p == 0 else
         Transport.connect("127.0.0.1", port, party=1, timeout=60))
    if args.profile and p == 0:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        ms = prof.runcall(party_loop, t, args.device, args.elements, args.kernels, args.rounds)
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    else:
        ms = party_loop(t, args.device, args.elements, args.kernels, args.rounds)
    q.put(ms)
    t.close()


def processes(args) -> float:
    from suf.runtime.processes import free_port

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=_proc, args=(p, port, args, q)) for p in (0, 1)]
    for pr in procs:
        pr.start()
    res = [q.get(timeout=300) for _ in procs]
    for pr in procs:
        pr.join()
    return max(res)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--elements", type=int, default=128 * 1536)
    ap.add_argument("--kernels", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--profile", action="store_true", help="cProfile party 0 of the processes")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    stamp = provenance.stamp()  # the tree that runs, read before it runs
    res = {"benchmark": "ms per exchange: kernels + pack + swap + unpack, both parties on one "
                        "device",
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           **stamp,
           "command": "python " + " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
           "machine": provenance.machine(args.device), "elements": args.elements,
           "kernels": args.kernels, "rounds": args.rounds, "bits": BITS,
           "ms_per_exchange": {"threads": threads(args), "processes": processes(args)}}
    print(json.dumps(res["ms_per_exchange"]))
    if args.out:
        args.out.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
