"""Sigma mode and SUF mode of one model in ONE run (dealer + P0 + P1 in one process, in-memory keys,
a local socket pair), each output checked against the reference bit for bit, plus the GPU time of
SUF mode's windowed lookups at the model's shapes.

    PYTHONPATH=src:benchmarks python benchmarks/suf_vs_sigma.py bert-base --length 128 --device cuda

Order: one cold run per mode (Triton compiling inside the clock: reported on its own line, not
counted), then --reps warm runs per mode, alternating sigma, suf, sigma, suf.  The windowed
lookups (suf.fss.window.eval_window: nExp's 2^16-entry window over Z_2^(n-10), GeLU's 2^9 over
Z_2^(n-17), the inverse's whole Z_2^p) are timed alone on the model's element counts, after a
warm-up call.  Writes benchmarks/results/suf_vs_sigma_<model>_L<L>_B<B>_<device>.json with the
tree that ran (benchmarks/provenance.py).
"""
from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import time
from pathlib import Path

import torch

import provenance

from suf.compiler import library
from suf.fss import compare, window
from suf.models import load_model
from suf.prg import Stream
from suf.runtime import run_secure

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks/results"
MODES = ("sigma", "suf")


def one_run(model, batch, want, device: str, mode: str) -> dict:
    t0 = time.perf_counter()
    run = run_secure(model, batch, device=device, nonlinear=mode)
    total = time.perf_counter() - t0
    p0 = run.stats[0].total("online")
    return {"mode": mode, "equal_to_reference": bool(torch.equal(run.output.cpu(), want)),
            "keygen_s": run.deal.keygen_s, "online_s": max(run.online_s), "total_s": total,
            "bytes_sent_p0": p0.bytes_sent, "comm_bytes": p0.bytes_sent + p0.bytes_recv,
            "exchanges": p0.exchanges, "key_bytes": run.deal.key_bytes}


def window_times(model, length: int, batch: int, device: str) -> list:
    """eval_window alone on the model's shapes: nExp, GeLU, inverse (one party's keys)."""
    spec, n = model.spec, model.spec.bits
    heads = spec.heads
    causal = spec.family == "gpt2"
    scores = batch * heads * (length * (length + 1) // 2 if causal else length * length)
    cases = [("suf_nexp", library.nexp_descriptor(n), scores),
             ("suf_gelu", library.gelu_descriptor(n), batch * length * spec.d_ff),
             ("suf_inverse", library.inverse_descriptor(n, length), batch * heads * length)]
    out = []
    stream = Stream(b"\x31" * 32, device=torch.device(device))
    for name, desc, count in cases:
        w = desc.window
        alphas = stream.ring(count, desc.bits)
        k0, _ = compare.keygen(alphas, desc.bits, stream)
        start = stream.ring(count, desc.bits)
        weights = torch.tensor(w.table, dtype=torch.int64, device=device)
        window.eval_window(k0, start, w.k, weights)  # warm-up (compiles)
        times = []
        for _ in range(3):
            torch.cuda.synchronize() if device.startswith("cuda") else None
            t0 = time.perf_counter()
            window.eval_window(k0, start, w.k, weights)
            torch.cuda.synchronize() if device.startswith("cuda") else None
            times.append(time.perf_counter() - t0)
        out.append({"gate": name, "elements": count, "ring_bits": desc.bits,
                    "window_bits": w.k, "seconds_median": statistics.median(times),
                    "seconds": times, "prg_calls_per_element": window.prg_calls(desc.bits, w.k)})
        print(f"window {name}: {count} elements, 2^{w.k} window over Z_2^{desc.bits}: "
              f"{statistics.median(times) * 1e3:.1f} ms")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--length", type=int, default=128)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--no-windows", action="store_true", help="skip the window timings")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    stamp = provenance.stamp()  # the tree that runs, read before it runs

    model = load_model(args.model)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(1, model.spec.vocab, (args.batch, args.length), generator=gen)
    batch = model.batch(ids, args.length)
    want = model.reference(batch)
    if not torch.equal(model.reference(batch, nonlinear="suf"), want):
        raise SystemExit("SUF mode's reference differs from Sigma mode's")

    cold = {}
    for mode in MODES:
        r = one_run(model, batch, want, args.device, mode)
        cold[mode] = r
        print(f"cold {mode}: online {r['online_s']:.2f} s (compiling inside the clock), "
              f"equal {r['equal_to_reference']}")
    warm = []
    for _ in range(args.reps):
        for mode in MODES:
            r = one_run(model, batch, want, args.device, mode)
            warm.append(r)
            print(f"warm {mode}: keygen {r['keygen_s']:.2f} s, online {r['online_s']:.2f} s, "
                  f"{r['exchanges']} exchanges, {r['comm_bytes'] / 2**30:.3f} GiB comm, "
                  f"key {r['key_bytes'][0] / 2**30:.2f} GiB, equal {r['equal_to_reference']}")
    windows = [] if args.no_windows else window_times(model, args.length, args.batch,
                                                      args.device)
    res = {
        "benchmark": "Sigma mode and SUF mode in one run, dealer + P0 + P1 in one process "
                     "(suf.runtime.run_secure), then SUF's windowed lookups alone",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **stamp,
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
        "machine": provenance.machine(args.device),
        "model": args.model, "length": args.length, "batch": args.batch, "device": args.device,
        "cold": cold, "warm": warm, "windows": windows,
        "summary": {mode: {"online_s_median": statistics.median(
            r["online_s"] for r in warm if r["mode"] == mode),
            "all_equal": all(r["equal_to_reference"] for r in warm + [cold[mode]]
                             if r["mode"] == mode)} for mode in MODES},
    }
    out = args.out or RESULTS / (f"suf_vs_sigma_{args.model}_L{args.length}_B{args.batch}_"
                                 f"{args.device.split(':')[0]}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {out}")
    if not all(s["all_equal"] for s in res["summary"].values()):
        raise SystemExit("a secure output differs from the reference")


if __name__ == "__main__":
    main()
