"""`suf bench`: the seed's tables regenerated from measured runs, Sigma and SUF side by side.

  grid.py        the configurations and one measured run of each (as `suf run` runs it)
  report.py      Markdown laid out like seed_results.md, deltas, the seed's figures, per-gate
                 breakdown, LAN/WAN projection, plots
  seed.py        the seed's own figures (its hardware and code), for comparison only
  provenance.py  the tree that ran and the machine, in every result file

`run_bench` writes into one directory: records.jsonl (one record per run, appended as each ends,
so a killed bench keeps what it measured and `resume` skips those), bench.json (the header:
command, date, machine, tree; and every record), report.md and the PNG plots.
"""
from __future__ import annotations

import datetime
import json
import time
from pathlib import Path

from suf.bench import provenance
from suf.bench.grid import Config, append_record, grid, load_records, measure
from suf.bench.report import markdown, plots

__all__ = ["Config", "grid", "run_bench"]


def run_bench(configs: list[Config], out, *, device: str = "cpu", key_dir=None,
              timeout: float = 600.0, resume: bool = False, command: str = "",
              progress=print) -> dict:
    """Run every configuration (skipping, with `resume`, those with a record in `out`), then
    write bench.json, report.md and the plots.  `progress(line)` is told what runs."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    done = {r["key"] for r in load_records(out)} if resume else set()
    if not resume and (out / "records.jsonl").exists():
        (out / "records.jsonl").unlink()
    start = time.perf_counter()
    for k, cfg in enumerate(configs, 1):
        where = f"[{k}/{len(configs)}] {cfg.key}"
        if cfg.key in done:
            progress(f"{where}: recorded before, skipped (--resume)")
            continue
        progress(f"{where}: dealing, then P0 and P1 ... ({time.perf_counter() - start:.0f} s "
                 f"elapsed)")
        record = measure(cfg, device=device, key_dir=key_dir, timeout=timeout)
        append_record(out, record)
        if record["status"] == "ok":
            progress(f"{where}: online {record['online_ms']:.1f} ms, "
                     f"{record['comm_bytes'] / 2**30:.3f} GiB, {record['rounds']} rounds, "
                     f"secure == reference: {record['equal_to_reference']}")
        else:
            progress(f"{where}: {record['status']}: {record['why']}")
    records = [r for r in load_records(out) if r["key"] in {c.key for c in configs}]
    header = {"benchmark": "suf bench", "command": command,
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "device": device, "machine": provenance.machine(device), **provenance.stamp()}
    (out / "bench.json").write_text(json.dumps({**header, "records": records}, indent=1) + "\n")
    show = {**header, "machine": ", ".join(f"{k} {v}" for k, v in header["machine"].items()),
            "tree": _tree_label(header)}
    (out / "report.md").write_text(markdown(show, records))
    written = plots(records, out) if any(r.get("status") == "ok" for r in records) else []
    return {"records": records, "report": out / "report.md", "plots": written}


def _tree_label(header: dict) -> str:
    tree = header["tree"]
    dirty = tree.get("diff_sha256") or tree.get("untracked")
    commit = header.get("commit")
    label = f"commit {commit[:12]}" if commit else "no commit"
    return f"{label}{' with changes' if dirty else ''}, src sha256 {tree['src_sha256'][:12]}"
