"""What every result file records about where it came from: the tree that ran and the machine.

`stamp()` gives the keys a result file starts with, read from the tree itself, never from a
hand-set variable or option:

    "commit": the full commit (git rev-parse HEAD), or null where the tree has no git;
    "tree": {
        "src_sha256": sha256 over src/ (sorted relative paths and bytes; __pycache__, *.pyc and
                      *.egg-info left out), always, so that a result ties to a tree even without git;
        "diff_sha256": sha256 of `git diff HEAD --binary` (benchmarks/results/ left out: a rerun
                       overwrites its own result file) where tracked files differ from the commit,
                       else null;
        "changed": the paths in that diff, [] for a clean tree;
        "untracked": untracked, not ignored files under src/, benchmarks/ and tests/;
        "untracked_sha256": sha256 over those files (paths and bytes), null when there are none;
        "git": "ok", or why the commit is null ("no git repository", "git not installed")
    }
So commit + diff + untracked files name the code that ran exactly, and src_sha256 names src/ alone.

The GPU machine receives a copy of the working tree that need not include .git: there "commit"
is null, the git fields are null (unknown), and src_sha256 alone names the source that ran;
compare it with `python benchmarks/provenance.py` in a checkout.  The copy may also carry a .git
whose HEAD is not the commit the tree was taken from (seen on the device machine: the .git of an
older commit); then "commit" is that HEAD and the diff and untracked files are relative to it,
which still names the tree exactly, but the commit alone does not: read it with its diff.  A .git
that belongs to a directory above the tree (not this project's) is not used.

It lives in the package (`suf bench` stamps its records with it); the benchmark scripts import it
as `provenance` (benchmarks/provenance.py).  Outside a source checkout (an installed package) "src"
is the installed package's directory.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]  # src/suf/bench/provenance.py -> the checkout
UNTRACKED_UNDER = ("src", "benchmarks", "tests")
NOT_IN_DIFF = "benchmarks/results"


def _git(*args, binary: bool = False):
    """git's stdout in ROOT, or None where git fails or is missing."""
    try:
        res = subprocess.run(["git", *args], cwd=ROOT, capture_output=True)
    except OSError:
        return None
    if res.returncode != 0:
        return None
    return res.stdout if binary else res.stdout.decode().strip()


def _repo_state() -> str:
    top = _git("rev-parse", "--show-toplevel")
    if top is None:
        try:
            subprocess.run(["git", "--version"], capture_output=True)
        except OSError:
            return "git not installed"
        return "no git repository"
    if Path(top).resolve() != ROOT:
        return "no git repository"  # a repository above this tree: not its history
    return "ok"


def src_sha256(root: Path = ROOT) -> str:
    """sha256 over the files of root/src in sorted order: each relative path, a NUL, the size,
    a NUL and the bytes (build output left out: __pycache__, *.pyc, *.egg-info)."""
    h = hashlib.sha256()
    src = root / "src"
    if not (src / "suf").is_dir():  # an installed package, not a checkout
        src = Path(__file__).resolve().parents[2]
    files = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = [d for d in dirnames if d != "__pycache__" and not d.endswith(".egg-info")]
        files += [Path(dirpath) / f for f in filenames if not f.endswith(".pyc")]
    for f in sorted(files, key=lambda p: p.relative_to(src).as_posix()):
        data = f.read_bytes()
        h.update(f.relative_to(src).as_posix().encode() + b"\0" + str(len(data)).encode() + b"\0")
        h.update(data)
    return h.hexdigest()


def stamp() -> dict:
    """{"commit": ..., "tree": {...}} as the module docstring describes: merge it into a result."""
    tree = {"src_sha256": src_sha256(), "diff_sha256": None, "changed": None, "untracked": None,
            "untracked_sha256": None, "git": _repo_state()}
    commit = _git("rev-parse", "HEAD") if tree["git"] == "ok" else None
    if commit is None:
        if tree["git"] == "ok":
            tree["git"] = "no commit"
        return {"commit": None, "tree": tree}
    spec = ["--", ".", f":(exclude){NOT_IN_DIFF}"]
    diff = _git("diff", "HEAD", "--binary", "--no-ext-diff", "--no-color", *spec, binary=True)
    names = _git("diff", "HEAD", "--name-only", "--no-ext-diff", *spec)
    untracked = _git("ls-files", "--others", "--exclude-standard", "--", *UNTRACKED_UNDER)
    tree["diff_sha256"] = hashlib.sha256(diff).hexdigest() if diff else None
    tree["changed"] = names.splitlines() if names else []
    tree["untracked"] = untracked.splitlines() if untracked else []
    if tree["untracked"]:
        h = hashlib.sha256()
        for path in sorted(tree["untracked"]):
            data = (ROOT / path).read_bytes()
            h.update(path.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
        tree["untracked_sha256"] = h.hexdigest()
    return {"commit": commit, "tree": tree}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: str = "cpu") -> dict:
    """CPU model, core count, torch/python versions, and the GPU (and Triton) on CUDA."""
    import torch

    out = {"cpu": cpu_name(), "cores": os.cpu_count(), "torch": torch.__version__,
           "python": platform.python_version()}
    if str(device).startswith("cuda"):
        out["gpu"] = torch.cuda.get_device_name(torch.device(device))
        try:
            import triton
            out["triton"] = triton.__version__
        except ImportError:
            pass
    return out


if __name__ == "__main__":
    print(json.dumps(stamp(), indent=2))
