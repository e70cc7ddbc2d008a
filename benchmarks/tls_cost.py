"""What TLS 1.3 (mutual authentication, suf.net.tls) costs on the party connection, on the CPU:

1. connection setup: connect + accept + TLS handshake + suf handshake, with and without TLS;
2. one exchange (both parties send n bytes while receiving n), for a few sizes, two processes
   over TCP on localhost, with and without TLS (median over rounds);
3. optionally (--model), one `suf run`-style inference (suf.runtime.run, two processes), with and
   without TLS: the parties' online seconds and the whole run's wall time.

    python benchmarks/tls_cost.py --out benchmarks/results/tls_cost_cpu.json --model bert-tiny

Both parties share this machine's cores, so these are upper bounds on TLS's CPU cost and lower
bounds on network effects (loopback has no latency).
"""
from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

import provenance

from suf.net.transport import Transport
from suf.runtime.certs import make_certs, party_tls
from suf.runtime.processes import free_port

SIZES = (1 << 10, 1 << 16, 1 << 20, 16 << 20)


def _rounds(n: int) -> int:
    return max(10, min(500, (256 << 20) // (8 * n)))


def _party(p: int, port: int, certs, sizes, q) -> None:
    tls = party_tls(certs, p) if certs else None
    t0 = time.perf_counter()
    t = (Transport.listen("127.0.0.1", port, party=0, timeout=60, tls=tls) if p == 0 else
         Transport.connect("127.0.0.1", port, party=1, timeout=60, tls=tls))
    setup_s = time.perf_counter() - t0
    out = {"setup_s": setup_s, "ms_per_exchange": {}}
    for n in sizes:
        buf = torch.randint(0, 256, (n,), dtype=torch.uint8)
        for _ in range(3):
            t.exchange(buf)
        t.sync()
        times = []
        for _ in range(_rounds(n)):
            s = time.perf_counter()
            t.exchange(buf)
            times.append(time.perf_counter() - s)
        out["ms_per_exchange"][str(n)] = statistics.median(times) * 1e3
    out["tls"] = t.tls
    # after the TCP connection: the TLS handshake (if any) and suf's handshake, this party's view
    out["handshake_ms"] = t.stats.total("setup").comm_s * 1e3
    t.close()
    q.put((p, out))


def exchanges(certs, sizes) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=_party, args=(p, port, certs, sizes, q)) for p in (1, 0)]
    for pr in procs:
        pr.start()
    res = dict(q.get(timeout=600) for _ in procs)
    for pr in procs:
        pr.join()
    return {"channel": res[0]["tls"] or "plaintext",
            # TCP connected -> TLS handshake + suf handshake done (P1's view; P0's includes
            # waiting for P1's first bytes)
            "handshake_ms": res[1]["handshake_ms"],
            "ms_per_exchange": {n: max(res[0]["ms_per_exchange"][n], res[1]["ms_per_exchange"][n])
                                for n in res[0]["ms_per_exchange"]}}


def inference(model_name: str, ids, tls) -> dict:
    from suf.models import load_model
    from suf.runtime import ModelJob, run

    model = load_model(model_name)
    batch = model.batch([ids], None)
    job = ModelJob(model, *batch.shape, name=model_name)
    t0 = time.perf_counter()
    res = run(job, batch, timeout=600, tls=tls)
    wall = time.perf_counter() - t0
    assert res["equal"]
    p0 = res["parties"][0]["stats"]["phases"]
    return {"channel": res["parties"][0]["channel"], "wall_s": wall,
            "online_s": [p["online_s"] for p in res["parties"]],
            "online_bytes_p0": p0["online"]["bytes_sent"] + p0["online"]["bytes_recv"],
            "online_exchanges": p0["online"]["exchanges"],
            "setup_bytes_p0": p0["setup"]["bytes_sent"] + p0["setup"]["bytes_recv"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="also time one inference (e.g. bert-tiny)")
    ap.add_argument("--ids", default="[101, 2023, 2003, 1037, 3231, 1997, 1996, 102]")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    stamp = provenance.stamp()
    res = {"benchmark": "the cost of TLS 1.3 (mutual auth) on the party connection, CPU, "
                        "two processes on localhost",
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           **stamp,
           "command": "python " + " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
           "machine": provenance.machine("cpu"),
           "load_average_before": list(os.getloadavg()),
           "exchange_rounds": {str(n): _rounds(n) for n in SIZES}}
    with tempfile.TemporaryDirectory() as tmp:
        certs = make_certs(Path(tmp) / "certs")["ca.pem"].parent
        res["exchange"] = {"plaintext": exchanges(None, SIZES), "tls": exchanges(certs, SIZES)}
        print(json.dumps(res["exchange"], indent=1))
        if args.model:
            ids = json.loads(args.ids)
            res["inference"] = {"model": args.model, "ids": ids,
                                "plaintext": inference(args.model, ids, None),
                                "tls": inference(args.model, ids, certs)}
            print(json.dumps(res["inference"], indent=1))
    res["not_run"] = ("the GPU measurement (bert-base, L=128, on an H200) was not run in this "
                      "session: no device time was left")
    res["load_average_after"] = list(os.getloadavg())
    if args.out:
        args.out.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
