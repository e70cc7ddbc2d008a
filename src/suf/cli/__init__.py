"""The `suf` command line.

  suf run --model M --text T    secure inference: dealer, then P0 and P1 as processes on localhost
  suf plan --model M --seq L    predicted comm, exchanges, key bytes and memory, without running
  suf deal --model M --seq L    the dealer alone: deployment and key files into a directory
  suf serve --party 0|1 ...     one party (P0 listens and loads the weights; P1 connects with input)
  suf gate GATE [options]       one gate between two processes over TCP, with its cost report
  suf demo                      a few gates between two processes (CPU)
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from suf.runtime.gate_specs import GATES

DEFAULT_TEXT = "Secure inference keeps secrets."


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
    from suf.runtime.gate_runner import run_gate

    result = run_gate(args.gate, bits=args.bits, count=args.count, shift=args.shift,
                      device=args.device, timeout=args.timeout)
    print(_report(result, args.json))
    return 0 if result["equal"] else 1


def cmd_demo(args) -> int:
    from suf.runtime.gate_runner import run_gate

    ok = True
    for gate, shift in (("trfloor", 12), ("relu", 12), ("lut", 8), ("matmul", 12)):
        result = run_gate(gate, bits=50, count=args.count, shift=shift, device=args.device)
        print(_report(result, False))
        ok &= result["equal"]
    print("all outputs equal to the cleartext reference" if ok else "MISMATCH")
    return 0 if ok else 1


def cmd_serve_gate(args) -> int:
    from suf.runtime.gate_runner import serve

    host, port = args.peer.rsplit(":", 1)
    serve(args.party, host, int(port), args.keys, json.loads(args.spec),
          bytes.fromhex(args.input_seed), args.out, args.device, args.timeout)
    return 0


def _console():
    from rich.console import Console

    return Console(width=110)


def _cost_tables(result: dict):
    """Per layer and gate (party 0's scopes), then totals, keys and times."""
    from rich.table import Table

    t = Table(title="online cost per layer and gate (party 0; bytes both directions)")
    for c in ("layer", "gate", "bytes", "exchanges", "time s"):
        t.add_column(c, justify="left" if c in ("layer", "gate") else "right")
    for sc in result["parties"][0]["stats"]["scopes"]:
        if sc["depth"] != 1 or sc["phase"] != "online":
            continue
        tot = sc["total"]
        t.add_row("-" if sc["layer"] is None else str(sc["layer"]), sc["op"] or "-",
                  f"{tot['bytes_sent'] + tot['bytes_recv']:,}", f"{tot['exchanges']:,}",
                  f"{sc['wall_s']:.3f}")
    p0 = result["parties"][0]["stats"]["phases"]
    d = result["dealing"]
    t.add_section()
    t.add_row("total", "online", f"{p0['online']['bytes_sent'] + p0['online']['bytes_recv']:,}",
              f"{p0['online']['exchanges']:,}",
              ", ".join(f"{p['online_s']:.3f}" for p in result["parties"]))
    t.add_row("total", "setup (handshake, weights, ready)",
              f"{p0['setup']['bytes_sent'] + p0['setup']['bytes_recv']:,}",
              f"{p0['setup']['exchanges']:,}", "")
    t.add_row("keys", "P0 / P1 payload bytes",
              f"{d['key_payload_bytes'][0]:,} / {d['key_payload_bytes'][1]:,}", "",
              f"keygen {d['keygen_s']:.3f}")
    if any(p.get("keys_in", "file") != "file" for p in result["parties"]):
        t.add_row("keys", "loaded into " + " / ".join(p["keys_in"] for p in result["parties"]),
                  "", "", ", ".join(f"{p['key_load_s']:.3f}" for p in result["parties"]))
    return t


def cmd_run(args) -> int:
    from suf.runtime.session import run

    if args.text is not None and args.ids is not None:
        raise SystemExit("give either --text or --ids, not both")
    if args.text is None and args.ids is None:
        if args.model not in ("all-MiniLM-L6-v2",) and not args.model.startswith("bert"):
            raise SystemExit(f"{args.model} takes token ids: pass --ids")
        args.text = [DEFAULT_TEXT]
    texts = args.text if args.text is not None else None
    ids = json.loads(args.ids) if args.ids is not None else None
    if ids is not None and ids and isinstance(ids[0], int):
        ids = [ids]
    res = run(args.model, texts=texts, ids=ids, length=args.seq, batch=args.batch,
              device=args.device, bits=args.bits, timeout=args.timeout, work_dir=args.key_dir)
    if args.json:
        out = {k: v for k, v in res.items() if k not in ("output", "reference", "float",
                                                         "embedding", "float_embedding")}
        for k in ("output", "reference", "float", "embedding", "float_embedding"):
            if k in res:
                out[k] = res[k].tolist()
        print(json.dumps(out))
        return 0 if res["equal"] else 1
    import torch

    con = _console()
    con.print(f"[bold]{res['model']}[/bold]  n={res['bits']}  batch={res['batch']}  "
              f"seq={res['length']}  device={args.device}")
    def row(t):
        return "  ".join(f"{v:+.4f}" for v in t[0, 0, :6].tolist()) + "  ..."

    con.print("secure output (hidden state of token 0):", row(res["output"]))
    con.print("reference (cleartext fixed point):      ", row(res["reference"]))
    con.print("float (plain PyTorch):                  ", row(res["float"]))
    diff = (res["output"] - res["float"]).abs().max().item()
    con.print(f"secure == reference bit for bit: [bold]{res['equal']}[/bold];  "
              f"max |secure - float| = {diff:.4g}")
    if "embedding" in res:
        cos = torch.nn.functional.cosine_similarity(res["embedding"], res["float_embedding"], -1)
        con.print("sentence embedding (mean pooling) cosine vs float:", cos)
    con.print(_cost_tables(res))
    return 0 if res["equal"] else 1


def cmd_plan(args) -> int:
    from suf.runtime.plan import plan, spec_for

    if args.nonlinear != "sigma":
        raise SystemExit("only --nonlinear sigma exists for now")
    p = plan(spec_for(args.model, args.bits), args.seq, args.batch, args.key_dir)
    if args.json:
        print(json.dumps(p, indent=1))
    else:
        from rich.table import Table

        t = Table(title=f"suf plan {p['model']} seq={p['seq']} batch={p['batch']} n={p['bits']}")
        t.add_column("figure")
        t.add_column("ours", justify="right")
        t.add_column("SIGMA's graph (blocks only)", justify="right")
        s = p["sigma_scope"]
        t.add_row("online comm GiB (both directions)", f"{p['comm_bytes'] / 2**30:.3f}",
                  f"{s['comm_bytes'] / 2**30:.3f}")
        t.add_row("exchanges", f"{p['exchanges']:,}", f"{s['exchanges']:,}")
        t.add_row("key GiB P0", f"{p['key_bytes_p0'] / 2**30:.3f}", f"{s['key_bytes'] / 2**30:.3f}")
        t.add_row("key GiB P1", f"{p['key_bytes_p1'] / 2**30:.3f}", "")
        t.add_row("  of which rsqrt (key GiB / exchanges)",
                  f"{p['rsqrt']['rsqrt_key_bytes'] / 2**30:.3f} / {p['rsqrt']['rsqrt_exchanges']}",
                  f"{s['rsqrt_key_bytes'] / 2**30:.3f} / {s['rsqrt_exchanges']}")
        t.add_row("peak memory per party GiB (estimate)",
                  f"{p['peak_memory_bytes_per_party_estimate'] / 2**30:.2f}", "")
        _console().print(t)
    for w in p["warnings"]:
        print(f"does not fit: {w}", file=sys.stderr)
    return 2 if p["warnings"] else 0


def cmd_deal(args) -> int:
    from suf.models import load_model
    from suf.runtime.session import deal

    info = deal(load_model(args.model, bits=args.bits), args.seq, args.batch, args.out,
                args.device)
    print(json.dumps(info, indent=1))
    return 0


def cmd_serve(args) -> int:
    from suf.models import load_model
    from suf.runtime.session import serve

    model = load_model(args.model, bits=args.bits)
    texts = args.text
    ids = json.loads(args.ids) if args.ids else None
    res = serve(args.party, model, args.keys, args.peer, deployment=args.deployment,
                texts=texts, ids=ids, device=args.device, timeout=args.timeout)
    if args.result:
        Path(args.result).write_text(json.dumps(res))
    elif args.party == 1:
        import torch

        y = model.decode(torch.tensor(res["output"]))
        print(json.dumps({"output": y.tolist(), "online_s": res["online_s"]}))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="suf", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("run", help="secure inference: dealer, then P0 and P1 on localhost")
    r.add_argument("--model", default="all-MiniLM-L6-v2",
                   help="all-MiniLM-L6-v2 | bert-tiny | bert-base | bert-large | gpt2 | a path")
    r.add_argument("--text", action="append", help="input text (repeat for a batch)")
    r.add_argument("--ids", help="token ids as JSON: [1, 2, 3] or [[...], [...]] (gpt2)")
    r.add_argument("--seq", type=int, default=None, help="sequence length L (pad to it)")
    r.add_argument("--batch", type=int, default=1)
    r.add_argument("--device", default="cpu")
    r.add_argument("--bits", type=int, default=None)
    r.add_argument("--nonlinear", default="sigma", choices=("sigma",))
    r.add_argument("--timeout", type=float, default=600.0)
    r.add_argument("--key-dir", default=None,
                   help="where the one-time key files go (default: the system's temp directory; "
                        "/dev/shm keeps them in RAM)")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_run)

    pl = sub.add_parser("plan", help="predict an inference's costs without running it")
    pl.add_argument("--model", required=True)
    pl.add_argument("--seq", type=int, required=True)
    pl.add_argument("--batch", type=int, default=1)
    pl.add_argument("--bits", type=int, default=None)
    pl.add_argument("--nonlinear", default="sigma")
    pl.add_argument("--key-dir", default=".", help="where key files would go (free-space check)")
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(func=cmd_plan)

    de = sub.add_parser("deal", help="the dealer: deployment and key files for one inference")
    de.add_argument("--model", required=True)
    de.add_argument("--seq", type=int, required=True)
    de.add_argument("--batch", type=int, default=1)
    de.add_argument("--bits", type=int, default=None)
    de.add_argument("--device", default="cpu")
    de.add_argument("--out", required=True, help="directory for the files")
    de.set_defaults(func=cmd_deal)

    sv = sub.add_parser("serve", help="one party: P0 listens and loads the weights, P1 connects")
    sv.add_argument("--party", type=int, choices=(0, 1), required=True)
    sv.add_argument("--peer", required=True, help="HOST:PORT")
    sv.add_argument("--keys", required=True)
    sv.add_argument("--model", required=True)
    sv.add_argument("--bits", type=int, default=None)
    sv.add_argument("--deployment", help="P0: the deployment file from `suf deal`")
    sv.add_argument("--text", action="append", help="P1: input text(s)")
    sv.add_argument("--ids", help="P1: token ids as JSON [[...], ...]")
    sv.add_argument("--length", type=int, default=None)
    sv.add_argument("--device", default="cpu")
    sv.add_argument("--timeout", type=float, default=60.0)
    sv.add_argument("--result", help="write the result JSON here")
    sv.set_defaults(func=cmd_serve)

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
