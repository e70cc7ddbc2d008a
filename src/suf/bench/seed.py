"""The seed's own figures (../shared/reference/seed_results.md, 2026-01-26), for the column "seed"
beside ours in `suf bench`'s report.  Their hardware and code (SIGMA's C++/CUDA build and the
published SUF code, whose SUF outputs were wrong: it dropped range reduction), not ours; "GB" as
the seed prints it.  Keyed by (model, seq, batch, nonlinear mode); rounds are the seed's printed
exchange counts (None where it printed none).
"""
from __future__ import annotations

SOURCE = ("seed_results.md (2026-01-26): SIGMA's C++/CUDA build and the published SUF code on the "
          "seed's machine; its SUF outputs were wrong")

# (model, seq, batch) -> {mode: (online ms, comm GB, keygen s, key GB, rounds)}
_SWEEPS = {
    ("bert-base", 128, 1): {"sigma": (1319.295, 0.989, 1.427, 16.835, 1128),
                            "suf": (1041.672, 0.830, 0.947, 12.739, 1116)},
    ("bert-base", 256, 1): {"sigma": (2888.296, 2.647, 2.493, 43.460, None),
                            "suf": (1978.612, 2.088, 1.846, 31.619, None)},
    ("bert-base", 512, 1): {"sigma": (6845.579, 7.966, 6.497, 127.981, None),
                            "suf": (4847.335, 5.891, 4.631, 89.704, None)},
    ("gpt2", 128, 1): {"sigma": (1198.563, 0.824, 1.051, 14.292, 1128),
                       "suf": (931.429, 0.724, 0.863, 11.101, 1116)},
    ("gpt2", 256, 1): {"sigma": (2254.409, 1.983, 1.995, 33.191, None),
                       "suf": (1639.911, 1.663, 1.545, 24.984, None)},
    ("gpt2", 512, 1): {"sigma": (5791.808, 5.302, 4.532, 86.687, None),
                       "suf": (3517.568, 4.183, 3.325, 62.975, None)},
}
# GPT-2 batch scaling at seq 128: online ms per inference, comm GB per inference, rounds
_GPT2_BATCH = {2: {"sigma": (1175.450, 0.824, 2256), "suf": (948.197, 0.724, 2232)},
               4: {"sigma": (1348.578, 0.824, 4512), "suf": (944.308, 0.724, 4464)},
               8: {"sigma": (1217.743, 0.824, 9024), "suf": (987.269, 0.724, 8928)}}

FIELDS = ("online_ms", "comm_gb", "keygen_s", "key_gb", "rounds")


def seed_figures(model: str, seq: int, batch: int, mode: str) -> dict | None:
    """The seed's figures for one configuration (None where the seed has none): online ms and
    comm GB per inference (a batch's divided by its size, as the seed prints them), keygen s,
    key GB, rounds (the whole batch's)."""
    if (model, seq, batch) in _SWEEPS:
        return dict(zip(FIELDS, _SWEEPS[(model, seq, batch)][mode]))
    if model == "gpt2" and seq == 128 and batch in _GPT2_BATCH:
        ms, gb, rounds = _GPT2_BATCH[batch][mode]
        return {"online_ms": ms, "comm_gb": gb, "keygen_s": None, "key_gb": None,
                "rounds": rounds}
    return None
