"""What every result file records about where it came from: the commit and the machine."""
from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def _git(*args) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip()
    except OSError:
        return ""


def commit() -> str:
    """The short commit measured, flagged when src/ or benchmarks/ have uncommitted changes;
    $SUF_COMMIT first where it is set (the GPU machine gets a copy of the working tree whose .git,
    if any, need not match it)."""
    if os.environ.get("SUF_COMMIT"):
        return os.environ["SUF_COMMIT"]
    rev = _git("rev-parse", "--short", "HEAD")
    if not rev:
        return "unknown"
    if _git("status", "--porcelain", "--untracked-files=no", "--", "src", "benchmarks"):
        rev += " + uncommitted changes"
    return rev


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
