"""`suf bench`'s report: Markdown laid out like the seed's tables (seed_results.md), the SUF-vs-Sigma
delta tables, the seed's own figures beside ours, a per-gate breakdown, a LAN/WAN projection and
matplotlib plots, all from the run records (grid.py) and nothing else.
"""
from __future__ import annotations

from pathlib import Path

from suf.bench.seed import SOURCE, seed_figures

GIB = 2 ** 30
# (name, bits per second, round-trip seconds) of the projected links
LINKS = (("LAN 1 Gbit/s, 0.5 ms", 1e9, 0.5e-3), ("WAN 400 Mbit/s, 4 ms", 400e6, 4e-3))
MODES = ("sigma", "suf")
LABEL = {"sigma": "Sigma", "suf": "SUF"}


def _ok(records) -> list[dict]:
    return [r for r in records if r.get("status") == "ok"]


def _index(records) -> dict:
    return {(r["config"]["model"], r["config"]["seq"], r["config"]["batch"],
             r["config"]["nonlinear"]): r for r in _ok(records)}


def _f(v, digits: int = 3) -> str:
    return "—" if v is None else f"{v:,.{digits}f}"


def projection(r: dict, bits_per_s: float, rtt_s: float) -> float:
    """compute + bytes / bandwidth + exchanges × RTT, where compute = online − P0's time inside
    the transport, and bytes = the larger direction of P0's online traffic (full duplex)."""
    compute = max(r["online_s"]) - r["comm_s"][0]
    wire = 8 * max(r["bytes_sent_p0"], r["bytes_recv_p0"]) / bits_per_s
    return compute + wire + r["rounds"] * rtt_s


def _sweep(idx, model: str, seqs, batch: int, modes) -> list[str]:
    head = ["Seq"]
    for col in ("online ms", "tokens/s", "comm GB", "keygen s", "key GB", "rounds"):
        head += [f"{LABEL[m]} {col}" for m in modes]
    out = ["| " + " | ".join(head + ["secure == reference"]) + " |",
           "|" + "---:|" * len(head) + "---|"]
    for seq in seqs:
        rs = [idx.get((model, seq, batch, m)) for m in modes]
        if not any(rs):
            continue
        cells = [str(seq)]
        for get, d in ((lambda r: r["online_ms"], 1), (lambda r: r["tokens_per_s"], 1),
                       (lambda r: r["comm_bytes"] / GIB, 3), (lambda r: r["keygen_s"], 2),
                       (lambda r: r["key_bytes"][0] / GIB, 3), (lambda r: r["rounds"], 0)):
            cells += [_f(get(r), d) if r else "—" for r in rs]
        eq = ", ".join("yes" if r["equal_to_reference"] else "**NO**" for r in rs if r)
        out.append("| " + " | ".join(cells + [eq]) + " |")
    return out


def _delta(idx, model: str, rows, key_of) -> list[str]:
    out = ["| " + " | ".join(["", "SUF speedup (x)", "Latency reduction (%)",
                              "Comm reduction (GB)", "Comm reduction (%)"]) + " |",
           "|---:|---:|---:|---:|---:|"]
    for label, key in ((lbl, key_of(v)) for lbl, v in rows):
        s, u = idx.get(key + ("sigma",)), idx.get(key + ("suf",))
        if not (s and u):
            continue
        gb = (s["comm_bytes"] - u["comm_bytes"]) / GIB
        out.append(f"| {label} | {s['online_ms'] / u['online_ms']:.3f} | "
                   f"{100 * (1 - u['online_ms'] / s['online_ms']):.2f} | {gb:.3f} | "
                   f"{100 * gb * GIB / s['comm_bytes']:.2f} |")
    return out if len(out) > 2 else []


def _seed_sweep(model: str, seqs, batch: int, modes) -> list[str]:
    rows = []
    for seq in seqs:
        figs = [seed_figures(model, seq, batch, m) for m in modes]
        if any(figs):
            cells = [str(seq)]
            for k, d in (("online_ms", 1), ("comm_gb", 3), ("keygen_s", 3), ("key_gb", 3),
                         ("rounds", 0)):
                cells += [_f(f.get(k), d) if f else "—" for f in figs]
            rows.append("| " + " | ".join(cells) + " |")
    if not rows:
        return []
    head = ["Seq"]
    for col in ("online ms", "comm GB", "keygen s", "key GB", "rounds"):
        head += [f"seed {LABEL[m]} {col}" for m in modes]
    return [f"The seed's figures for the same configurations ({SOURCE}):", "",
            "| " + " | ".join(head) + " |", "|" + "---:|" * len(head)] + rows


