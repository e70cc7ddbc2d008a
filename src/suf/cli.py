"""The `suf` command line.

  suf demo                      run a few gates between two processes on localhost (CPU)
  suf gate GATE [options]       deal one gate, run P0 and P1 as processes over TCP, print the cost
  suf serve-gate ...            one party of `suf gate` (started by it; usable on two machines)
"""
from __future__ import annotations

import argparse
import json
import sys

from suf.gates import GATES


def _report(result: dict, as_json: bool) -> str:
    from rich.console import Console
    from rich.table import Table

    online = [r["stats"]["phases"]["online"] for r in result["parties"]]
    setup = [r["stats"]["phases"]["setup"] for r in result["parties"]]
    d = result["dealing"]
    summary = {
        "gate": result["gate"], "equal_to_reference": result["equal"],
        "elements": int(result["output"].numel()),
        "online": {"bytes_sent_p0": online[0]["bytes_sent"], "bytes_sent_p1": online[1]["bytes_sent"],
                   "comm_bytes_both_directions": online[0]["bytes_sent"] + online[0]["bytes_recv"],
                   "exchanges": online[0]["exchanges"], "syncs": online[0]["syncs"],
                   "time_s": [r["online_s"] for r in result["parties"]]},
        "setup": {"bytes_sent_p0": setup[0]["bytes_sent"], "bytes_sent_p1": setup[1]["bytes_sent"]},
        "keys": {"payload_bytes_p0": d["key_payload_bytes"][0],
                 "payload_bytes_p1": d["key_payload_bytes"][1],
                 "file_bytes_p0": d["key_file_bytes"][0],
                 "sigma_header_bytes": d["sigma_header_bytes"], "keygen_s": d["keygen_s"]},
    }
    if as_json:
        return json.dumps(summary, indent=2)
    t = Table(title=f"suf gate {result['gate']['gate']} — {summary['elements']} elements")
    t.add_column("figure")
    t.add_column("value", justify="right")
    t.add_row("equal to reference (bit for bit)", str(result["equal"]))
    for k, v in summary["online"].items():
        t.add_row(f"online {k}", ", ".join(f"{x:.4f}" for x in v) if k == "time_s" else f"{v:,}")
    for k, v in summary["setup"].items():
        t.add_row(f"setup {k}", f"{v:,}")
    for k, v in summary["keys"].items():
        t.add_row(f"keys {k}", f"{v:.3f}" if k == "keygen_s" else f"{v:,}")
    console = Console(width=100)
    with console.capture() as cap:
        console.print(t)
    return cap.get()


def cmd_gate(args) -> int:
    from suf.runner import run_gate

    result = run_gate(args.gate, bits=args.bits, count=args.count, shift=args.shift,
                      device=args.device, timeout=args.timeout)
    print(_report(result, args.json))
    return 0 if result["equal"] else 1


def cmd_demo(args) -> int:
    from suf.runner import run_gate

    ok = True
    for gate, shift in (("trfloor", 12), ("relu", 12), ("lut", 8), ("matmul", 12)):
        result = run_gate(gate, bits=50, count=args.count, shift=shift, device=args.device)
        print(_report(result, False))
        ok &= result["equal"]
    print("all outputs equal to the cleartext reference" if ok else "MISMATCH")
    return 0 if ok else 1


def cmd_serve_gate(args) -> int:
    from suf.runner import serve

    host, port = args.peer.rsplit(":", 1)
    serve(args.party, host, int(port), args.keys, json.loads(args.spec),
          bytes.fromhex(args.input_seed), args.out, args.device, args.timeout)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="suf", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    g = sub.add_parser("gate", help="run one gate between two processes on localhost")
    g.add_argument("gate", choices=GATES)
    g.add_argument("--bits", type=int, default=50, help="ring bitwidth n")
    g.add_argument("--count", type=int, default=1024, help="number of elements")
    g.add_argument("--shift", type=int, default=12, help="truncation shift / LUT index bits")
    g.add_argument("--device", default="cpu")
    g.add_argument("--timeout", type=float, default=60.0)
    g.add_argument("--json", action="store_true", help="print the cost report as JSON")
    g.set_defaults(func=cmd_gate)

    d = sub.add_parser("demo", help="a few gates between two processes, with cost reports")
    d.add_argument("--count", type=int, default=256)
    d.add_argument("--device", default="cpu")
    d.set_defaults(func=cmd_demo)

    s = sub.add_parser("serve-gate", help="one party of `suf gate`")
    s.add_argument("--party", type=int, choices=(0, 1), required=True)
    s.add_argument("--peer", required=True, help="HOST:PORT (P0 listens there, P1 connects)")
    s.add_argument("--keys", required=True)
    s.add_argument("--spec", required=True)
    s.add_argument("--input-seed", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--device", default="cpu")
    s.add_argument("--timeout", type=float, default=60.0)
    s.set_defaults(func=cmd_serve_gate)

    args = ap.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
