"""What the commands print: rich tables for people, JSON for programs."""
from __future__ import annotations

import json
import sys

TENSORS = ("output", "reference", "float", "embedding", "float_embedding")


def _console(width: int = 110):
    from rich.console import Console

    return Console(width=width)


def _table(title: str, columns, right_from: int = 1):
    from rich.table import Table

    t = Table(title=title)
    for i, c in enumerate(columns):
        t.add_column(c, justify="right" if i >= right_from else "left")
    return t


def print_json(obj, indent: int | None = None) -> None:
    print(json.dumps(obj, indent=indent))


# -- suf gate ------------------------------------------------------------------------------------
def gate_summary(result: dict) -> dict:
    """The measured cost report of one gate run (`suf.runtime.run` of a GateJob), with the
    gate's predicted cost (the fold of its declared layout, suf.mpc.gate.cost)."""
    online = [r["stats"]["phases"]["online"] for r in result["parties"]]
    setup = [r["stats"]["phases"]["setup"] for r in result["parties"]]
    d = result["dealing"]
    return {
        "gate": result["gate"], "equal_to_reference": result["equal"],
        "elements": int(result["output"].numel()),
        "online": {"bytes_sent_p0": online[0]["bytes_sent"],
                   "bytes_sent_p1": online[1]["bytes_sent"],
                   "comm_bytes_both_directions": online[0]["bytes_sent"] + online[0]["bytes_recv"],
                   "exchanges": online[0]["exchanges"], "syncs": online[0]["syncs"],
                   "time_s": [r["online_s"] for r in result["parties"]]},
        "setup": {"bytes_sent_p0": setup[0]["bytes_sent"], "bytes_sent_p1": setup[1]["bytes_sent"]},
        "keys": {"payload_bytes_p0": d["gate_key_bytes"][0],  # the gate's keys, masks apart
                 "payload_bytes_p1": d["gate_key_bytes"][1],
                 "file_bytes_p0": d["key_file_bytes"][0],
                 "sigma_header_bytes": d["sigma_header_bytes"], "keygen_s": d["keygen_s"]},
        "predicted": result["predicted"],
    }


def gate_report(result: dict, as_json: bool) -> None:
    s = gate_summary(result)
    if as_json:
        print_json(s, indent=2)
        return
    p = s["predicted"]
    predicted = {("online", "bytes_sent_p0"): p["bytes_sent"],
                 ("online", "bytes_sent_p1"): p["bytes_sent"],
                 ("online", "comm_bytes_both_directions"): 2 * p["bytes_sent"],
                 ("online", "exchanges"): p["exchanges"],
                 ("keys", "payload_bytes_p0"): p["key_bytes"],
                 ("keys", "payload_bytes_p1"): p["key_bytes"],
                 ("keys", "sigma_header_bytes"): p["sigma_header_bytes"]}
    t = _table(f"suf gate {s['gate']['gate']} — {s['elements']} elements",
               ("figure", "measured", "predicted (layout)"))
    t.add_row("equal to reference (bit for bit)", str(s["equal_to_reference"]), "")
    for section in ("online", "setup", "keys"):
        for k, v in s[section].items():
            if k == "time_s":
                shown = ", ".join(f"{x:.4f}" for x in v)
            else:
                shown = f"{v:.3f}" if k == "keygen_s" else f"{v:,}"
            want = predicted.get((section, k))
            t.add_row(f"{section} {k}", shown, "" if want is None else f"{want:,}")
    _console(100).print(t)


# -- suf run -------------------------------------------------------------------------------------
def run_json(result: dict) -> None:
    out = {k: v for k, v in result.items() if k not in TENSORS}
    for k in TENSORS:
        if k in result:
            out[k] = result[k].tolist()
    print_json(out)


