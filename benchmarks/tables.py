"""Regenerate the numbers tables of README.md and docs/*.md from the committed result files.

    python benchmarks/tables.py            # rewrite every block
    python benchmarks/tables.py --check    # exit 1 when a block differs from its result files
    python benchmarks/tables.py nn-secure  # rewrite the named blocks only

A generated block lies between `<!-- tables:NAME -->` and `<!-- /tables:NAME -->` on lines of
their own; only the text between the two is rewritten (the file is read again right before it is
written), so the prose around it stays with whoever edits it.  Every figure in a block comes
from a file in benchmarks/results/ (JSON written by the benchmark scripts, or the logs of
`suf run`, suf_run_*.txt), named in the block or in the prose next to it.  Result files are
never edited after the run; a note about one goes beside it (results/<name>.note.md).

Standard library only, so the check runs anywhere (tests/e2e/test_tables.py).
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks/results"


# -- reading results ----------------------------------------------------------------------------
def load(name: str) -> dict:
    return json.loads((RESULTS / name).read_text())


def commit_label(res: dict) -> str:
    """The tree as a table shows it.  Results from before provenance.stamp() carry a short commit
    string (shown as it is); newer ones a full commit or null and a "tree" record: the short
    commit when the tree was clean, else "src <hash>" (the content hash of src/), which names the
    tree that ran even where the commit does not (uncommitted changes, no git, or the device
    machine's stale copy of .git)."""
    tree = res.get("tree")
    if tree is None:
        return str(res.get("commit"))
    dirty = tree.get("diff_sha256") or any(
        p.startswith(("src/", "benchmarks/")) for p in tree.get("untracked") or [])
    if res.get("commit") is None or dirty:
        return f"src {tree['src_sha256'][:12]}"
    return res["commit"][:7]


def suf_run_log(name: str) -> dict:
    """What a `suf run` log (tee'd output of `suf run`) says: model, commit, equality, totals,
    keygen and key load times, and the per-(layer, gate) rows of party 0's cost table."""
    text = (RESULTS / name).read_text()
    head = text.splitlines()[0]
    m = re.search(r"# commit (\w+), ([^,]+), ([^,]+),", head)
    if not m:
        raise ValueError(f"{name}: no '# commit SHA, DATE, MACHINE,' on its first line")
    out = {"commit": m.group(1), "date": m.group(2), "machine": m.group(3)}
    m = re.search(r"^(\S+)\s+n=(\d+)\s+batch=(\d+)\s+seq=(\d+)\s+device=(\S+)$", text, re.M)
    out.update(model=m.group(1), bits=int(m.group(2)), batch=int(m.group(3)),
               length=int(m.group(4)), device=m.group(5))
    out["equal"] = re.search(r"secure == reference bit for bit: (\w+)", text).group(1)
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if len(cells) == 5 and line.startswith("│"):
            rows[(cells[0], cells[1])] = cells[2:]
    online = rows[("total", "online")]
    out["online_s"] = [float(s) for s in online[2].split(",")]
    out["keygen_s"] = float(rows[("keys", "P0 / P1 payload bytes")][2].split()[-1])
    load_row = next(v for k, v in rows.items() if k[0] == "keys" and k[1].startswith("loaded"))
    out["load_s"] = [float(s) for s in load_row[2].split(",")]
    out["gates"] = {k: {"bytes": int(v[0].replace(",", "")), "exchanges": int(v[1]),
                        "s": float(v[2])}
                    for k, v in rows.items() if k[0] not in ("total", "keys")}
    return out


# -- number formats -----------------------------------------------------------------------------
def sci(x: float, digits: int, exp: int | None = None) -> str:
    """x as m·10^e with `digits` significant digits ("4.06·10^10"); with exp, m at that exponent
    and no suffix (for "3.64 / 3.08 / 2.06·10^10")."""
    e = math.floor(math.log10(abs(x))) if exp is None else exp
    m = f"{x / 10**e:.{digits - 1}f}"
    if exp is None and float(m) >= 10:  # rounding reached the next power of ten
        return sci(x, digits, e + 1) + f"·10^{e + 1}"
    return m if exp is not None else f"{m}·10^{e}"


def sig3(x: float) -> str:
    """3 significant digits, trailing zeros kept: 0.669, 6.70, 43.5."""
    return f"{x:#.3g}".rstrip(".")


def sig3_1(x: float) -> str:
    """3 significant digits but at most one decimal: 195, 56.7, 4.3."""
    decimals = min(1, max(0, 2 - math.floor(math.log10(abs(x)))))
    return f"{x:.{decimals}f}"


def span(values, fmt) -> str:
    """'a' when all values print the same, else 'min–max'."""
    lo, hi = fmt(min(values)), fmt(max(values))
    return lo if lo == hi else f"{lo}–{hi}"


def gpu_short(name: str) -> str:
    """'NVIDIA H100 80GB HBM3' -> 'H100'."""
    parts = name.split()
    return parts[1] if parts and parts[0] == "NVIDIA" and len(parts) > 1 else name


# -- the blocks ---------------------------------------------------------------------------------
def nn_secure() -> str:
    """docs/models.md: every nn_secure_*.json (benchmarks/nn_secure.py)."""
    lines = ["| model | n | B | L | device | = reference | P0 online sent B | exchanges | "
             "P0 key B | keys in | keygen s | online s | machine | commit | date |",
             "|---|---:|---:|---:|---|---|---:|---:|---:|---|---:|---:|---|---|---|"]
    for f in sorted(RESULTS.glob("nn_secure_*.json")):
        r = json.loads(f.read_text())
        p0 = r["parties"][0]["online"]
        sec = r["seconds"]
        where = r["machine"].get("gpu", r["machine"]["cpu"])
        lines.append(f"| {r['model']} | {r['spec']['bits']} | {r['batch']} | {r['length']} | "
                     f"{r['device']} | {r['equal_to_reference']} | {p0['bytes_sent']:,} | "
                     f"{p0['exchanges']} | {r['key_bytes'][0]:,} | {r.get('key_store', 'cpu')} | "
                     f"{sec['keygen']:.1f} | "
                     f"{max(sec['online_p0'], sec['online_p1']):.1f} | {where} | "
                     f"`{commit_label(r)}` | {r['date'][:10]} |")
    return "\n".join(lines)


def minilm_accuracy() -> str:
    """docs/models.md: minilm_accuracy.json (benchmarks/minilm_accuracy.py)."""
    res = load("minilm_accuracy.json")
    s = res["summary"]
    out = [f"Produced by `{res['command']}` at commit `{commit_label(res)}` on {res['date']} "
           f"({res['machine']['cpu']}, torch {res['machine']['torch']}, transformers "
           f"{res['machine']['transformers']}); data: `benchmarks/results/minilm_accuracy.json`. "
           f"n = {res['bits']}, f = {res['frac_bits']}; {len(res['sentences'])} sentences in one "
           f"batch padded to L = {res['batch'][1]}; range violations: "
           f"{len(res['range_violations'])}.",
           "",
           "| measure (fixed point vs float64) | value |",
           "|---|---:|",
           f"| sentence embedding cosine similarity, min | {s['cosine_min']:.6f} |",
           f"| sentence embedding cosine similarity, mean | {s['cosine_mean']:.6f} |",
           f"| sentence embedding max abs error (float max abs value {s['pooled_abs_max_float']:.3f})"
           f" | {s['pooled_max_abs_err']:.4e} |",
           f"| hidden states max abs error, real tokens (float max abs value "
           f"{s['hidden_abs_max_float']:.3f}) | {s['hidden_max_abs_err']:.4e} |",
           f"| hidden states mean abs error, real tokens | {s['hidden_mean_abs_err']:.4e} |",
           f"| pairwise cosine similarities, max abs difference | "
           f"{s['pairwise_similarity_max_abs_diff']:.4e} |",
           f"| nearest neighbour (by cosine) unchanged | "
           f"{100 * s['nearest_neighbour_agreement']:.0f}% |",
           "",
           "| sentence | tokens | cosine | pooled max abs err | hidden max abs err |",
           "|---|---:|---:|---:|---:|"]
    for r in res["sentences"]:
        out.append(f"| {r['sentence']} | {r['tokens']} | {r['cosine']:.6f} | "
                   f"{r['pooled_max_abs_err']:.3e} | {r['hidden_max_abs_err']:.3e} |")
    return "\n".join(out)


def reference_accuracy() -> str:
    """docs/reference_accuracy.md: reference_accuracy.json (benchmarks/reference_accuracy.py)."""
    res = load("reference_accuracy.json")
    out = [f"Produced by `{res['command']}` at commit `{commit_label(res)}` on {res['date']} "
           f"({res['machine']['cpu']}, torch {res['machine']['torch']}); data: "
           f"`benchmarks/results/reference_accuracy.json`.  Errors are absolute, in real units, "
           f"against the float64 function evaluated on the same fixed-point inputs; "
           f"1 ULP = 2^-12 ≈ 2.44e-4.\n"]
    out.append("## GeLU and SiLU (n = 50; the results do not depend on n inside the range)\n")
    out.append("| gate | inputs | points | max abs err | (ULP) | at x | mean abs err |")
    out.append("|---|---|---:|---:|---:|---:|---:|")
    for r in res["pointwise"]:
        out.append(f"| {r['gate']} | {r['inputs']} | {r['points']} | {r['max_abs_err']:.3e} | "
                   f"{r['max_abs_err_ulp']:.2f} | {r['argmax_input']:.5g} | "
                   f"{r['mean_abs_err']:.3e} |")
    out.append("\n## Softmax parts (n = 50)\n")
    out.append("| part | inputs | points | max abs err | (ULP) | at | mean abs err | max rel err |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in res["softmax_parts"]:
        rel = f"{r['max_rel_err']:.3e}" if "max_rel_err" in r else ""
        out.append(f"| {r['part']} | {r['inputs']} | {r['points']} | {r['max_abs_err']:.3e} | "
                   f"{r['max_abs_err_ulp']:.2f} | {r['argmax_input']:.5g} | "
                   f"{r['mean_abs_err']:.3e} | {rel} |")
    out.append("\n## Softmax over random rows (12 heads × L rows; probabilities)\n")
    out.append("| n | L | causal | logits | rows | max abs err | (ULP) | mean abs err | "
               "max abs(row sum - 1) |")
    out.append("|---:|---:|---|---|---:|---:|---:|---:|---:|")
    for r in res["softmax"]:
        out.append(f"| {r['n']} | {r['L']} | {r['causal']} | {r['logits']} | {r['rows']} | "
                   f"{r['max_abs_err']:.3e} | {r['max_abs_err_ulp']:.2f} | "
                   f"{r['mean_abs_err']:.3e} | {r['max_row_sum_err']:.3e} |")
    out.append("\n## LayerNorm over random rows (vs float LayerNorm with the true mean, no ε)\n")
    out.append("| n | d | x | rows | γ | β | max abs err | (ULP) | mean abs err |")
    out.append("|---:|---:|---|---:|---|---|---:|---:|---:|")
    for r in res["layernorm"]:
        out.append(f"| {r['n']} | {r['d']} | {r['x']} | {r['rows']} | {r['gamma']} | "
                   f"{r['beta']} | {r['max_abs_err']:.3e} | {r['max_abs_err_ulp']:.1f} | "
                   f"{r['mean_abs_err']:.3e} |")
    return "\n".join(out)


SUF_RUN_L128 = ("suf_run_bert-base_L128_cuda.txt", "suf_run_gpt2_L128_cuda.txt")


def suf_run_l128() -> str:
    """docs/models.md: the two-process runs at L = 128 (logs of `suf run --key-dir /dev/shm`)."""
    logs = [suf_run_log(f) for f in SUF_RUN_L128]
    lengths = {log["length"] for log in logs}
    (length,) = lengths
    lines = [f"| model, L = {length} | = reference | online s (P0 / P1) | "
             "keygen + writing both files s | key load s (P0 / P1) |",
             "|---|---|---:|---:|---:|"]
    for log in logs:
        lines.append(f"| {log['model']} | {log['equal']} | "
                     f"{' / '.join(f'{s:.2f}' for s in log['online_s'])} | "
                     f"{log['keygen_s']:.1f} | {' / '.join(f'{s:.1f}' for s in log['load_s'])} |")
    return "\n".join(lines)


BERT_BASE_PROGRESS = (
    ("first GPU run (commit `{commit}`)", "nn_secure_bert-base_L128_B1_cuda_0342323.json"),
    ("one process, keys on the GPU (`{commit}`)", "nn_secure_bert-base_L128_B1_cuda.json"),
    ("two processes, key files in /dev/shm (`{commit}`)", "suf_run_bert-base_L128_cuda.txt"),
)


def bert_base_progress() -> str:
    """docs/performance.md: bert-base-128 keygen and online time, run by run."""
    lines = ["| bert-base-128 | keygen | online | result file |", "|---|---:|---:|---|"]
    for label, name in BERT_BASE_PROGRESS:
        if name.endswith(".json"):
            r = load(name)
            sec = r["seconds"]
            keygen = f"{sig3_1(sec['keygen'])} s"
            online = f"{sig3_1(max(sec['online_p0'], sec['online_p1']))} s"
            commit = commit_label(r)
        else:  # the dealer also wrote both key files: keygen includes writing them
            log = suf_run_log(name)
            keygen = f"{sig3(log['keygen_s'])} s with writing the files"
            online = f"{sig3(max(log['online_s']))} s"
            commit = log["commit"]
        lines.append(f"| {label.format(commit=commit)} | {keygen} | {online} | `{name}` |")
    return "\n".join(lines)


LAYER_GROUPS = (  # (row label, gates of one layer in the suf run table, "each" when several)
    ("qkv / qk / av / proj / ffn1 / ffn2 (matmul + truncation)",
     ("qkv", "qk", "av", "proj", "ffn1", "ffn2")),
    ("softmax", ("softmax",)),
    ("LayerNorm (×2)", ("ln1", "ln2")),
    ("GeLU", ("gelu",)),
)
LAYER_LOG, LAYER = "suf_run_bert-base_L128_cuda.txt", "5"


def bert_base_layer() -> str:
    """docs/performance.md: one encoder layer of the two-process bert-base run, P0, per gate."""
    gates = suf_run_log(LAYER_LOG)["gates"]
    lines = ["| gate | exchanges | s | ms per exchange |", "|---|---:|---:|---:|"]
    for label, names in LAYER_GROUPS:
        rows = [gates[(LAYER, g)] for g in names]
        ex = {r["exchanges"] for r in rows}
        exchanges = f"{ex.pop()}" if len(ex) == 1 else span(list(ex), str)
        if len(names) > 1 and names[0] != "ln1":
            exchanges += " each"
        seconds = span([r["s"] for r in rows], lambda v: f"{v:.3f}")
        per = span([1e3 * r["s"] / r["exchanges"] for r in rows], lambda v: f"{v:.1f}")
        lines.append(f"| {label} | {exchanges} | {seconds} | {per} |")
    return "\n".join(lines)


def prg_candidates() -> str:
    """docs/prg.md: expansions per second of the PRG candidates (prg_2026-11-25.json,
    benchmarks/prg_bench.py; the sizes are the script's)."""
    res = load("prg_2026-11-25.json")
    g, c = res["gpu"]["gpu_results"], res["cpu"]["cpu_results"]
    gpu = gpu_short(g["gpu"])
    shared = math.floor(math.log10(g["chacha8_triton_expand_4blocks"]))
    standalone = " / ".join(sci(g[f"chacha{r}_triton_expand_4blocks"], 3, shared)
                            for r in (8, 12, 20)) + f"·10^{shared}"
    # the keyed AES cell gives a range over runs; only its lower end is in the result file (the
    # upper end, 2.0, is from runs whose results were not committed)
    aes_keyed = sci(c["aes128_keyed_per_seed_both_children"], 2)
    aes_keyed = aes_keyed.replace("·", "–2.0·", 1)
    rows = [
        (f"{gpu}, DPF walk (n = 64, 57 levels, 2^22 keys, fused kernel)", "ChaCha8 (Triton)",
         sci(g["chacha8_dpf_walk_n64"], 3)),
        ("", "**ChaCha12 (Triton), the project's G**",
         f"**{sci(g['chacha12_dpf_walk_n64'], 3)}**"),
        ("", "ChaCha20 (Triton)", sci(g["chacha20_dpf_walk_n64"], 3)),
        ("", "AES-128 keyed by the seed, T-tables through L1 (Triton, 2^20 keys)",
         sci(g["aes128_keyed_triton_ttable_l1_walk_n64"], 3)),
        ("", "AES-128 keyed by the seed, T-tables gathered from shared memory (`tl.gather`)",
         sci(g["aes128_keyed_triton_ttable_smem_walk_n64"], 3)),
        (f"{gpu}, standalone expansion (writes all 4 output blocks, 64 B per seed; 2^24 seeds)",
         "ChaCha8 / 12 / 20 (Triton)", standalone),
        ("", "ChaCha12, the torch path (`suf.prg.expand` on CUDA, 2^22 seeds)",
         sci(g["chacha12_torch_expand_gpu"], 2)),
        (f"CPU, {res['cpu']['cores']} cores", "ChaCha12, the torch path (2^16 seeds)",
         sci(c["chacha12_torch_expand"], 2)),
        ("", "AES-128 keyed by the seed (`cryptography`: key schedule + 2 blocks per seed)",
         aes_keyed),
        ("", "ChaCha20 keyed by the seed (`cryptography`, same per-seed pattern)",
         sci(c["chacha20_keyed_per_seed_openssl"], 2)),
        ("", "fixed-key AES-128, Matyas–Meyer–Oseas (one ECB call over 2N blocks)",
         sci(c["aes128_fixed_key_mmo_ecb_batch"], 2)),
    ]
    lines = ["| where | candidate | expansions/s |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {v} |" if a else f"| | {b} | {v} |" for a, b, v in rows]
    return "\n".join(lines)


def _pow2(n: int) -> str:
    e = n.bit_length() - 1
    return f"2^{e}" if n == 1 << e else str(n)


def prg_kernels() -> str:
    """docs/prg.md: the fused kernels' times on the GPU (prg_2026-11-25.json)."""
    g = load("prg_2026-11-25.json")["gpu"]["gpu_results"]
    lut = {}
    for key, ms in g.items():
        m = re.fullmatch(r"lut_k(\d+)_N(\d+)_ms", key)
        if m:
            lut.setdefault(int(m.group(2)), []).append((int(m.group(1)), ms))
    parts = []
    for N, rows in sorted(lut.items(), reverse=True):
        if len(rows) == 1:
            (k, ms), = rows
            parts.append(f"{_pow2(N)} keys, k = {k}: {sig3(ms)} ms")
        else:
            parts.append(f"{_pow2(N)} keys: " + ", ".join(f"k = {k} {sig3(ms)} ms"
                                                         for k, ms in sorted(rows)))
    lines = [f"| function | kernel | {gpu_short(g['gpu'])} |", "|---|---|---|",
             "| `expand(seeds, rounds=12)` | G(s) for a batch, as `suf.prg.expand` (…,2) → (…,4,2) "
             f"| {sci(g['chacha12_triton_expand_4blocks'], 2)} seeds/s |",
             "| `dpf_eval_point(seed, cw, tr, leaf, x, n, party)` | the leaf bit at x (x: (N,) or "
             f"(E, N), E ≤ 3) | n = 32, 2^20 keys: {sig3(g['point_n32_2^20_ms'])} ms |",
             "| `dpf_eval_lt(seed, cw, tr, leaf, x, n, party)` | XOR-share of 1{x < α} by prefix "
             f"parity (spec §2.3) | n = 32, 2^20 keys: **{sig3(g['lt_n32_2^20_ms'])} ms** "
             f"(target ≤ 5 ms); 3 points per key: {sig3(g['lt_n32_2^20_E3_ms'])} ms |",
             "| `dpf_lut(seed, cw, tr, leaf, x_hat, table, k, party)` | eval-all + rotated-table "
             f"inner product, (u, v) (spec §2.4), 8 ≤ k ≤ 16 | {'; '.join(parts)} |",
             "| `dpf_keygen(alpha, root0, root1, n)` | both parties' keys from the dealer's root "
             f"seeds | n = 32, 2^20 keys: {sig3(g['keygen_n32_2^20_ms'])} ms |"]
    return "\n".join(lines)


def _cell(v) -> str:
    return "—" if v is None else f"{v:g}"


def _triple(pe: dict) -> str:
    return f"{pe['exchanges']} / {pe['bits']:g} / {pe['key_bytes']:g}"


def newest(pattern: str) -> Path:
    """The result file matching pattern whose "date" is the latest."""
    files = sorted(RESULTS.glob(pattern))
    if not files:
        raise SystemExit(f"no benchmarks/results/{pattern}")
    return max(files, key=lambda f: (json.loads(f.read_text())["date"], f.name))


def suf_gate_costs() -> str:
    """docs/suf.md: the newest suf_gate_costs_*.json (benchmarks/suf_gate_costs.py)."""
    f = newest("suf_gate_costs_*.json")
    res = json.loads(f.read_text())
    out = [f"Produced by `{res['command']}` at commit `{commit_label(res)}` on {res['date'][:10]} "
           f"({res['machine']['cpu']}, torch {res['machine']['torch']}); data: "
           f"`benchmarks/results/{f.name}`.  n = {res['bits']}; cells: exchanges / bits sent "
           f"per element per party / key bytes per element per party, measured on the transport "
           f"(equal to the layout fold); every output equal to the reference.",
           "",
           "| gate | element | Sigma mode | SUF mode | target SUF (Sigma) | SUF PRG calls "
           "per element | notes |",
           "|---|---|---|---|---|---:|---|"]
    notes = []
    for row in res["pairs"]:
        sig, suf = row["sigma"], row["suf"]
        t = row["targets"]
        if t is None:
            target = "—"
        else:
            target = " / ".join(_cell(v) for v in t["suf"])
            if t["sigma"]:
                target += " (" + " / ".join(_cell(v) for v in t["sigma"]) + ")"
        refs = []
        for note in row["notes"]:
            notes.append(note)
            refs.append(f"[{len(notes)}]")
        out.append(f"| {sig['gate']} → {suf['gate']} | {row['unit']} | "
                   f"{_triple(sig['per_element'])} | **{_triple(suf['per_element'])}** | "
                   f"{target} | {suf['work']['prg_calls_per_element']:g} | {' '.join(refs)} |")
    out.append("")
    out += [f"{i}. {note}" for i, note in enumerate(notes, 1)]
    return "\n".join(out)


def online_speed() -> str:
    """docs/performance.md: every online_speed_*.json (benchmarks/online_speed.py), run by run."""
    out = ["| model, L, B | mode | online | graphs recorded in setup (P0, P1) | key load (P0, P1) "
           "| keygen + key files | exchanges | equal | tree, GPU, result file |",
           "|---|---|---:|---:|---:|---:|---:|---|---|"]
    for f in sorted(RESULTS.glob("online_speed_*.json")):
        res = json.loads(f.read_text())
        where = (f"`{commit_label(res)}`, {gpu_short(res['machine'].get('gpu', 'cpu'))}, "
                 f"`{f.name}`")
        for r in res["runs"]:
            mode = r["nonlinear"] + (", CUDA graphs" if r["graphs"] else ", kernel by kernel")
            if r["online"] != ["cuda-graphs"] * 2:
                mode += f" ({' / '.join(r['online'])})"
            rec = (", ".join(f"{s:.1f}" for s in r["record_s"]) + " s"
                   if all(r["record_s"]) else "—")
            cold = " (cold start)" if r["cold"] else ""
            out.append(f"| {r['model']}, {r['seq']}, {r['batch']}{cold} | {mode} | "
                       f"{max(r['online_s']):.3f} s | {rec} | "
                       f"{', '.join(f'{s:.1f}' for s in r['key_load_s'])} s | "
                       f"{r['keygen_s']:.1f} s | {r['exchanges']} | "
                       f"{'yes' if r['equal_to_reference'] else '**no**'} | {where} |")
    return "\n".join(out)


# name -> (file, renderer)
BLOCKS = {
    "nn-secure": ("docs/models.md", nn_secure),
    "minilm-accuracy": ("docs/models.md", minilm_accuracy),
    "suf-run-l128": ("docs/models.md", suf_run_l128),
    "reference-accuracy": ("docs/reference_accuracy.md", reference_accuracy),
    "bert-base-progress": ("docs/performance.md", bert_base_progress),
    "bert-base-layer": ("docs/performance.md", bert_base_layer),
    "online-speed": ("docs/performance.md", online_speed),
    "prg-candidates": ("docs/prg.md", prg_candidates),
    "prg-kernels": ("docs/prg.md", prg_kernels),
    "suf_gate_costs": ("docs/suf.md", suf_gate_costs),
}


def _pattern(name: str) -> re.Pattern:
    return re.compile(rf"^<!-- tables:{re.escape(name)} -->\n(.*?)^<!-- /tables:{re.escape(name)} -->$",
                      re.S | re.M)


def _replace(text: str, name: str, body: str, path: str) -> str:
    found = _pattern(name).findall(text)
    if len(found) != 1:
        raise SystemExit(f"{path}: needs exactly one <!-- tables:{name} --> ... "
                         f"<!-- /tables:{name} --> block (on lines of their own), found "
                         f"{len(found)}")
    return _pattern(name).sub(lambda _: f"<!-- tables:{name} -->\n{body}\n<!-- /tables:{name} -->",
                              text)


def unknown_blocks(root: Path = ROOT) -> list[str]:
    """Markers in README.md and docs/*.md that no renderer here knows."""
    out = []
    for md in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        for name in re.findall(r"^<!-- tables:([\w.-]+) -->$", md.read_text(), re.M):
            if name not in BLOCKS:
                out.append(f"{md.relative_to(root)}: {name}")
    return out


def update(names=None, check: bool = False) -> list[str]:
    """Rewrite the named blocks (all by default); with check, write nothing.  Returns the names of
    the blocks whose text differed."""
    names = list(BLOCKS) if not names else list(names)
    for n in names:
        if n not in BLOCKS:
            raise SystemExit(f"no table {n!r}; known: {', '.join(BLOCKS)}")
    rendered = {n: BLOCKS[n][1]() for n in names}  # every result file is read before writing
    differ = []
    for path in dict.fromkeys(BLOCKS[n][0] for n in names):
        md = ROOT / path
        text = md.read_text()  # read right before the write
        new = text
        for n in (n for n in names if BLOCKS[n][0] == path):
            new = _replace(new, n, rendered[n], path)
            if _pattern(n).search(text).group(1) != rendered[n] + "\n":
                differ.append(n)
        if new != text and not check:
            md.write_text(new)
    return differ


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help=f"blocks to rewrite (default: all): {', '.join(BLOCKS)}")
    ap.add_argument("--check", action="store_true",
                    help="write nothing; exit 1 when a block differs from its result files")
    args = ap.parse_args(argv)
    differ = update(args.names, check=args.check)
    stray = unknown_blocks()
    for s in stray:
        print(f"unknown table block {s}", file=sys.stderr)
    if args.check:
        for n in differ:
            print(f"{BLOCKS[n][0]}: block {n} differs from the result files "
                  f"(run python benchmarks/tables.py {n})", file=sys.stderr)
        return 1 if differ or stray else 0
    for n in differ:
        print(f"rewrote {n} in {BLOCKS[n][0]}")
    return 1 if stray else 0


if __name__ == "__main__":
    sys.exit(main())
