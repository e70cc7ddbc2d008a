"""Loader for SIGMA's bit-exact test vectors in tests/vectors/sigma/ (see the README there).

`load(case)` returns the case's JSON sidecar and its arrays as torch.int64 tensors (little-endian
int64 on disk, shaped as the sidecar says), keyed by the file name without the case prefix and
`.bin` ("in", "out", "x", "gamma", "rowstats", ...; "table" for the lut_gpu_* dumps).  Every file
is checked against SHA256SUMS once per process, before the first case is returned.
"""
from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

SIGMA_DIR = Path(__file__).resolve().parent / "vectors" / "sigma"


@dataclass(frozen=True)
class Case:
    name: str
    meta: dict
    arrays: dict[str, torch.Tensor]

    def __getitem__(self, key: str) -> torch.Tensor:
        return self.arrays[key]


@functools.lru_cache(maxsize=1)
def verify_checksums() -> int:
    """Check every file listed in SHA256SUMS; return how many.  Raises on any mismatch."""
    sums = (SIGMA_DIR / "SHA256SUMS").read_text().split("\n")
    count = 0
    for line in filter(None, sums):
        digest, name = line.split(maxsplit=1)
        got = hashlib.sha256((SIGMA_DIR / name).read_bytes()).hexdigest()
        if got != digest:
            raise RuntimeError(f"test vector {name} does not match SHA256SUMS")
        count += 1
    return count


@functools.lru_cache(maxsize=None)
def _load(case: str) -> Case:
    verify_checksums()
    meta = json.loads((SIGMA_DIR / f"{case}.json").read_text())
    arrays = {}
    for entry in meta["files"]:
        fname = entry["file"]
        key = fname[len(case) + 1:-len(".bin")] if fname != f"{case}.bin" else "table"
        data = np.fromfile(SIGMA_DIR / fname, dtype="<i8").reshape(entry["shape"])
        arrays[key] = torch.from_numpy(data.astype(np.int64))
    return Case(case, meta, arrays)


def load(case: str) -> Case:
    """The test case `case` (e.g. "gelu_n50"); tensors are fresh copies the caller may modify."""
    c = _load(case)
    return Case(c.name, c.meta, {k: v.clone() for k, v in c.arrays.items()})