def run_report(result: dict, device: str) -> None:
    con = _console()
    con.print(f"[bold]{result['model']}[/bold]  n={result['bits']}  batch={result['batch']}  "
              f"seq={result['length']}  nonlinear={result['nonlinear']}  "
              f"truncation={result['truncation']}  device={device}")

    def row(t):
        return "  ".join(f"{v:+.4f}" for v in t[0, 0, :6].tolist()) + "  ..."

    con.print("secure output (hidden state of token 0):", row(result["output"]))
    con.print("reference (cleartext fixed point):      ", row(result["reference"]))
    con.print("float (plain PyTorch):                  ", row(result["float"]))
    diff = (result["output"] - result["float"]).abs().max().item()
    con.print(f"secure == reference bit for bit: [bold]{result['equal']}[/bold];  "
              f"max |secure - float| = {diff:.4g}")
    ch = result["parties"][0].get("channel", "plaintext")
    con.print("channel P0 <-> P1: " + (f"{ch['version']} {ch['cipher']}, mutual authentication"
                                       if isinstance(ch, dict) else ch))
    if "embedding" in result:
        import torch

        cos = torch.nn.functional.cosine_similarity(result["embedding"],
                                                    result["float_embedding"], -1)
        con.print("sentence embedding (mean pooling) cosine vs float:", cos)
    con.print(_cost_table(result))


def _cost_table(result: dict):
    """Per layer and gate (party 0's scopes), then totals, keys and times."""
    t = _table("online cost per layer and gate (party 0; bytes both directions)",
               ("layer", "gate", "bytes", "exchanges", "time s"), right_from=2)
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
    if any(p.get("online") == "cuda-graphs" for p in result["parties"]):
        t.add_row("online", "CUDA graphs recorded in setup (P0 / P1)",
                  " / ".join(str(p.get("graphs", "-")) for p in result["parties"]), "",
                  ", ".join(f"{p.get('record_s', 0.0):.3f}" for p in result["parties"]))
    elif any(p.get("why", "").startswith("recording failed") for p in result["parties"]):
        t.add_row("online", "eager: " + result["parties"][0].get("why", ""), "", "", "")
    if any(p["keys_in"] != "file" for p in result["parties"]):
        t.add_row("keys", "loaded into " + " / ".join(p["keys_in"] for p in result["parties"]),
                  "", "", ", ".join(f"{p['key_load_s']:.3f}" for p in result["parties"]))
    return t


# -- suf plan ------------------------------------------------------------------------------------
def plan_report(p: dict, as_json: bool) -> None:
    if as_json:
        print_json(p, indent=1)
    else:
        t = _table(f"suf plan {p['model']} seq={p['seq']} batch={p['batch']} n={p['bits']} "
                   f"nonlinear={p['nonlinear']} truncation={p['truncation']}",
                   ("figure", "ours", "SIGMA's graph (blocks only)"))
        s = p["sigma_scope"]
        t.add_row("online comm GiB (both directions)", f"{p['comm_bytes'] / 2**30:.3f}",
                  f"{s['comm_bytes'] / 2**30:.3f}")
        t.add_row("exchanges", f"{p['exchanges']:,}", f"{s['exchanges']:,}")
        t.add_row("key GiB P0", f"{p['key_bytes_p0'] / 2**30:.3f}",
                  f"{s['key_bytes'] / 2**30:.3f}")
        t.add_row("key GiB P1", f"{p['key_bytes_p1'] / 2**30:.3f}", "")
        t.add_row("  of which rsqrt (key GiB / exchanges)",
                  f"{p['rsqrt']['rsqrt_key_bytes'] / 2**30:.3f} / {p['rsqrt']['rsqrt_exchanges']}",
                  f"{s['rsqrt_key_bytes'] / 2**30:.3f} / {s['rsqrt_exchanges']}")
        t.add_row("peak memory per party GiB (estimate)",
                  f"{p['peak_memory_bytes_per_party_estimate'] / 2**30:.2f}", "")
        _console().print(t)
    for w in p["warnings"]:
        print(f"does not fit: {w}", file=sys.stderr)
