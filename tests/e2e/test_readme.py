"""The README's Python example runs as written and prints what its comment says."""
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_python_example_runs():
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    out = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[5, 1125899906842621] 4"


def test_readme_starts_with_the_two_commands_ci_runs():
    lines = README.read_text().splitlines()
    cmds = [ln for ln in lines[:6] if ln.startswith("python3 -m venv .venv")]
    assert len(cmds) == 2 and "suf " in cmds[0] and "pytest" in cmds[1]
    ci = (README.parent / ".ci" / "run").read_text()
    assert "pytest" in cmds[1] and "grep -m1" in ci