def _batch_table(idx, model: str, seq: int, batches, modes) -> list[str]:
    head = ["Batch"]
    for col in ("online ms/inf", "tokens/s", "comm GB/inf", "rounds"):
        head += [f"{LABEL[m]} {col}" for m in modes]
    head += [f"seed {LABEL[m]} online ms/inf" for m in modes]
    out = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for b in batches:
        rs = [idx.get((model, seq, b, m)) for m in modes]
        if not any(rs):
            continue
        cells = [str(b)]
        for get, d in ((lambda r: r["online_ms"] / b, 1), (lambda r: r["tokens_per_s"], 1),
                       (lambda r: r["comm_bytes"] / GIB / b, 3), (lambda r: r["rounds"], 0)):
            cells += [_f(get(r), d) if r else "—" for r in rs]
        for m in modes:
            f = seed_figures(model, seq, b, m)
            cells.append(_f(f["online_ms"], 1) if f else "—")
        out.append("| " + " | ".join(cells) + " |")
    return out


def _gates(idx, model: str, seq: int, modes) -> list[str]:
    rs = {m: idx.get((model, seq, 1, m)) for m in modes}
    rs = {m: r for m, r in rs.items() if r}
    if not rs:
        return []
    ops = sorted({op for r in rs.values() for op in r["gates"]},
                 key=lambda op: -max(r["gates"].get(op, {"wall_s": 0})["wall_s"]
                                     for r in rs.values()))
    head = ["gate (all layers)"]
    for m in rs:
        head += [f"{LABEL[m]} s", f"{LABEL[m]} MB", f"{LABEL[m]} exchanges"]
    out = [f"P0's wall time, bytes (both directions, 10^6) and exchanges per gate at seq {seq}, "
           f"batch 1 (wall time is the host's: with CUDA graphs a graph's GPU work is counted "
           f"where the party next waits for it):", "",
           "| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for op in ops:
        cells = [op]
        for r in rs.values():
            g = r["gates"].get(op)
            cells += ([f"{g['wall_s']:.3f}", f"{g['bytes'] / 1e6:.1f}", str(g["exchanges"])]
                      if g else ["—"] * 3)
        out.append("| " + " | ".join(cells) + " |")
    return out


def markdown(header: dict, records: list[dict]) -> str:
    """The report (seed_results.md's layout) from the bench header and its records."""
    idx = _index(records)
    ok = _ok(records)
    modes = [m for m in MODES if any(r["config"]["nonlinear"] == m for r in ok)] or list(MODES)
    models = list(dict.fromkeys(r["config"]["model"] for r in records))
    out = [f"# suf bench: {header['date'][:10]}", "",
           f"Command: `{header['command']}`  ",
           f"Machine: {header['machine']}  ",
           f"Tree: {header['tree']}  ",
           f"Device: {header['device']}; dealer, P0 and P1 as `suf run` runs them (key files, "
           f"two processes over TCP on localhost).", "",
           "Conventions: online ms = the slower party's online clock (after the ready sync, until "
           "its output is on the host); tokens/s = batch × seq / online; comm GB = the bytes P0's "
           "transport moved online, both directions, in GiB (2^30 bytes); rounds = exchanges P0's "
           "transport counted online; keygen s = the dealer's time for both parties' keys, "
           "writing both key files included; key GB = the dealer's key payload for one party, "
           "GiB.  Every figure is measured in this run.  The seed's figures are its own (its "
           "hardware, SIGMA's C++ build and the published SUF code), printed as it printed them.",
           ""]
    for model in models:
        seqs = sorted({r["config"]["seq"] for r in ok if r["config"]["model"] == model})
        batches = sorted({r["config"]["batch"] for r in ok if r["config"]["model"] == model})
        if not seqs:
            continue
        out += [f"## {model}: sequence sweep (batch=1)", ""]
        out += _sweep(idx, model, seqs, 1, modes) + [""]
        delta = _delta(idx, model, [(str(s), s) for s in seqs], lambda s: (model, s, 1))
        if delta:
            out += [f"### SUF vs Sigma ({model}, batch=1)", ""] + delta + [""]
        seed = _seed_sweep(model, seqs, 1, modes)
        if seed:
            out += seed + [""]
        if len(batches) > 1 or batches != [1]:
            out += [f"## {model}: batch scaling (seq={seqs[0]})", ""]
            out += _batch_table(idx, model, seqs[0], batches, modes) + [""]
            delta = _delta(idx, model, [(str(b), b) for b in batches],
                           lambda b: (model, seqs[0], b))
            if delta:
                out += [f"### SUF vs Sigma ({model}, seq={seqs[0]})", ""] + delta + [""]
        gates = _gates(idx, model, seqs[0], modes)
        if gates:
            out += [f"## {model}: per gate", ""] + gates + [""]
    if ok:
        out += ["## LAN / WAN projection", "",
                "projected = compute + bytes / bandwidth + rounds × RTT, where compute = online − "
                "P0's time inside the transport (here, on localhost) and bytes = the larger "
                "direction of P0's online traffic (both directions move at once).", "",
                "| configuration | online s (here) | compute s | "
                + " | ".join(name for name, _, _ in LINKS) + " |",
                "|---|---:|---:|" + "---:|" * len(LINKS)]
        for r in ok:
            compute = max(r["online_s"]) - r["comm_s"][0]
            out.append(f"| {r['key']} | {max(r['online_s']):.3f} | {compute:.3f} | "
                       + " | ".join(f"{projection(r, bw, rtt):.2f}" for _, bw, rtt in LINKS)
                       + " |")
        out.append("")
    skipped = [r for r in records if r.get("status") != "ok"]
    if skipped:
        out += ["## Not run", ""] + [f"- {r['key']}: {r['status']}: {r['why']}" for r in skipped]
        out.append("")
    return "\n".join(out)


def plots(records: list[dict], out: Path) -> list[Path]:
    """PNG plots: online time and comm against seq, tokens/s against batch, per-gate time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = _ok(records)
    models = list(dict.fromkeys(r["config"]["model"] for r in ok))
    written = []

    def save(fig, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out / name, dpi=120)
        plt.close(fig)
        written.append(out / name)

    def series(model, x_key, y, fixed):
        pts = {}
        for r in ok:
            c = r["config"]
            if c["model"] == model and all(c[k] == v for k, v in fixed.items()):
                pts.setdefault(c["nonlinear"], []).append((c[x_key], y(r)))
        return {m: sorted(p) for m, p in pts.items()}

    for name, x_key, y, ylabel, fixed in (
            ("online_vs_seq", "seq", lambda r: r["online_ms"], "online ms", {"batch": 1}),
            ("comm_vs_seq", "seq", lambda r: r["comm_bytes"] / GIB, "online comm GiB",
             {"batch": 1}),
            ("tokens_vs_batch", "batch", lambda r: r["tokens_per_s"], "tokens/s", None)):
        fig, axes = plt.subplots(1, max(len(models), 1), figsize=(5 * max(len(models), 1), 3.6),
                                 squeeze=False)
        for ax, model in zip(axes[0], models):
            seqs = sorted({r["config"]["seq"] for r in ok if r["config"]["model"] == model})
            for mode, pts in series(model, x_key, y, fixed or {"seq": seqs[0]}).items():
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o",
                        label=LABEL[mode])
            ax.set_title(model if fixed else f"{model}, seq {seqs[0]}")
            ax.set_xlabel(x_key)
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
            ax.legend()
        save(fig, f"{name}.png")
    for model in models:
        seq = min(r["config"]["seq"] for r in ok if r["config"]["model"] == model)
        rs = {r["config"]["nonlinear"]: r for r in ok if r["config"]["model"] == model
              and r["config"]["seq"] == seq and r["config"]["batch"] == 1}
        if not rs:
            continue
        ops = sorted({op for r in rs.values() for op in r["gates"]})
        fig, ax = plt.subplots(figsize=(7, 0.35 * len(ops) + 1.5))
        height = 0.8 / len(rs)
        for i, (mode, r) in enumerate(sorted(rs.items())):
            ax.barh([j + i * height for j in range(len(ops))],
                    [r["gates"].get(op, {"wall_s": 0})["wall_s"] for op in ops], height,
                    label=LABEL[mode])
        ax.set_yticks([j + height * (len(rs) - 1) / 2 for j in range(len(ops))], ops)
        ax.set_xlabel("P0 wall seconds, all layers")
        ax.set_title(f"{model}, seq {seq}, batch 1: per gate")
        ax.legend()
        save(fig, f"gates_{model}_L{seq}.png")
    return written
