"""`suf bench`'s runs: the grid of configurations (model × seq × batch × nonlinear mode), each
run as `suf run` runs it (the dealer writes both key files, then P0 and P1 as two processes over
TCP on localhost), one JSON record per run with every figure measured.

A record's figures: online seconds of each party (its clock starts after the ready sync, stops
with its output on the host) and their max as online_ms; tokens/s = batch × seq / online; comm =
what P0's transport moved online, both directions; rounds = exchanges P0's transport counted
online; keygen = the dealer's seconds (writing both key files included); key bytes = the dealer's
payload for one party (and its file size); per gate (op over all layers): P0's bytes, exchanges and
wall seconds; and the output against the cleartext reference, bit for bit.  A configuration
whose keys cannot fit (`suf plan`'s numbers against the disk and RAM) is recorded as "does not
fit" with the numbers and not started.
"""
from __future__ import annotations

import datetime
import itertools
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from suf.core.errors import DoesNotFit, InputError, SufError
from suf.models import load_model
from suf.runtime import ModelJob, check_fits, run

RECORDS = "records.jsonl"  # one JSON record per line, appended as each run ends


@dataclass(frozen=True)
class Config:
    model: str
    seq: int
    batch: int
    nonlinear: str
    truncation: str = "faithful"

    @property
    def key(self) -> str:
        return f"{self.model}/L{self.seq}/B{self.batch}/{self.nonlinear}/{self.truncation}"


def grid(models, seqs, batches, modes, truncation: str = "faithful") -> list[Config]:
    """Every configuration, models outermost, the modes of one (model, seq, batch) side by side."""
    return [Config(m, s, b, n, truncation)
            for m, s, b, n in itertools.product(models, seqs, batches, modes)]


def input_ids(vocab: int, seq: int, batch: int) -> list[list[int]]:
    """Fixed token ids (no padding): sequence i is (101 + 7·(i + t)) mod (vocab - 1) + 1."""
    return [[(101 + 7 * (i + t)) % (vocab - 1) + 1 for t in range(seq)] for i in range(batch)]


def gate_breakdown(stats: dict) -> dict:
    """P0's online scopes of depth 1 ((layer, op) of each gate call) summed per op over layers:
    {op: {"bytes", "exchanges", "wall_s", "calls"}}."""
    out: dict = {}
    for s in stats["scopes"]:
        if s["depth"] != 1 or s["phase"] != "online":
            continue
        row = out.setdefault(s["op"] or "-", {"bytes": 0, "exchanges": 0, "wall_s": 0.0,
                                              "calls": 0})
        tot = s["total"]
        row["bytes"] += tot["bytes_sent"] + tot["bytes_recv"]
        row["exchanges"] += tot["exchanges"]
        row["wall_s"] += s["wall_s"]
        row["calls"] += s["entries"]
    return out


def measure(cfg: Config, *, device: str, key_dir, timeout: float) -> dict:
    """One configuration: refused up front when it does not fit, else run and measured."""
    record = {"config": asdict(cfg), "key": cfg.key, "device": device,
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    model = load_model(cfg.model)
    try:
        planned = check_fits(model, cfg.seq, cfg.batch, key_dir or ".", nonlinear=cfg.nonlinear,
                             truncation=cfg.truncation)
    except DoesNotFit as e:
        return {**record, "status": "does not fit", "why": str(e)}
    batch = model.batch(input_ids(model.spec.vocab, cfg.seq, cfg.batch), cfg.seq)
    job = ModelJob(model, cfg.batch, cfg.seq, name=cfg.model, nonlinear=cfg.nonlinear,
                   truncation=cfg.truncation)
    t0 = time.perf_counter()
    try:
        res = run(job, batch, device=device, timeout=timeout, work_dir=key_dir)
    except (SufError, InputError, RuntimeError) as e:
        return {**record, "status": "failed", "why": str(e).splitlines()[0][:500]}
    parties, dealing = res["parties"], res["dealing"]
    online = parties[0]["stats"]["phases"]["online"]
    online_s = max(p["online_s"] for p in parties)
    return {
        **record, "status": "ok", "equal_to_reference": bool(res["equal"]),
        "online_s": [p["online_s"] for p in parties], "online_ms": 1e3 * online_s,
        "tokens_per_s": cfg.batch * cfg.seq / online_s,
        "comm_bytes": online["bytes_sent"] + online["bytes_recv"],
        "bytes_sent_p0": online["bytes_sent"], "bytes_recv_p0": online["bytes_recv"],
        "rounds": online["exchanges"],
        "comm_s": [p["stats"]["phases"]["online"]["comm_s"] for p in parties],
        "keygen_s": dealing["keygen_s"],
        "key_bytes": dealing["key_payload_bytes"], "key_file_bytes": dealing["key_file_bytes"],
        "online_mode": [p.get("online", "eager") for p in parties],
        "record_s": [p.get("record_s") for p in parties],
        "key_load_s": [p["key_load_s"] for p in parties],
        "gates": gate_breakdown(parties[0]["stats"]),
        "planned": {k: planned[k] for k in ("comm_bytes", "exchanges", "key_bytes_p0",
                                             "key_bytes_p1")},
        "wall_s": time.perf_counter() - t0,
    }


def load_records(out: Path) -> list[dict]:
    """The records written so far (a line cut short by a kill is dropped)."""
    path = Path(out) / RECORDS
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def append_record(out: Path, record: dict) -> None:
    with open(Path(out) / RECORDS, "a") as f:
        f.write(json.dumps(record) + "\n")
