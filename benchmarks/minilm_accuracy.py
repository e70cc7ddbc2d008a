"""Accuracy of the fixed-point all-MiniLM-L6-v2 (reference backend, bit-exact with the secure
run) against the float64 `transformers` model, on 20 real sentences.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/minilm_accuracy.py

Writes benchmarks/results/minilm_accuracy.json, stamped with the tree that ran
(benchmarks/provenance.py), and regenerates its table in docs/models.md (benchmarks/tables.py).
Deterministic, CPU only, under a minute on 2 cores.  The sentence embedding is
sentence-transformers' mean pooling over the real tokens (its final L2 normalisation does not
change cosine similarities); hidden-state errors are over real tokens only.
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
from pathlib import Path

import torch

import provenance

from suf.models import load_model, mean_pool

ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "benchmarks/results/minilm_accuracy.json"
SENTENCES = [
    "The cat sat quietly on the warm windowsill.",
    "A dog was barking at the mailman all morning.",
    "Interest rates rose again after the central bank meeting.",
    "The stock market fell sharply on Tuesday.",
    "She plays the violin in the city orchestra.",
    "Music lessons help children learn discipline.",
    "Photosynthesis converts sunlight into chemical energy.",
    "Plants need light and water to grow.",
    "The recipe calls for two cups of flour and one egg.",
    "Bake the bread for forty minutes at high heat.",
    "Our flight to Lisbon was delayed by three hours.",
    "The train from Paris arrives at noon.",
    "Secure computation lets two parties compute without sharing their inputs.",
    "Function secret sharing splits a function into two keys.",
    "He scored the winning goal in the final minute.",
    "The team celebrated their championship victory.",
    "Heavy rain is expected across the region tonight.",
    "It will be sunny and warm this weekend.",
    "Where is the nearest pharmacy?",
    "I forgot my umbrella at the office.",
]


def measure() -> dict:
    model = load_model("all-MiniLM-L6-v2")
    batch = model.tokenize(SENTENCES)  # one batch, padded to the longest sentence
    violations = []
    ref = model.decode(model.reference(batch, violations))
    flt = model.float(batch)
    real = batch.real
    p_ref, p_flt = mean_pool(ref, real), mean_pool(flt, real)
    cos = torch.nn.functional.cosine_similarity(p_ref, p_flt)
    pool_err = (p_ref - p_flt).abs().amax(dim=1)
    hid_err = (ref - flt).abs()
    unit = torch.nn.functional.normalize
    sim_ref, sim_flt = unit(p_ref) @ unit(p_ref).T, unit(p_flt) @ unit(p_flt).T
    rows = [{"sentence": s, "tokens": int(real[i].sum()), "cosine": float(cos[i]),
             "pooled_max_abs_err": float(pool_err[i]),
             "hidden_max_abs_err": float(hid_err[i][real[i]].max())}
            for i, s in enumerate(SENTENCES)]
    nearest_ref = (sim_ref - 2 * torch.eye(len(SENTENCES))).argmax(1)
    nearest_flt = (sim_flt - 2 * torch.eye(len(SENTENCES))).argmax(1)
    return {
        "model": "all-MiniLM-L6-v2", "bits": model.spec.bits, "frac_bits": model.spec.frac_bits,
        "batch": list(batch.shape), "range_violations": [str(v) for v in violations],
        "sentences": rows,
        "summary": {
            "cosine_min": float(cos.min()), "cosine_mean": float(cos.mean()),
            "pooled_max_abs_err": float(pool_err.max()),
            "pooled_abs_max_float": float(p_flt.abs().max()),
            "hidden_max_abs_err": float(hid_err[real].max()),
            "hidden_mean_abs_err": float(hid_err[real].mean()),
            "hidden_abs_max_float": float(flt[real].abs().max()),
            "pairwise_similarity_max_abs_diff": float((sim_ref - sim_flt).abs().max()),
            "nearest_neighbour_agreement": float((nearest_ref == nearest_flt).double().mean()),
        },
    }


def main() -> None:
    import transformers

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, default=RESULT)
    args = ap.parse_args()
    stamp = provenance.stamp()  # the tree that runs, read before it runs
    res = {
        "benchmark": "all-MiniLM-L6-v2: SIGMA fixed point (reference backend) vs float64",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **stamp,
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
        "machine": {"cpu": provenance.cpu_name(), "torch": torch.__version__,
                    "transformers": transformers.__version__,
                    "python": platform.python_version()},
        **measure(),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(res, indent=2) + "\n")
    if args.json.resolve() != RESULT.resolve():
        print(f"wrote {args.json}")
        return
    import tables

    tables.update(["minilm-accuracy"])
    print(f"wrote {args.json} and its table in docs/models.md")


if __name__ == "__main__":
    main()
